"""Refusals with the bundled weights: every generated shopper is dressed, photos without a
person are refused with FAILED_PRECONDITION."""

from __future__ import annotations

import gc
import time
import types
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import torch
from loopback import SKUS, jpeg, loopback_settings

from tryon.client import ServiceError, TryOnClient
from tryon.data.synth import generate_sample
from tryon.data.synth.scene import render_background
from tryon.imaging import decode_image
from tryon.pipeline import BUNDLED_WEIGHTS, PersonAnalysis, TryOnPipeline
from tryon.representation import PersonRepresentation
from tryon.server.app import ServerThread
from tryon.server.settings import ServerSettings

pytestmark = pytest.mark.skipif(
    not (BUNDLED_WEIGHTS / "synthetic" / "pipeline.json").exists(),
    reason="the bundled synthetic weights are not installed",
)
LANDSCAPE = (480, 640)  # height, width: the shopper photo `tryon bench --grpc` sends
# Generated shoppers (seed 202) that the bundled weights once refused as low confidence
# (0.06-0.23): a person cut off by the photo's bottom edge, or stray bits of the room,
# stretched the box (0, 10, 15, 22; 26 scored 0.30), or keeping only the largest piece of the person
# lost the upper body (41, 50, 55, 78, 82, 87). `tryon bench --report` counts refusals
# over 40 more.
ONCE_REFUSED = (0, 10, 15, 22, 26, 41, 50, 55, 78, 82, 87)


@pytest.fixture(scope="module")
def synthetic() -> TryOnPipeline:
    torch.set_num_threads(2)
    return TryOnPipeline.from_pretrained("synthetic")


@pytest.fixture(scope="module")
def client(synthetic: TryOnPipeline, catalog_url: str) -> Iterator[TryOnClient]:
    settings = loopback_settings(catalog_url, min_confidence=ServerSettings.min_confidence)
    with ServerThread(settings, synthetic) as server, TryOnClient(server.target, 60) as client:
        yield client


@pytest.fixture(scope="module")
def once_refused() -> dict[int, bytes]:
    """The once-refused shoppers as JPEG bytes (generating one takes about a second)."""
    return {i: jpeg(generate_sample(202, i, LANDSCAPE).person) for i in ONCE_REFUSED}


def test_shoppers_once_refused_pass_the_confidence_rule(synthetic, once_refused):
    threshold = ServerSettings.min_confidence
    scores = {
        i: synthetic.analyse_person(decode_image(photo)).confidence
        for i, photo in once_refused.items()
    }
    assert min(scores.values()) >= threshold, scores


@pytest.mark.parametrize("index", ONCE_REFUSED[:2])
def test_a_shopper_once_refused_is_dressed_over_grpc(client, once_refused, index):
    result = client.try_on(once_refused[index], SKUS[0])
    assert (result.height, result.width) == LANDSCAPE


def _empty_photos() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    rooms = [(render_background(rng, LANDSCAPE) * 255).astype(np.uint8) for _ in range(6)]
    blank = [np.full((*LANDSCAPE, 3), grey, np.uint8) for grey in (0, 128, 255)]
    return rooms + blank


@pytest.mark.parametrize("pixels", _empty_photos(), ids=lambda _: "empty")
def test_photos_without_a_person_are_refused(client, pixels):
    with pytest.raises(ServiceError) as refused:
        client.try_on(jpeg(pixels), SKUS[0])
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "person" in refused.value.message


def test_a_refused_photo_is_freed_when_its_call_ends(client):
    """Not kept in a reference cycle until the next full garbage collection: under a
    stream of refused photos that held 1.2-1.3 GiB resident, against 0.9."""
    rng = np.random.default_rng(7)
    room = jpeg((render_background(rng, LANDSCAPE) * 255).astype(np.uint8))
    gc.collect()
    gc.disable()  # no collection may free the cycle before it is looked for
    try:
        for _ in range(3):
            with pytest.raises(ServiceError):
                client.try_on(room, SKUS[0])
        time.sleep(0.5)  # the server finishes each call after the client has its status
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        held = [o for o in gc.garbage if isinstance(o, (PersonAnalysis, PersonRepresentation))]
        frames = [o for o in gc.garbage if isinstance(o, types.FrameType)]
        server_frames = [f for f in frames if "/tryon/server/" in f.f_code.co_filename]
        photos = [f for f in server_frames if hasattr(f.f_locals.get("request"), "person_image")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not held and not photos
