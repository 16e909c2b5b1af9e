"""The `catalog` command as merchandisers use it, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from catalog_pictures import encode, product_photo, tshirt_mask, write_photo
from image_server import image, serve
from PIL import Image
from sqlalchemy import update
from typer.testing import CliRunner

from catalog.cli import app
from catalog.database import create_catalog_engine
from catalog.models import GarmentImage, ImageKind

runner = CliRunner()


def run(db_url: str, *args: str, input: str | None = None):  # noqa: A002, ANN201
    return runner.invoke(app, [*args, "--db-url", db_url], input=input)


def run_json(db_url: str, *args: str):  # noqa: ANN201
    result = run(db_url, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _sheet(folder: Path, rows: list[str]) -> Path:
    sheet = folder / "garments.csv"
    sheet.write_text("sku,name,category,image,brand,tags\n" + "\n".join(rows) + "\n")
    return sheet


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for index in range(3):
        write_photo(tmp_path / f"p{index}.png", seed=index)
    return tmp_path


def test_commands_refuse_an_out_of_date_schema(empty_db_url: str) -> None:
    result = run(empty_db_url, "list")
    assert result.exit_code == 1
    assert "run `catalog db upgrade`" in result.output
    assert run(empty_db_url, "db", "upgrade").exit_code == 0
    assert run_json(empty_db_url, "list") == []


def test_add_show_update_and_lifecycle(db_url: str, photos: Path) -> None:
    added = run_json(
        db_url,
        "add",
        "TEE-1",
        "--image",
        str(photos / "p0.png"),
        "--name",
        "Crew tee",
        "--category",
        "T-Shirts",
        "--tag",
        "summer",
        "--brand",
        "Acme",
    )
    assert (added["category"], added["status"], added["revision"]) == ("top", "draft", 1)
    assert added["images"]["mask"]["source"] == "extracted"
    again = run(
        db_url,
        "add",
        "TEE-1",
        "--image",
        str(photos / "p0.png"),
        "--name",
        "x",
        "--category",
        "top",
    )
    assert again.exit_code == 1 and "catalog update" in again.output

    updated = run_json(db_url, "update", "TEE-1", "--colour", "navy", "--tag", "a", "--tag", "b")
    assert (updated["colour"], updated["tags"], updated["brand"]) == ("navy", ["a", "b"], "Acme")
    assert updated["revision"] == 2
    mask_file = photos / "mask.png"
    mask_file.write_bytes(encode(tshirt_mask(shift=0)))
    with_mask = run_json(db_url, "update", "TEE-1", "--mask", str(mask_file))
    assert with_mask["images"]["mask"]["source"] == "supplied" and with_mask["revision"] == 3

    assert run_json(db_url, "activate", "TEE-1")[0]["status"] == "active"
    assert [g["sku"] for g in run_json(db_url, "list", "--status", "active")] == ["TEE-1"]
    assert run_json(db_url, "archive", "TEE-1")[0]["status"] == "archived"
    assert run_json(db_url, "show", "TEE-1")["status"] == "archived"


def test_bad_category_and_missing_image_are_explained(db_url: str, photos: Path) -> None:
    result = run(
        db_url, "add", "X", "--image", str(photos / "p0.png"), "--name", "Hat", "--category", "hat"
    )
    assert result.exit_code == 1 and "supported: top, dress" in result.output
    result = run(
        db_url,
        "add",
        "X",
        "--image",
        str(photos / "nope.png"),
        "--name",
        "Tee",
        "--category",
        "top",
    )
    assert result.exit_code == 1 and "does not exist" in result.output
    assert run(db_url, "show", "X").exit_code == 1


def test_remove_asks_unless_yes(db_url: str, photos: Path) -> None:
    run_json(
        db_url,
        "add",
        "TEE-1",
        "--image",
        str(photos / "p0.png"),
        "--name",
        "Tee",
        "--category",
        "top",
    )
    declined = run(db_url, "remove", "TEE-1", input="n\n")
    assert declined.exit_code == 1 and "nothing deleted" in declined.output
    assert run(db_url, "remove", "TEE-1", input="y\n").exit_code == 0
    assert run_json(db_url, "list") == []
    assert run(db_url, "remove", "TEE-1", "--yes").exit_code == 1  # gone already


def test_import_reports_rows_and_is_idempotent(db_url: str, photos: Path) -> None:
    whole = (photos / "p2.png").read_bytes()
    (photos / "broken.png").write_bytes(whole[: len(whole) // 2])  # an interrupted upload
    sheet = _sheet(
        photos,
        [
            "A1,Tee one,top,p0.png,Acme,summer",
            "A2,Tee two,tops,p1.png,,",
            "A3,Hat,hat,p2.png,,",
            "A4,Broken,top,broken.png,,",
            "A5,Gone,top,missing.png,,",
        ],
    )
    dry = run(db_url, "import", str(sheet), "--dry-run", "--activate", "--json")
    assert dry.exit_code == 1
    assert json.loads(dry.stdout)["summary"]["added"] == 2
    assert run_json(db_url, "list") == []  # a dry run writes nothing

    result = run(db_url, "import", str(sheet), "--activate", "--json")
    assert result.exit_code == 1  # some rows failed
    report = json.loads(result.stdout)
    assert report["summary"] == {"added": 2, "updated": 0, "unchanged": 0, "failed": 3}
    failed = {r["line"]: (r["column"], r["reason"]) for r in report["rows"] if r.get("reason")}
    assert failed[4][0] == "category" and "unknown category `hat`" in failed[4][1]
    assert failed[5][0] == "image" and "cannot be decoded" in failed[5][1]
    assert failed[6][0] == "image" and "does not exist" in failed[6][1]
    assert [g["status"] for g in run_json(db_url, "list")] == ["active", "active"]

    again = json.loads(run(db_url, "import", str(sheet), "--json").stdout)
    assert again["summary"]["unchanged"] == 2
    write_photo(photos / "p1.png", seed=5, colour=(200, 40, 40))  # a new photo for A2
    changed = json.loads(run(db_url, "import", str(sheet), "--json").stdout)
    assert changed["summary"]["updated"] == 1
    assert run_json(db_url, "show", "A2")["revision"] == 2


def test_import_output_for_people(db_url: str, photos: Path) -> None:
    sheet = _sheet(photos, ["A1,Tee,top,p0.png,,", "A2,Hat,hat,p1.png,,"])
    result = run(db_url, "import", str(sheet))
    assert result.exit_code == 1
    assert "1 added, 0 updated, 0 unchanged, 1 failed" in result.output
    assert "unknown category" in result.output


def test_import_with_worker_processes(db_url: str, photos: Path) -> None:
    rows = [f"S{i:02d},Tee {i},top,p{i % 3}.png,," for i in range(20)] + ["BAD,Hat,hat,p0.png,,"]
    result = run(db_url, "import", str(_sheet(photos, rows)), "--jobs", "2", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["rows"][-1]["column"] == "category"
    assert report["summary"] == {"added": 20, "updated": 0, "unchanged": 0, "failed": 1}


def test_import_refuses_a_file_with_wrong_headers(db_url: str, tmp_path: Path) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text("id,title\n1,Tee\n")
    result = run(db_url, "import", str(sheet))
    assert result.exit_code == 1 and "unrecognised header" in result.output


def test_export_then_import_restores_the_catalog(
    db_url: str, photos: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_json(db_url, "import", str(_sheet(photos, ['A1,Tee,top,p0.png,Acme,"x,y"'])))
    out = tmp_path_factory.mktemp("export") / "catalog.csv"
    assert run(db_url, "export", str(out)).exit_code == 0
    other = f"sqlite:///{out.parent / 'copy.db'}"
    assert run(other, "db", "upgrade").exit_code == 0
    assert run_json(other, "import", str(out))["summary"]["added"] == 1
    original, copy = run_json(db_url, "show", "A1"), run_json(other, "show", "A1")
    for key in ("name", "brand", "tags", "category"):
        assert original[key] == copy[key]
    for kind in ("photo", "mask"):
        assert original["images"][kind]["sha256"] == copy["images"][kind]["sha256"]


def test_validate_finds_corrupted_bytes(db_url: str, photos: Path) -> None:
    run_json(db_url, "import", str(_sheet(photos, ["A1,Tee,top,p0.png,,", "A2,Tee,top,p1.png,,"])))
    assert run(db_url, "validate").exit_code == 0
    engine = create_catalog_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            update(GarmentImage).where(GarmentImage.kind == ImageKind.MASK).values(data=b"garbage")
        )
    engine.dispose()
    result = run(db_url, "validate", "--json")
    assert result.exit_code == 1
    assert all("checksum" in e for g in json.loads(result.stdout) for e in g["errors"])


def test_preview_sheet_shows_photo_and_mask(db_url: str, photos: Path, tmp_path: Path) -> None:
    run_json(db_url, "import", str(_sheet(photos, ["A1,Tee,top,p0.png,,"])))
    sheet = tmp_path / "sheet.png"
    result = run(db_url, "preview", "A1", "-o", str(sheet))
    assert result.exit_code == 0, result.output
    assert "tried-on panels" in result.output  # says why they are missing
    pixels = np.asarray(Image.open(sheet))
    assert pixels.shape[0] == 384 + 16 and pixels.shape[1] > 3 * 280


# --- images named by URL ------------------------------------------------------------------

SHOPIFY_HEADER = (
    "Handle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,Option1 Value,Option2 Name,"
    "Option2 Value,Variant SKU,Image Src,Image Position,Variant Image\n"
)


def _served_photo(seed: int, colour: tuple[int, int, int]) -> bytes:
    return encode(product_photo(tshirt_mask(shift=seed), colour, seed=seed))


@pytest.fixture
def image_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Download settings for a test server on loopback; returns the image cache folder."""
    cache = tmp_path / "image-cache"
    monkeypatch.setenv("TRYON_IMAGE_CACHE", str(cache))
    monkeypatch.setenv("TRYON_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("TRYON_IMAGE_TIMEOUT", "2")
    monkeypatch.delenv("TRYON_WEIGHTS", raising=False)  # the bundled synthetic weights: tops
    return cache


def test_shopify_export_with_image_urls_imports_twice_downloading_once(
    db_url: str, tmp_path: Path, image_env: Path
) -> None:
    navy, red, dress = (
        _served_photo(i, c) for i, c in enumerate([(30, 40, 90), (200, 30, 30), (20, 120, 60)])
    )
    routes = {
        "/files/tee-navy.png": image(navy),
        "/files/tee-red.png": image(red),
        "/files/dress.png": image(dress),
        "/files/promo.html": image(b"<html>sale!</html>", "text/html"),
    }
    with serve(routes) as server:
        url = server.url
        sheet = tmp_path / "products_export.csv"
        sheet.write_text(
            SHOPIFY_HEADER
            + f"crew-tee,Crew Tee,<p>Soft</p>,Acme,T-Shirts,summer,Color,Navy,,,TEE-NAVY,"
            f"{url('/files/tee-navy.png')},1,\n"
            f"crew-tee,,,,,,,Red,,,TEE-RED,{url('/files/tee-red.png')},2,"
            f"{url('/files/tee-red.png')}\n"
            f"wrap-dress,Wrap Dress,,Acme,Dresses,,Title,Default Title,,,DRS-1,"
            f"{url('/files/dress.png')},1,\n"
            f"old-tee,Old Tee,,Acme,Tops,,Title,Default Title,,,TEE-OLD,"
            f"{url('/files/gone.png')},1,\n"
            f"promo,Promo,,Acme,Tops,,Title,Default Title,,,TEE-PROMO,"
            f"{url('/files/promo.html')},1,\n"
        )
        first = run(db_url, "import", str(sheet), "--json")
        assert first.exit_code == 1  # two rows failed
        report = json.loads(first.stdout)
        assert report["format"] == "shopify"
        assert report["summary"] == {"added": 3, "updated": 0, "unchanged": 0, "failed": 2}
        assert report["images"] == {"downloaded": 3, "cached": 0, "failed": 2}
        rows = {r["line"]: r for r in report["rows"]}
        assert rows[5]["column"] == "Image Src"
        assert rows[5]["reason"] == f"{url('/files/gone.png')}: HTTP 404 Not Found"
        assert rows[6]["column"] == "Image Src" and url("/files/promo.html") in rows[6]["reason"]
        assert "sent text/html, not an image" in rows[6]["reason"]
        assert any("dress only top" in w for w in rows[4]["warnings"])  # the wrap dress
        assert not any("dress only" in w for w in rows[2]["warnings"] + rows[3]["warnings"])
        # Each variant got its own photo, byte for byte.
        for sku, served in (("TEE-NAVY", navy), ("TEE-RED", red), ("DRS-1", dress)):
            stored = run_json(db_url, "show", sku)["images"]["photo"]["sha256"]
            assert stored == hashlib.sha256(served).hexdigest()
        photo_paths = ("/files/tee-navy.png", "/files/tee-red.png", "/files/dress.png")
        assert [server.bodies[p] for p in photo_paths] == [1, 1, 1]

        again = json.loads(run(db_url, "import", str(sheet), "--json").stdout)
        assert again["summary"] == {"added": 0, "updated": 0, "unchanged": 3, "failed": 2}
        assert again["images"] == {"downloaded": 0, "cached": 3, "failed": 2}
        assert [server.bodies[p] for p in photo_paths] == [1, 1, 1]  # only 304s this time
        assert [server.requests[p] for p in photo_paths] == [2, 2, 2]
    assert [g["revision"] for g in run_json(db_url, "list")] == [1, 1, 1]


def test_import_refuses_private_image_urls_without_the_override(
    db_url: str, tmp_path: Path, image_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRYON_ALLOW_PRIVATE_URLS")
    with serve({"/tee.png": image(_served_photo(0, (30, 40, 90)))}) as server:
        sheet = _sheet(tmp_path, [f"A1,Tee,top,{server.url('/tee.png')},,"])
        result = run(db_url, "import", str(sheet))
        assert server.requests["/tee.png"] == 0
    assert result.exit_code == 1
    assert "loopback address 127.0.0.1" in result.output
    assert "TRYON_ALLOW_PRIVATE_URLS=1" in result.output
    assert "0 added, 0 updated, 0 unchanged, 1 failed" in result.output


def test_add_downloads_its_image_and_warns_on_categories_the_weights_cannot_dress(
    db_url: str, tmp_path: Path, image_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = _served_photo(1, (30, 40, 90))
    with serve({"/dress.png": image(photo)}) as server:
        added = run_json(
            db_url,
            "add",
            "D1",
            "--image",
            server.url("/dress.png"),
            "--name",
            "Wrap",
            "--category",
            "dress",
        )
        missing = run(
            db_url,
            "add",
            "D2",
            "--image",
            server.url("/nope.png"),
            "--name",
            "Wrap",
            "--category",
            "dress",
        )
        # Weights that declare no categories: no warning.
        undeclared = tmp_path / "weights"
        undeclared.mkdir()
        (undeclared / "pipeline.json").write_text('{"name": "mine", "version": "0.1.0"}')
        monkeypatch.setenv("TRYON_WEIGHTS", str(undeclared))
        quiet = run_json(
            db_url,
            "add",
            "D3",
            "--image",
            server.url("/dress.png"),
            "--name",
            "Wrap",
            "--category",
            "dress",
        )
    assert added["images"]["photo"]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert any("synthetic" in w and "dress only top" in w for w in added["warnings"])
    assert missing.exit_code == 1
    assert f"--image {server.url('/nope.png')}: HTTP 404 Not Found" in missing.output
    assert not any("dress only" in w for w in quiet["warnings"])
