"""Catalog errors: subclasses of the product's one hierarchy in :mod:`tryon.errors`."""

from __future__ import annotations

from tryon.errors import GarmentNotFoundError, InvalidInputError, NotReadyError, TryOnError

__all__ = [
    "CatalogError",
    "FieldError",
    "GarmentExistsError",
    "GarmentNotFoundError",
    "ImageError",
    "RowError",
    "SchemaOutOfDateError",
]


class CatalogError(TryOnError):
    """A catalog operation cannot go ahead; the message says why and what to do."""


class SchemaOutOfDateError(NotReadyError):
    """The database schema is missing or older than this code; `catalog db upgrade` fixes it."""


class GarmentExistsError(CatalogError):
    """A garment with this SKU is already in the catalog."""


class ImageError(InvalidInputError):
    """A product photo or mask cannot be used (unreadable, too small, a decompression bomb).

    ``part`` says which file is at fault: ``"photo"`` or ``"mask"``.
    """

    def __init__(self, message: str, part: str = "photo") -> None:
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Import workers send these across processes.
        return (type(self), (str(self), self.part))


class FieldError(InvalidInputError):
    """A garment field has an unusable value; ``field`` names it (``"sku"``, ``"category"``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.field, self.reason))


class RowError(InvalidInputError):
    """One row of an import file is unusable.

    ``line`` is the 1-based line in the file and ``column`` the header name of the
    offending cell (``None`` when the whole row is at fault).
    """

    def __init__(self, line: int, column: str | None, reason: str) -> None:
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {reason}")
        self.line = line
        self.column = column
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[int, str | None, str]]:
        return (type(self), (self.line, self.column, self.reason))
