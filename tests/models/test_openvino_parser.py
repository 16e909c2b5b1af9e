"""The parser's network exported for OpenVINO: the eager network's outputs, run only while
the export matches its weights, and chosen where `auto` says it pays."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TINY_FACTORIES

from tryon.cli import main
from tryon.data.synth import generate_sample
from tryon.errors import WeightsError
from tryon.framing import box_iou
from tryon.models import HumanParser, openvino_parser
from tryon.models.openvino_parser import (
    OpenVinoNetwork,
    export_parser_network,
    export_status,
    resolve_parser_runtime,
)
from tryon.models.parser import add_parse_refiner
from tryon.pipeline import BUNDLED_WEIGHTS, TryOnPipeline

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[HumanParser, Path]:
    """A tiny seeded parser saved in a folder, exported with float32 weights."""
    torch.manual_seed(0)
    parser = TINY_FACTORIES["parser"]().eval()
    folder = tmp_path_factory.mktemp("weights") / "parser"
    parser.save_pretrained(folder)
    parser.train()
    export_parser_network(parser, folder, half_weights=False)
    assert parser.training  # the export works on a copy
    parser.eval()
    return parser, folder


@pytest.fixture
def cpu_with_bfloat16(monkeypatch):
    """`auto` sees a CPU with bfloat16 dot products, whatever this one has."""
    monkeypatch.setattr(openvino_parser, "cpu_multiplies_bfloat16", lambda: True)


@torch.inference_mode()
def test_the_export_gives_the_eager_networks_logits_to_1e_3_at_each_input_size(exported):
    parser, folder = exported
    network = OpenVinoNetwork(folder, torch.float32, threads=1)
    for size in ((256, 192), (192, 192), (256, 192), (128, 192), (192, 128), (96, 96)):
        image = torch.rand(1, 3, *size) * 2 - 1
        expected = parser.network_logits(image)
        logits = network(parser.network_input(image))
        assert logits.shape == expected.shape
        assert logits.is_contiguous(memory_format=torch.channels_last)
        assert (logits - expected).abs().max().item() < 1e-3


def test_shapes_beyond_those_compiled_run_on_the_dynamic_model_without_recompiling(
    exported, monkeypatch
):
    """Photos of alternating shapes never wait for a compilation (103-141 ms each when
    compiled models evicted each other)."""
    parser, folder = exported
    network = OpenVinoNetwork(folder, torch.float32, threads=1)
    compiled = []
    compile_one = network._compile
    monkeypatch.setattr(
        network, "_compile", lambda shape: compiled.append(shape) or compile_one(shape)
    )
    framing = [(1, 3, rows, 192) for rows in (160, 192, 224, 256, 288)]  # one past the cap
    network.compile(framing)
    assert network.compiled_shapes == framing and sorted(compiled) == sorted(framing)
    assert not network.runs_dynamic_shapes
    for _ in range(2):  # alternating shapes: each compiled at most once
        for shape in [(1, 3, 224, 192), (1, 3, 64, 64), (1, 3, 96, 64), (2, 3, 256, 192)]:
            image = torch.rand(shape) * 2 - 1
            logits = network(parser.network_input(image))
            with torch.inference_mode():
                assert (logits - parser.network_logits(image)).abs().max().item() < 1e-3
    assert compiled[len(framing) :] == [None]  # one dynamic model for the three others
    assert network.compiled_shapes == framing and network.runs_dynamic_shapes


def test_auto_runs_the_export_only_with_bfloat16_networks_on_the_cpu(
    exported, cpu_with_bfloat16, monkeypatch
):
    folder = exported[1]
    assert isinstance(resolve_parser_runtime("auto", folder, torch.bfloat16, CPU), OpenVinoNetwork)
    assert resolve_parser_runtime("auto", folder, torch.float32, CPU) is None
    assert resolve_parser_runtime("auto", folder, torch.bfloat16, torch.device("cuda")) is None
    assert resolve_parser_runtime("torch", folder, torch.bfloat16, CPU) is None
    assert isinstance(
        resolve_parser_runtime("openvino", folder, torch.float32, CPU), OpenVinoNetwork
    )
    with pytest.raises(WeightsError, match="CPU only"):
        resolve_parser_runtime("openvino", folder, torch.float32, torch.device("cuda"))
    with pytest.raises(WeightsError, match="auto, torch, openvino"):
        resolve_parser_runtime("onnx", folder, torch.float32, CPU)
    # Without bfloat16 dot products, OpenVINO's bfloat16 is emulated and slower than eager.
    monkeypatch.setattr(openvino_parser, "cpu_multiplies_bfloat16", lambda: False)
    assert resolve_parser_runtime("auto", folder, torch.bfloat16, CPU) is None


def test_a_broken_export_falls_back_to_pytorch_with_a_warning(
    exported, tmp_path, cpu_with_bfloat16, caplog
):
    broken = tmp_path / "weights" / "parser"
    shutil.copytree(exported[1], broken)
    network_weights = broken / "openvino" / "network.bin"
    network_weights.write_bytes(network_weights.read_bytes()[:1000])  # a cut-off copy
    with caplog.at_level(logging.WARNING):
        assert resolve_parser_runtime("auto", broken, torch.bfloat16, CPU) is None
    assert "cannot read its export" in caplog.text and "tryon export-parser" in caplog.text
    with pytest.raises(WeightsError, match="cannot read the export.*tryon export-parser"):
        resolve_parser_runtime("openvino", broken, torch.bfloat16, CPU)
    network_weights.unlink()
    assert "lacks network.bin" in export_status(broken)
    shutil.copy(exported[1] / "openvino" / "network.bin", network_weights)
    record = json.loads((broken / "openvino" / "source.json").read_text())
    record["openvino"] = "9999.0.0"
    (broken / "openvino" / "source.json").write_text(json.dumps(record))
    assert "newer than the installed" in export_status(broken)


def test_an_export_of_other_weights_is_never_run(exported, tmp_path, cpu_with_bfloat16, caplog):
    parser, folder = exported
    retrained = tmp_path / "weights" / "parser"
    shutil.copytree(folder, retrained)
    changed = TINY_FACTORIES["parser"]()
    changed.load_state_dict(parser.state_dict())
    with torch.no_grad():
        next(changed.parameters()).add_(0.1)
    changed.save_pretrained(retrained)  # the export beside it is now stale

    assert "other weights" in export_status(retrained)
    with caplog.at_level(logging.WARNING):
        assert resolve_parser_runtime("auto", retrained, torch.bfloat16, CPU) is None
    assert "tryon export-parser" in caplog.text
    with pytest.raises(WeightsError, match="tryon export-parser"):
        resolve_parser_runtime("openvino", retrained, torch.float32, CPU)


def test_a_parser_without_an_export_runs_in_pytorch_unless_openvino_is_asked_for(
    exported, tmp_path, caplog
):
    plain = tmp_path / "weights" / "parser"
    exported[0].save_pretrained(plain)
    with caplog.at_level(logging.WARNING):
        assert resolve_parser_runtime("auto", plain, torch.bfloat16, CPU) is None
    assert not caplog.text  # nothing exported, nothing to warn about
    with pytest.raises(WeightsError, match="holds no OpenVINO export.*tryon export-parser"):
        resolve_parser_runtime("openvino", plain, torch.bfloat16, CPU)


@pytest.mark.parametrize("name", ["synthetic", "viton"])
def test_the_bundled_weights_hold_a_current_export(name):
    assert export_status(BUNDLED_WEIGHTS / name / "parser") is None


def test_the_bundled_export_analyses_a_shopper_as_the_eager_parser_does():
    photo = generate_sample(202, 3, (480, 640)).person
    eager, exported = (
        TryOnPipeline.from_pretrained("synthetic", precision="float32", parser_runtime=runtime)
        for runtime in ("torch", "openvino")
    )
    assert (eager.parser_runtime_name, exported.parser_runtime_name) == ("torch", "openvino")
    first, second = eager.analyse_person(photo), exported.analyse_person(photo)
    assert box_iou(first.box, second.box) > 0.98
    assert (first.parse == second.parse).float().mean().item() > 0.999
    assert abs(first.confidence - second.confidence) < 0.01
    assert (first.keypoints - second.keypoints).abs().max().item() < 1.0  # pixels


def test_export_parser_writes_an_export_the_pipeline_runs(tmp_path, capsys):
    weights = tmp_path / "synthetic"
    shutil.copytree(
        BUNDLED_WEIGHTS / "synthetic", weights, ignore=shutil.ignore_patterns("openvino")
    )
    with pytest.raises(SystemExit) as finished:
        main(["export-parser", str(weights), "--json", "--output", str(tmp_path / "export.json")])
    assert finished.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "export.json").read_text())
    assert set(printed["files"]) == {"network.xml", "network.bin", "source.json"}
    assert export_status(weights / "parser") is None
    pipeline = TryOnPipeline.from_pretrained(weights, parser_runtime="openvino")
    assert np.isfinite(pipeline.parse(torch.zeros(1, 3, 256, 192))[0].numpy()).all()


def test_export_parser_names_the_fix_for_a_folder_without_weights(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["export-parser", str(tmp_path / "nowhere")])
    assert stopped.value.code == 1
    assert "no pipeline weights" in capsys.readouterr().err


def test_a_parser_loaded_without_its_network_keeps_the_rest_and_refuses_to_run_it(tmp_path):
    folder = BUNDLED_WEIGHTS / "synthetic" / "parser"
    whole = HumanParser.from_pretrained(folder)
    headless = HumanParser.from_pretrained(folder, build_network=False)
    assert headless.network is None and headless.config == whole.config
    kept = headless.state_dict()
    assert kept and all(name.startswith("refiner.") for name in kept)
    assert all(torch.equal(tensor, whole.state_dict()[name]) for name, tensor in kept.items())
    with pytest.raises(RuntimeError, match="without its network"):
        headless.network_logits(torch.zeros(1, 3, 64, 64))
    with pytest.raises(WeightsError, match="without its network.*load it whole"):
        headless.save_pretrained(tmp_path / "headless")
    assert not (tmp_path / "headless").exists()
    with pytest.raises(ValueError, match="without its network"):
        add_parse_refiner(
            HumanParser.from_pretrained(BUNDLED_WEIGHTS / "viton" / "parser", build_network=False),
            8,
        )
    with pytest.raises(TypeError, match="no option build_netwrok.*build_network"):
        HumanParser.from_pretrained(folder, build_netwrok=False)


def test_a_pipeline_on_openvino_never_loads_nor_imports_the_eager_parser_network():
    """About 1 s less to start: segmentation-models-pytorch imports timm, torchvision and
    torch._dynamo."""
    code = (
        "import sys; from tryon.pipeline import TryOnPipeline; "
        "p = TryOnPipeline.from_pretrained('synthetic', parser_runtime='openvino'); "
        "print(p.parser.network is None, "
        "any(m in sys.modules for m in ('segmentation_models_pytorch', 'timm', 'torchvision')))"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["True", "False"]


def test_a_pipeline_on_openvino_cannot_be_saved_and_says_how(tmp_path):
    pipeline = TryOnPipeline.from_pretrained(
        "synthetic", precision="float32", fold=False, parser_runtime="openvino"
    )
    with pytest.raises(WeightsError, match="parser_runtime='torch'"):
        pipeline.save_pretrained(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_auto_runs_the_parser_in_pytorch_where_openvino_cannot_compile_it(
    cpu_with_bfloat16, monkeypatch, caplog
):
    def fail(self, shape):
        raise RuntimeError("Exception from src/plugin.cpp:1:\nno kernel for this CPU")

    monkeypatch.setattr(OpenVinoNetwork, "_compile", fail)
    with caplog.at_level(logging.WARNING):
        pipeline = TryOnPipeline.from_pretrained("synthetic", precision="bfloat16")
    assert pipeline.parser_runtime_name == "torch" and pipeline.parser.network is not None
    assert "cannot compile its export: no kernel for this CPU" in caplog.text
    with pytest.raises(WeightsError, match="no kernel for this CPU.*TRYON_PARSER_RUNTIME=torch"):
        TryOnPipeline.from_pretrained("synthetic", parser_runtime="openvino")
