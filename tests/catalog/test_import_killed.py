"""An import killed halfway (SIGKILL, no clean-up) leaves only whole garments behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from catalog_pictures import encode, product_photo, tshirt_mask
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload, undefer

from catalog.database import create_catalog_engine, make_sessionmaker
from catalog.models import Garment, GarmentImage, ImageKind

ROWS = 40


def _write_sheet(folder: Path) -> Path:
    # Large photos make each row slow enough to kill the import in the middle.
    photo = Image.fromarray(product_photo(tshirt_mask((1200, 900))))
    lines = ["sku,name,category,image"]
    for index in range(ROWS):
        name = f"p{index}.jpg"
        (folder / name).write_bytes(encode(photo.rotate(index % 5), "JPEG", quality=90))
        lines.append(f"K{index:03d},Tee {index},top,{name}")
    sheet = folder / "big.csv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


def _count(sessions) -> int:  # noqa: ANN001
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Garment))


def test_killed_import_leaves_the_catalog_consistent(db_url: str, tmp_path: Path) -> None:
    sheet = _write_sheet(tmp_path)
    engine = create_catalog_engine(db_url)
    sessions = make_sessionmaker(engine)
    command = [
        sys.executable,
        "-m",
        "catalog",
        "import",
        str(sheet),
        "--db-url",
        db_url,
        "--jobs",
        "1",
        "--json",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while _count(sessions) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    with sessions() as session:
        garments = session.scalars(
            select(Garment).options(
                selectinload(Garment.images).options(undefer(GarmentImage.data))
            )
        ).all()
    assert 0 < len(garments) < ROWS, "the import was not interrupted halfway"
    for garment in garments:
        kinds = sorted(image.kind.value for image in garment.images)
        assert kinds == ["mask", "photo"], garment.sku
        for image in garment.images:
            assert hashlib.sha256(image.data).hexdigest() == image.sha256
    # Running the import again completes the catalog and keeps what was there.
    finished = subprocess.run([*command[:-3], "--jobs", "2"], capture_output=True, timeout=240)
    assert finished.returncode == 0, finished.stderr.decode()
    assert _count(sessions) == ROWS
    with sessions() as session:
        masks = session.scalar(
            select(func.count())
            .select_from(GarmentImage)
            .where(GarmentImage.kind == ImageKind.MASK)
        )
    assert masks == ROWS
    engine.dispose()
