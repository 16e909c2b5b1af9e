"""BoundedCache: recency, expiry, weight bound, hit counting; the garment cache's bytes."""

from __future__ import annotations

import torch
from loopback import loopback_settings, png
from prometheus_client import generate_latest

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.onboarding import make_fields, prepare_images
from catalog.repository import save_garment
from tryon.data.synth import render_garment
from tryon.server.app import TryOnServer
from tryon.server.caches import BoundedCache
from tryon.server.garments import PreparedGarment


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_least_recently_used_entry_goes_first():
    cache: BoundedCache[str] = BoundedCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now "b" is the least recently used
    cache.put("c", "C")
    assert cache.get("b") is None
    assert cache.get("a") == "A" and cache.get("c") == "C"


def test_entries_expire_after_the_ttl():
    clock = FakeClock()
    cache: BoundedCache[str] = BoundedCache(10, ttl_s=60, clock=clock)
    cache.put("photo", "analysis")
    clock.now = 59
    assert cache.get("photo") == "analysis"
    clock.now = 61
    assert cache.get("photo") is None
    assert len(cache) == 0


def test_total_weight_stays_within_the_bound():
    cache: BoundedCache[bytes] = BoundedCache(100, weigh=len, max_weight=10)
    cache.put("a", b"x" * 6)
    cache.put("b", b"x" * 6)  # 12 > 10: "a" goes
    assert cache.get("a") is None and cache.get("b") is not None
    cache.put("huge", b"x" * 11)  # heavier than the bound: not kept, evicts nothing
    assert cache.get("huge") is None and cache.get("b") is not None
    assert cache.weight == 6


def test_lookups_are_reported_as_hits_and_misses():
    seen: list[bool] = []
    cache: BoundedCache[int] = BoundedCache(4, on_lookup=seen.append)
    cache.get("k")
    cache.put("k", 1)
    cache.get("k")
    assert seen == [False, True]


def test_size_changes_are_reported_for_the_metrics():
    sizes: list[tuple[int, int]] = []
    cache: BoundedCache[bytes] = BoundedCache(
        2, weigh=len, max_weight=100, on_change=lambda n, weight: sizes.append((n, weight))
    )
    cache.put("a", b"x" * 10)
    cache.put("b", b"x" * 20)
    cache.put("c", b"x" * 30)  # two entries at most: "a" goes
    assert sizes == [(1, 10), (2, 30), (2, 50)]


def test_prepared_garments_hold_8_bit_pixels_and_give_back_the_exact_network_inputs(pipeline):
    image, mask = render_garment(3, 0, pipeline.size)
    tensors = pipeline.prepare_garments([image], [mask])
    garment = PreparedGarment.from_tensors("SKU", 1, "top", *tensors)
    assert torch.equal(garment.image, tensors[0]) and torch.equal(garment.mask, tensors[1])
    float32_bytes = sum(t.numel() * t.element_size() for t in tensors)
    assert garment.nbytes * 4 == float32_bytes


def test_the_garment_cache_stays_within_its_mib(pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    skus = [f"BIG-{index}" for index in range(8)]
    add_garments(url, skus)
    server = TryOnServer(loopback_settings(url, garment_cache_mib=1, warmup=False), pipeline)
    store = server.engine.garments
    try:
        store.fetch(skus, pipeline.prepare_garments)
        text = generate_latest(server.metrics.registry).decode()
    finally:
        server.database.dispose()
    one = (3 + 1) * 256 * 192  # 8-bit pixels and mask at 256x192: 0.19 MiB
    assert len(store.cache) == 1024 * 1024 // one == 5  # the three oldest went
    assert store.cache.get(skus[0]) is None and store.cache.get(skus[-1]) is not None
    assert f'tryon_cache_bytes{{cache="garment"}} {float(5 * one)}' in text


def add_garments(url: str, skus: list[str]) -> None:
    engine = create_catalog_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        for index, sku in enumerate(skus):
            photo, mask = render_garment(11, index)
            images = prepare_images(png(photo), png(mask)).images
            save_garment(session, make_fields(sku, f"Top {index}", "top"), images, activate=True)
    engine.dispose()
