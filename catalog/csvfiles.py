"""Reading import files: our own CSV and Shopify's product export, into uniform rows.

Only the file's text is checked here (headers, encoding, required cells, duplicate
SKUs); images are opened later, row by row. Every problem is a
:class:`~catalog.errors.RowError` that names the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from catalog.errors import CatalogError, RowError

FORMATS = ("auto", "tryon", "shopify")
TRYON_REQUIRED = ("sku", "name", "category", "image")
TRYON_OPTIONAL = ("mask", "brand", "colour", "tags")
SHOPIFY_REQUIRED = ("Handle", "Title", "Type", "Image Src")
COLOUR_OPTION_NAMES = {"color", "colour"}
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class ImportRow:
    """One garment to import; ``columns`` maps each field to the header it came from.

    ``downloaded`` maps ``image``/``mask`` to the local file holding a URL cell's
    download, once the importer has fetched it.
    """

    line: int
    sku: str
    name: str
    category: str
    image: str
    mask: str | None = None
    brand: str | None = None
    colour: str | None = None
    tags: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    downloaded: dict[str, str] = field(default_factory=dict)

    def error(self, field_name: str | None, reason: str) -> RowError:
        """A RowError for this row's line, pointing at ``field_name``'s column."""
        return RowError(self.line, self.columns.get(field_name or "", field_name), reason)


@dataclass
class ParsedFile:
    """Rows that passed the text checks, and the errors of the rows that did not."""

    format: str
    rows: list[ImportRow]
    errors: list[RowError]


def _records(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(first line number, cells)`` for each non-empty record."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Undecodable bytes survive as lone surrogates, so each row can report its own.
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogError("the file is empty; it needs a header line") from None
    except csv.Error as error:
        raise CatalogError(f"line 1: the header is not valid CSV ({error})") from None
    if any(_UNDECODABLE.search(cell) for cell in header):
        raise CatalogError("line 1: the header is not UTF-8 text; save the file as UTF-8 CSV")
    records: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise CatalogError(f"line {start}: not valid CSV ({error})") from None
        if any(cell.strip() for cell in cells):
            records.append((start, cells))
        start = reader.line_num + 1
    return [h.strip() for h in header], records


def _undecodable(line: int, header: list[str], cells: list[str]) -> RowError | None:
    for name, cell in zip(header, cells, strict=False):
        match = _UNDECODABLE.search(cell)
        if match:
            byte = ord(match.group()) - 0xDC00
            return RowError(
                line, name, f"is not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8 CSV"
            )
    return None


def detect_format(header: list[str]) -> str:
    """``tryon`` or ``shopify`` from the header; CatalogError naming both when neither fits."""
    names = set(header)
    if {"Handle", "Title"} <= names:
        return "shopify"
    if {"sku", "image"} <= {n.lower() for n in names}:
        return "tryon"
    raise CatalogError(
        "line 1: unrecognised header; expected our format ("
        + ",".join(TRYON_REQUIRED)
        + ", optional "
        + ",".join(TRYON_OPTIONAL)
        + ") or a Shopify product export ("
        + ", ".join(SHOPIFY_REQUIRED)
        + ", Variant SKU ...)"
    )


def _require(header: list[str], required: tuple[str, ...], fmt: str) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        raise CatalogError(
            f"line 1: the header lacks column(s) {', '.join(missing)} needed by the {fmt} "
            f"format (found: {', '.join(header) or 'nothing'})"
        )


def _cell(header: list[str], cells: list[str], name: str) -> str:
    try:
        return cells[header.index(name)].strip()
    except (ValueError, IndexError):
        return ""


def _tryon_rows(
    header: list[str], records: list[tuple[int, list[str]]], errors: list[RowError]
) -> list[ImportRow]:
    header = [h.lower() for h in header]
    _require(header, TRYON_REQUIRED, "tryon")
    rows = []
    for line, cells in records:
        bad = _undecodable(line, header, cells)
        if bad:
            errors.append(bad)
            continue
        values = {name: _cell(header, cells, name) for name in TRYON_REQUIRED + TRYON_OPTIONAL}
        missing = next((n for n in TRYON_REQUIRED if not values[n]), None)
        if missing:
            errors.append(RowError(line, missing, "is empty"))
            continue
        rows.append(
            ImportRow(
                line=line,
                sku=values["sku"],
                name=values["name"],
                category=values["category"],
                image=values["image"],
                mask=values["mask"] or None,
                brand=values["brand"] or None,
                colour=values["colour"] or None,
                tags=values["tags"] or None,
                columns={n: n for n in TRYON_REQUIRED + TRYON_OPTIONAL},
            )
        )
    return rows


def _shopify_rows(
    header: list[str], records: list[tuple[int, list[str]]], errors: list[RowError]
) -> list[ImportRow]:
    """One garment per variant: a product's variants share its first image unless they
    have their own (``Variant Image``); a product without variant SKUs uses its Handle."""
    _require(header, SHOPIFY_REQUIRED, "shopify")
    products: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
    for line, cells in records:
        bad = _undecodable(line, header, cells)
        if bad:
            errors.append(bad)
            continue
        handle = _cell(header, cells, "Handle")
        if not handle:
            errors.append(RowError(line, "Handle", "is empty"))
            continue
        products[handle].append((line, cells))
    rows = []
    for handle, product in products.items():
        rows.extend(_shopify_product(handle, header, product, errors))
    return rows


def _position(text: str) -> int:
    return int(text) if text.isdigit() else 1_000_000


def _shopify_product(
    handle: str, header: list[str], product: list[tuple[int, list[str]]], errors: list[RowError]
) -> list[ImportRow]:
    first_line, first = product[0]

    def get(cells: list[str], name: str) -> str:
        return _cell(header, cells, name)

    for name in ("Title", "Type"):
        if not get(first, name):
            errors.append(RowError(first_line, name, f"is empty on product {handle}'s first row"))
            return []
    # The product's main image is the one with the lowest Image Position.
    images = sorted(
        (_position(get(c, "Image Position")), line, get(c, "Image Src"))
        for line, c in product
        if get(c, "Image Src")
    )
    colour_option = next(
        (i for i in (1, 2, 3) if get(first, f"Option{i} Name").lower() in COLOUR_OPTION_NAMES),
        None,
    )
    variants = [
        (line, c)
        for line, c in product
        if line == first_line or get(c, "Variant SKU") or get(c, "Option1 Value")
    ]
    columns = {
        "sku": "Variant SKU",
        "name": "Title",
        "category": "Type",
        "image": "Image Src",
        "brand": "Vendor",
        "tags": "Tags",
        "colour": "Option1 Value",
    }
    rows = []
    for line, cells in variants:
        sku = get(cells, "Variant SKU")
        if not sku:
            if len(variants) > 1:
                errors.append(
                    RowError(
                        line,
                        "Variant SKU",
                        "is empty, and the product has several variants; give each variant a SKU",
                    )
                )
                continue
            sku = handle
        variant_image = get(cells, "Variant Image")
        image = variant_image or (images[0][2] if images else "")
        if not image:
            errors.append(RowError(line, "Image Src", f"product {handle} has no image"))
            continue
        colour = get(cells, f"Option{colour_option} Value") if colour_option else ""
        rows.append(
            ImportRow(
                line=line,
                sku=sku,
                name=get(first, "Title"),
                category=get(first, "Type"),
                image=image,
                brand=get(first, "Vendor") or None,
                colour=colour or None,
                tags=get(first, "Tags") or None,
                columns={
                    **columns,
                    "colour": f"Option{colour_option} Value",
                    "image": "Variant Image" if variant_image else "Image Src",
                },
            )
        )
    return rows


def _reject_duplicates(rows: list[ImportRow], errors: list[RowError]) -> list[ImportRow]:
    """Fail every row of a SKU that appears more than once: which one is meant is unclear."""
    lines: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        lines[row.sku].append(row.line)
    kept = []
    for row in rows:
        seen = lines[row.sku]
        if len(seen) > 1:
            listed = ", ".join(str(n) for n in seen)
            errors.append(
                row.error(
                    "sku", f"SKU `{row.sku}` appears on lines {listed}; each SKU may appear once"
                )
            )
        else:
            kept.append(row)
    return kept


def parse_import_file(data: bytes, fmt: str = "auto") -> ParsedFile:
    """Parse an import file's bytes; CatalogError when the file as a whole is unusable."""
    if fmt not in FORMATS:
        raise CatalogError(f"unknown format `{fmt}`, supported: {', '.join(FORMATS)}")
    header, records = _records(data)
    if fmt == "auto":
        fmt = detect_format(header)
    errors: list[RowError] = []
    rows = (_tryon_rows if fmt == "tryon" else _shopify_rows)(header, records, errors)
    rows = _reject_duplicates(rows, errors)
    return ParsedFile(fmt, rows, errors)


def resolve_source(source: str, base: Path) -> Path:
    """The local file an image cell names: a path (relative to the CSV's folder) or file URL.

    ``http(s)`` URLs are downloaded by the importer before this (catalog.fetching);
    raises ValueError for other remote URLs, which are not.
    """
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("ftp", "s3", "gs"):
        raise ValueError(
            f"{source} is a remote URL the catalog does not download (only http:// and "
            "https:// ones): download the images and give their paths or file:// URLs"
        )
    path = Path(source).expanduser()
    return path if path.is_absolute() else base / path
