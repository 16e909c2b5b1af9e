"""Shopper photos stay private: nothing is written to disk or logs while serving, and
the person cache holds analyses in memory only, for at most its TTL, or not at all."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import sys
import tempfile
import threading
import time

import grpc
import pytest
from loopback import loopback_settings, make_catalog, shopper
from PIL import Image
from sqlalchemy import create_engine, text

from tryon.client import OutputOptions, ServiceError, TryOnClient
from tryon.provenance.certificates import create_test_authority
from tryon.server.app import ServerThread
from tryon.server.caches import BoundedCache
from tryon.server.logs import JsonFormatter

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FILE_CHANGES = ("os.rename", "os.replace", "os.remove", "os.unlink", "os.mkdir", "shutil.copyfile")
_recorded: list[str] | None = None  # while a list: every file write the process makes
_lock = threading.Lock()


def _watch_writes(event: str, args: tuple) -> None:
    """An audit hook: note each file opened for writing and each file created, moved or
    removed, by any thread, while `_recorded` is a list."""
    if _recorded is None:
        return
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or (
            mode is None and flags & _WRITE_FLAGS
        )
        if writing:
            with _lock:
                _recorded.append(f"open {path!r} {mode or flags}")
    elif event in _FILE_CHANGES or event == "tempfile.mkstemp":
        with _lock:
            _recorded.append(f"{event} {args[0]!r}")


# Audit hooks cannot be removed; this one does nothing unless a test records.
sys.addaudithook(_watch_writes)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_expired_analyses_leave_memory_even_when_nobody_asks_for_them():
    clock = FakeClock()
    cache: BoundedCache[str] = BoundedCache(10, ttl_s=60, clock=clock)
    cache.put("shopper-a", "analysis")
    cache.put("shopper-b", "analysis")
    clock.now = 30
    cache.put("shopper-c", "analysis")
    clock.now = 61
    assert cache.purge_expired() == 2  # a and b; c has 29 s left
    assert len(cache) == 1
    clock.now = 95
    cache.put("shopper-d", "analysis")  # storing also drops what expired
    assert len(cache) == 1 and cache.get("shopper-d") == "analysis"


def _encoded(pixels_from: bytes, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(pixels_from)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_the_write_watch_sees_writes_of_any_thread(tmp_path):
    """The watch the next test relies on: Pillow saving, a temporary file and os.open
    from another thread are all noticed."""
    global _recorded
    _recorded = []
    try:
        worker = threading.Thread(
            target=lambda: Image.new("RGB", (4, 4)).save(tmp_path / "leak.png")
        )
        worker.start()
        worker.join()
        with tempfile.TemporaryFile(dir=tmp_path):
            pass
        os.close(os.open(tmp_path / "leak.bin", os.O_WRONLY | os.O_CREAT))
        seen, _recorded = _recorded, None
    finally:
        _recorded = None
    assert any("leak.png" in line for line in seen)
    assert any(line.startswith("tempfile.mkstemp") or str(tmp_path) in line for line in seen)
    assert any("leak.bin" in line for line in seen)


def test_no_file_is_written_and_no_photo_logged_while_serving_try_ons(
    pipeline, tmp_path, monkeypatch
):
    """Try-ons (signed, every format, with and without a shopper id), undecodable and
    truncated photos, through a live server: no file is opened for writing, created,
    moved or removed by any Python code of the process; the temporary folder, the home
    folder and the working directory stay empty (native libraries write there if
    anywhere); the catalog's folder holds the same files; logs hold no photo, photo hash
    or shopper id; the database keeps only the try-on's id, SKU and the shopper's id."""
    global _recorded
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    url = f"sqlite:///{catalog_dir / 'catalog.db'}"
    make_catalog(url)
    authority = create_test_authority()
    (tmp_path / "cert.pem").write_bytes(authority.credentials.certificate_chain)
    (tmp_path / "key.pem").write_bytes(authority.credentials.private_key)
    settings = loopback_settings(
        url,
        warmup=False,
        metrics_port=-1,
        c2pa_cert=str(tmp_path / "cert.pem"),
        c2pa_key=str(tmp_path / "key.pem"),
    )
    photos = [shopper(60), _encoded(shopper(61), "PNG"), _encoded(shopper(62), "WEBP")]
    unit = "shopper-7f3a9c"
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    empty = {name: tmp_path / name for name in ("tmp", "home", "cwd")}
    for folder in empty.values():
        folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(empty["tmp"]))
    monkeypatch.setattr(tempfile, "tempdir", str(empty["tmp"]))
    monkeypatch.setenv("HOME", str(empty["home"]))
    monkeypatch.chdir(empty["cwd"])
    tryon_logger = logging.getLogger("tryon")
    monkeypatch.setattr(tryon_logger, "level", logging.DEBUG)
    tryon_logger.addHandler(handler)
    catalog_files = sorted(p.name for p in catalog_dir.iterdir())
    failures = []
    try:
        with ServerThread(settings, pipeline) as running, TryOnClient(running.target) as client:
            _recorded = []
            for photo in photos:
                client.try_on(photo, "TEST-0", unit_id=unit)
                list(client.try_on_many(photo, ["TEST-1", "TEST-2"], OutputOptions("webp")))
            client.try_on(photos[0], "TEST-3", OutputOptions("png"))  # the cached person this time
            for bad in (b"not an image at all", photos[0][: len(photos[0]) // 2]):
                with pytest.raises(ServiceError) as refused:
                    client.try_on(bad, "TEST-0")
                failures.append(refused.value)
            written, _recorded = _recorded, None
    finally:
        _recorded = None
        tryon_logger.removeHandler(handler)
    assert written == []
    assert {name: sorted(os.listdir(path)) for name, path in empty.items()} == {
        "tmp": [],
        "home": [],
        "cwd": [],
    }
    assert sorted(p.name for p in catalog_dir.iterdir()) == catalog_files
    assert [f.code for f in failures] == [grpc.StatusCode.INVALID_ARGUMENT] * 2
    log = lines.getvalue()
    assert '"code": "OK"' in log  # the call lines are there, at DEBUG level
    for photo in photos:
        assert hashlib.sha256(photo).hexdigest() not in log
        assert base64.b64encode(photo[100:148]).decode() not in log
        assert repr(photo[100:148])[2:-1] not in log
    assert unit not in log
    with create_engine(url).connect() as connection:
        columns = connection.execute(text("SELECT * FROM tryons")).keys()
        units = connection.execute(text("SELECT DISTINCT unit_id FROM tryons")).scalars()
        assert sorted(columns) == ["created_at", "id", "sku", "tryon_id", "unit_id"]
        assert list(units) == [unit]


def test_the_person_cache_can_be_turned_off(pipeline, catalog_url):
    settings = loopback_settings(catalog_url, warmup=False, person_cache_entries=0)
    with ServerThread(settings, pipeline) as running, TryOnClient(running.target) as client:
        photo = shopper(63)
        first = client.try_on(photo, "TEST-0")
        again = client.try_on(photo, "TEST-1")
        held = len(running.server.engine.persons)
    assert not first.person_cached and not again.person_cached
    assert held == 0


def test_analyses_leave_the_person_cache_after_its_ttl_without_further_calls(pipeline, catalog_url):
    settings = loopback_settings(catalog_url, warmup=False, person_cache_ttl_s=0.5)
    with ServerThread(settings, pipeline) as running, TryOnClient(running.target) as client:
        photo = shopper(64)
        client.try_on(photo, "TEST-0")
        assert client.try_on(photo, "TEST-1").person_cached  # within the TTL
        persons = running.server.engine.persons
        assert len(persons) == 1
        deadline = time.monotonic() + 10
        while len(persons) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(persons) == 0, "the expired analysis stayed in memory"
        assert not client.try_on(photo, "TEST-2").person_cached
