"""The `catalog` command as merchandisers use it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from catalog_pictures import encode, tshirt_mask, write_photo
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
