"""Import files as shops export them: our CSV, Shopify's, and the ways they go wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.csvfiles import parse_import_file, resolve_source
from catalog.errors import CatalogError

SHOPIFY_HEADER = (
    "Handle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,Option1 Value,Option2 Name,"
    "Option2 Value,Variant SKU,Image Src,Image Position,Variant Image\n"
)


def test_our_format_with_optional_columns() -> None:
    parsed = parse_import_file(
        b"sku,name,category,image,mask,brand,colour,tags\n"
        b'A1,Crew tee,top,a.png,a-mask.png,Acme,navy,"summer, cotton"\n'
        b"\n"
        b"A2,Dress,dress,b.png,,,,\n"
    )
    assert parsed.format == "tryon"
    assert not parsed.errors
    first, second = parsed.rows
    assert (first.line, first.mask, first.brand, first.tags) == (
        2,
        "a-mask.png",
        "Acme",
        "summer, cotton",
    )
    assert second.line == 4 and second.mask is None


def test_byte_order_mark_and_header_case_are_accepted() -> None:
    parsed = parse_import_file(b"\xef\xbb\xbfSKU,Name,Category,Image\nA1,Tee,top,a.png\n")
    assert [r.sku for r in parsed.rows] == ["A1"]


def test_wrong_header_is_one_clear_error() -> None:
    with pytest.raises(CatalogError, match="unrecognised header"):
        parse_import_file(b"id,title,picture\n1,Tee,a.png\n")
    with pytest.raises(CatalogError, match="lacks column.*category"):
        parse_import_file(b"sku,name,image\nA1,Tee,a.png\n", "tryon")


def test_non_utf8_rows_fail_alone_with_line_and_column() -> None:
    data = "sku,name,category,image\nA1,Tee,top,a.png\nA2,Café tee,top,b.png\n".encode("latin-1")
    parsed = parse_import_file(data)
    assert [r.sku for r in parsed.rows] == ["A1"]
    (error,) = parsed.errors
    assert (error.line, error.column) == (3, "name")
    assert "not UTF-8" in error.reason and "0xE9" in error.reason


def test_empty_required_cell_is_reported() -> None:
    parsed = parse_import_file(b"sku,name,category,image\nA1,,top,a.png\n")
    (error,) = parsed.errors
    assert (error.line, error.column, error.reason) == (2, "name", "is empty")


def test_every_row_of_a_duplicate_sku_fails() -> None:
    parsed = parse_import_file(
        b"sku,name,category,image\nA1,Tee,top,a.png\nB1,Dress,dress,b.png\nA1,Tee 2,top,c.png\n"
    )
    assert [r.sku for r in parsed.rows] == ["B1"]
    assert sorted(e.line for e in parsed.errors) == [2, 4]
    assert all("appears on lines 2, 4" in e.reason for e in parsed.errors)


def test_shopify_export_gives_one_garment_per_variant() -> None:
    data = (
        SHOPIFY_HEADER
        + 'tee,Crew Tee,<p>soft</p>,Acme,T-Shirts,"summer, cotton",Size,S,Color,Navy,TEE-S-NV,'
        "tee-1.jpg,1,\n"
        + "tee,,,,,,,M,,Navy,TEE-M-NV,tee-2.jpg,2,\n"
        + "tee,,,,,,,S,,Red,TEE-S-RD,,,tee-red.jpg\n"
        + "dress,Summer Dress,,Acme,Dresses,,Title,Default Title,,,,dress.jpg,1,\n"
    ).encode()
    parsed = parse_import_file(data)
    assert parsed.format == "shopify" and not parsed.errors
    rows = {r.sku: r for r in parsed.rows}
    assert set(rows) == {"TEE-S-NV", "TEE-M-NV", "TEE-S-RD", "dress"}
    assert rows["TEE-M-NV"].image == "tee-1.jpg"  # the product's first image
    assert rows["TEE-S-RD"].image == "tee-red.jpg"  # its own variant image
    assert (rows["TEE-S-RD"].colour, rows["TEE-S-RD"].line) == ("Red", 4)
    assert (rows["TEE-S-NV"].name, rows["TEE-S-NV"].category, rows["TEE-S-NV"].brand) == (
        "Crew Tee",
        "T-Shirts",
        "Acme",
    )
    assert rows["dress"].sku == "dress"  # no variant SKU: the handle


def test_shopify_product_without_image_fails_its_rows() -> None:
    data = (SHOPIFY_HEADER + "cap,Cap,,Acme,Tops,,Title,Default Title,,,CAP-1,,,\n").encode()
    (error,) = parse_import_file(data).errors
    assert (error.line, error.column) == (2, "Image Src")


def test_image_sources(tmp_path: Path) -> None:
    assert resolve_source("img/a.png", tmp_path) == tmp_path / "img/a.png"
    assert resolve_source("file:///data/my%20tee.png", tmp_path) == Path("/data/my tee.png")
    with pytest.raises(ValueError, match="does not download .*only http:// and https://"):
        resolve_source("s3://bucket/a.jpg", tmp_path)
