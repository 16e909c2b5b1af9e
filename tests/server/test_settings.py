"""ServerSettings: defaults, TRYON_* variables, flags over variables, clear errors."""

from __future__ import annotations

import os

import pytest

from tryon.errors import InvalidInputError
from tryon.server.settings import ServerSettings


def test_environment_overrides_defaults_and_flags_override_the_environment():
    environ = {"TRYON_MAX_BATCH": "4", "TRYON_PORT": "6000", "TRYON_WARMUP": "false"}
    settings = ServerSettings.load(environ, port=7000, max_wait_ms=None)
    assert settings.max_batch == 4
    assert settings.port == 7000  # the flag wins
    assert settings.warmup is False
    assert settings.max_wait_ms == ServerSettings().max_wait_ms  # None flags are unset


def test_database_url_and_weights_come_from_their_usual_variables():
    environ = {"TRYON_DATABASE_URL": "sqlite:///x.db", "TRYON_WEIGHTS": "viton"}
    settings = ServerSettings.load(environ)
    assert (settings.database_url, settings.weights) == ("sqlite:///x.db", "viton")


def test_precision_comes_from_its_variable_and_defaults_to_auto():
    assert ServerSettings.load({}).precision == "auto"
    assert ServerSettings.load({"TRYON_PRECISION": "float32"}).precision == "float32"


def test_malformed_variable_names_itself():
    with pytest.raises(InvalidInputError, match="TRYON_MAX_BATCH='eight'"):
        ServerSettings.load({"TRYON_MAX_BATCH": "eight"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_batch": 0}, "max_batch must be at least 1"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"max_batch": 16, "max_queue": 8}, "max_queue"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"precision": "fp16"}, "precision 'fp16' is not one of auto, float32, bfloat16"),
        ({"parser_runtime": "onnx"}, "parser_runtime 'onnx' is not one of auto, torch, openvino"),
    ],
)
def test_impossible_settings_are_refused(changes, message):
    with pytest.raises(InvalidInputError, match=message):
        ServerSettings(**changes)


def test_garment_cache_is_bounded_in_mib_from_its_variable():
    assert ServerSettings().garment_cache_bytes == 128 * 1024 * 1024
    settings = ServerSettings.load({"TRYON_GARMENT_CACHE_MIB": "32"})
    assert settings.garment_cache_bytes == 32 * 1024 * 1024
    assert settings.garment_cache_entries == ServerSettings().garment_cache_entries
    with pytest.raises(InvalidInputError, match="garment_cache_mib must not be negative"):
        ServerSettings(garment_cache_mib=-1)
    with pytest.raises(InvalidInputError, match="stall_s must be positive"):
        ServerSettings(stall_s=0)


def test_model_thread_runs_below_the_event_loop_so_refusals_need_no_free_core(server):
    """The thread that runs the networks (and the torch workers it starts) yields to the
    event loop that answers refusals and health checks."""

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)  # Linux: the calling thread

    model = server.server.engine.model_thread.submit(niceness).result()
    loop = server.run(_on_loop(niceness))
    assert ServerSettings().model_niceness == 5
    assert model - loop == min(5, 19 - loop)  # relative to the process, 19 at most
    with pytest.raises(InvalidInputError, match="model_niceness must be between 0 and 19"):
        ServerSettings(model_niceness=20)


async def _on_loop(function):  # noqa: ANN001, ANN202
    return function()
