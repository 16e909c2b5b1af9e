"""Catalog errors: subclasses of the product's one hierarchy in :mod:`tryon.errors`."""

from __future__ import annotations

from tryon.errors import GarmentNotFoundError, InvalidInputError, NotReadyError, TryOnError

__all__ = [
    "CatalogError",
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
    """A product photo or mask cannot be used (unreadable, too small, a decompression bomb)."""


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
