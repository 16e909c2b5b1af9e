"""The parser's network on OpenVINO's CPU runtime: exported once beside the weights, run
instead of eager PyTorch where it is faster.

Why. On a 2-core CPU with AVX512-BF16 the parser's network (an smp U-Net on a timm
RegNet) takes 9.2-10.8 ms in OpenVINO against 17.8-18.0 ms in eager PyTorch, both in
bfloat16; a new photo runs it twice (framing, then the crop), and its try-on took 5-12%
less in process (docs/speed.md). Where the CPU lacks bfloat16, OpenVINO in float32 was
slower than eager, so `auto` uses it only with bfloat16.

What makes it pay inside the pipeline, found by measurement:
- the output is laid out NHWC by OpenVINO itself and handed to torch as a channels-last
  view: the usual layout made the framing pass's argmax over labels 6.5 ms instead of 0.8;
- OpenVINO's threads stay pinned to cores (its default): unpinned, the torch networks
  after it ran 2-4 ms slower;
- a model compiled for each input size the common photo shapes need, at warm-up: one
  compiled for dynamic shapes took 12.4-13.1 ms a call against 9.2 ms (and 17 ms where
  the framing pass and the close look alternated sizes), so it runs only the rare
  shapes.

Files (in the parser's folder, written by `export_parser_network`): `openvino/network.xml`
and `network.bin` (OpenVINO's IR, weights in float16: 5.5 MB) and `openvino/source.json`, the
SHA-256 of the `model.safetensors` they were made from: an export that no longer matches
its weights is never run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tryon.errors import WeightsError
from tryon.models.precision import cpu_multiplies_bfloat16

if TYPE_CHECKING:
    from tryon.models.parser import HumanParser

EXPORT_FOLDER = "openvino"
NETWORK_FILE = "network.xml"
NETWORK_WEIGHTS_FILE = "network.bin"
SOURCE_FILE = "source.json"
WEIGHTS_FILE = "model.safetensors"
PARSER_RUNTIMES = ("auto", "torch", "openvino")
# Input shapes that get a model compiled for them (about 20 MB each, kept): at 256x192
# the framing pass's sizes for common photo shapes (`tryon.framing.common_framing_sizes`;
# the largest is also the close look's). Every other shape runs on one model compiled for
# dynamic shapes.
MAX_STATIC_SHAPES = 4
EXPORT_COMMAND = "tryon export-parser"

log = logging.getLogger(__name__)


def export_parser_network(
    parser: HumanParser, parser_folder: str | Path, *, half_weights: bool = True
) -> Path:
    """Convert `parser`'s network (the one saved in `parser_folder`) to OpenVINO's format
    in `parser_folder/openvino/`; returns that folder. Needs the `openvino` package.

    The export traces the network in float32 on a model-sized input; the input's batch,
    height and width stay dynamic. `half_weights` stores the weights in float16, half the
    size: OpenVINO folds the batch norms into the convolutions before rounding, so the
    logits move by up to about 0.02-0.15 (of values up to 30-100) against the float32
    network, far less than bfloat16 inference moves them; without it, the outputs are
    the float32 network's to 1e-3. `parser` itself is left as it was.

    OpenVINO's converter may send anonymous usage telemetry; set
    `OPENVINO_TELEMETRY_DISABLE=1` (or run `opt_in_out --opt_out`) to stop it."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    parser_folder = Path(parser_folder)
    source = parser_folder / WEIGHTS_FILE
    if not source.is_file():
        raise WeightsError(f"{parser_folder} holds no {WEIGHTS_FILE}: give a parser folder")
    network = copy.deepcopy(parser.network).float().eval()
    example = torch.zeros(1, 3, 256, 192)
    with torch.no_grad(), warnings.catch_warnings():
        # The converter traces with torch.jit, which warns that it is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        model = ov.convert_model(network, example_input=example)
    model.reshape({0: ov.PartialShape([-1, 3, -1, -1])})
    layout = PrePostProcessor(model)
    layout.output().model().set_layout(ov.Layout("NCHW"))
    layout.output().tensor().set_layout(ov.Layout("NHWC"))
    model = layout.build()
    folder = parser_folder / EXPORT_FOLDER
    folder.mkdir(exist_ok=True)
    ov.save_model(model, folder / NETWORK_FILE, compress_to_fp16=half_weights)
    record = {"weights_sha256": _sha256(source), "openvino": _installed_openvino()}
    (folder / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return folder


def export_status(parser_folder: str | Path) -> str | None:
    """None when `parser_folder` holds a current OpenVINO export of its weights that the
    installed OpenVINO can read, else why not (missing, incomplete, made from other
    weights, or written by a newer OpenVINO)."""
    folder = Path(parser_folder) / EXPORT_FOLDER
    try:
        record = json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return f"{folder} holds no OpenVINO export"
    for name in (NETWORK_FILE, NETWORK_WEIGHTS_FILE):
        if not (folder / name).is_file():
            return f"the OpenVINO export in {folder} lacks {name}"
    if record.get("weights_sha256") != _sha256(Path(parser_folder) / WEIGHTS_FILE):
        return f"the OpenVINO export in {folder} was made from other weights than {WEIGHTS_FILE}"
    written_by = record.get("openvino", "0")
    # OpenVINO reads the IR of its own year's releases and older ones.
    if _version(written_by)[:1] > _version(_installed_openvino())[:1]:
        return (
            f"the OpenVINO export in {folder} was written by OpenVINO {written_by}, newer than "
            f"the installed {_installed_openvino()} (or upgrade openvino)"
        )
    return None


class OpenVinoNetwork:
    """A parser network exported by `export_parser_network`, compiled for the CPU.

    Call it as the eager network: `(B, 3, H, W)` float in [-1, 1] (H and W multiples of
    32) -> `(B, num_labels + num_keypoints, H, W)` float32, laid out channels-last (a
    view of OpenVINO's NHWC output). Not thread-safe: call it from one thread (the
    server's model thread).

    The first `MAX_STATIC_SHAPES` input shapes (or those given to `compile`, which the
    service passes at warm-up) each get a model compiled for that shape on first use
    (0.1-0.3 s) and kept; any other shape runs on one model compiled for dynamic shapes,
    so that no shopper waits for a compilation. Compiled for its shape the network took
    9.2 ms a call, for dynamic shapes 12.4-13.1 ms; recompiling on demand with a few
    models kept cost 103-141 ms whenever photos of alternating shapes evicted each
    other's.
    """

    def __init__(self, parser_folder: str | Path, precision: torch.dtype, threads: int) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(Path(parser_folder) / EXPORT_FOLDER / NETWORK_FILE)
        hint = "bf16" if precision == torch.bfloat16 else "f32"
        self._config = {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": str(max(threads, 1)),
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.max_static_shapes = MAX_STATIC_SHAPES
        self._static: dict[tuple[int, ...], object] = {}
        self._dynamic = None
        self._cloning = threading.Lock()  # the source model is cloned one thread at a time

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """The network's logits for `image` (see the class)."""
        request = self._request(tuple(image.shape))
        pixels = np.ascontiguousarray(image.detach().float().cpu().numpy())
        output = request.infer([pixels])[0]  # a copy, NHWC
        return torch.from_numpy(output).permute(0, 3, 1, 2)

    @property
    def compiled_shapes(self) -> list[tuple[int, ...]]:
        """The input shapes that have a model compiled for them, in the order compiled."""
        return list(self._static)

    @property
    def runs_dynamic_shapes(self) -> bool:
        """Whether a shape beyond those has come, and the dynamic model is compiled."""
        return self._dynamic is not None

    def compile(self, shapes: list[tuple[int, ...]]) -> None:
        """Compile a model for each input shape `(B, 3, H, W)` now, not on its first call;
        room is made for all of them. Two at a time: OpenVINO's compilation is partly
        serial, and four took 0.24 s so, against 0.42 s one by one on 2 cores."""
        missing = [
            shape for shape in dict.fromkeys(map(tuple, shapes)) if shape not in self._static
        ]
        wanted = len(self._static) + len(missing)
        self.max_static_shapes = max(self.max_static_shapes, wanted)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for shape, request in zip(missing, pool.map(self._compile, missing), strict=True):
                self._static[shape] = request

    def _request(self, shape: tuple[int, ...]):
        """The inference request for `shape`: its own compiled model while there is room
        for one, else the dynamic one."""
        request = self._static.get(shape)
        if request is None and len(self._static) < self.max_static_shapes:
            request = self._static[shape] = self._compile(shape)
        if request is None:
            if self._dynamic is None:
                self._dynamic = self._compile(None)
            request = self._dynamic
        return request

    def _compile(self, shape: tuple[int, ...] | None):
        """An inference request for a model compiled for `shape` (None: dynamic shapes).
        Safe to call from several threads at once."""
        import openvino as ov

        model = self._model
        if shape is not None:
            with self._cloning:
                model = model.clone()
            model.reshape({0: ov.PartialShape(list(shape))})
        return self._core.compile_model(model, "CPU", self._config).create_infer_request()


def requested_parser_runtime(name: str | None = None) -> str:
    """The parser runtime asked for: `name`, else `TRYON_PARSER_RUNTIME`, else "auto"."""
    return name or os.environ.get("TRYON_PARSER_RUNTIME") or "auto"


def resolve_parser_runtime(
    name: str, parser_folder: Path, precision: torch.dtype, device: torch.device
) -> OpenVinoNetwork | None:
    """The OpenVINO network to run the parser with, or None for eager PyTorch.

    name: "torch"; "openvino" (an error when it cannot be used); "auto": OpenVINO when
    the networks run in bfloat16 on a CPU with bfloat16 dot products, the `openvino`
    package is installed and the folder holds a current export, else PyTorch (with a
    warning when the folder holds an export that cannot be used).
    """
    if name not in PARSER_RUNTIMES:
        raise WeightsError(
            f"unknown parser runtime {name!r}: choose one of {', '.join(PARSER_RUNTIMES)}"
        )
    if name == "torch":
        return None
    required = name == "openvino"
    if device.type != "cpu":
        if required:
            raise WeightsError(
                "the OpenVINO parser runs on the CPU only: use --device cpu, or "
                "TRYON_PARSER_RUNTIME=torch (or auto) on this device"
            )
        return None
    if not required and not (precision == torch.bfloat16 and cpu_multiplies_bfloat16()):
        return None  # without bfloat16 dot products, OpenVINO was slower than eager
    try:
        import openvino  # noqa: F401
    except ImportError:
        if required:
            raise WeightsError(
                "the OpenVINO parser needs the openvino package: pip install openvino"
            ) from None
        return None
    problem = export_status(parser_folder)
    if problem is not None:
        fix = f"run `{EXPORT_COMMAND} {parser_folder.parent}`"
        if required:
            raise WeightsError(f"{problem}: {fix}")
        if (parser_folder / EXPORT_FOLDER).exists():  # exported once, not usable now
            log.warning("parser runs in PyTorch: %s (%s)", problem, fix)
        return None
    try:
        return OpenVinoNetwork(parser_folder, precision, torch.get_num_threads())
    except RuntimeError as error:  # OpenVINO could not read the export
        reason = openvino_error_reason(error)
        fix = f"run `{EXPORT_COMMAND} {parser_folder.parent}`"
        if required:
            raise WeightsError(
                f"OpenVINO cannot read the export in {parser_folder}: {reason}: {fix}"
            ) from None
        log.warning("parser runs in PyTorch: OpenVINO cannot read its export (%s): %s", fix, reason)
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def openvino_error_reason(error: Exception) -> str:
    """The last line of an OpenVINO error, its reason (the lines before say where in its
    source it was raised)."""
    return ([line for line in str(error).splitlines() if line.strip()] or ["?"])[-1]


def _installed_openvino() -> str:
    import openvino as ov

    return ov.__version__.split("-")[0]


def _version(text: str) -> tuple[int, ...]:
    """ "2026.4.1" -> (2026, 4, 1); parts that are not numbers count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))
