"""The try-on generator run by ONNX Runtime instead of eager PyTorch.

On CPUs without bfloat16 instructions the TOM's float32 convolutions run about twice as
fast in ONNX Runtime as in eager PyTorch (docs/speed.md). The graph is exported from the
loaded network once and kept in a cache folder under the digest of the network's weights
and the exporter's versions, so a restarted server (or a pod whose image was built with a
warm cache) loads it in a fraction of a second; where the folder cannot be written the
graph is exported in memory at every start (1-3 s).

The parser and the GMM stay in PyTorch: the parser's network ran no faster in ONNX Runtime,
and the GMM's thin-plate spline solves a linear system, which ONNX has no operator for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from tryon.models.tom import TomOutput, TryOnGenerator

log = logging.getLogger(__name__)

OPSET = 17
CACHE_ENV = "TRYON_CACHE_DIR"
RUNTIMES = ("auto", "torch", "onnxruntime")
_INPUTS = ("person", "warped_garment", "warped_mask", "background")
_OUTPUTS = ("rendered", "composition_mask", "composite", "background_mask")


def onnxruntime_available() -> bool:
    """Whether the packages that export and run the graph (onnx, onnxruntime) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def default_cache_dir() -> Path:
    """`$TRYON_CACHE_DIR`, else `$XDG_CACHE_HOME/tryon`, else `~/.cache/tryon`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tryon"


class _ForwardTuple(torch.nn.Module):
    """The generator with a tuple output the exporter can name (no None entries)."""

    def __init__(self, tom: TryOnGenerator) -> None:
        super().__init__()
        self.tom = tom

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(value for value in self.tom(*inputs) if value is not None)


class OnnxTryOnGenerator:
    """Calls like `TryOnGenerator` (inference only, float32 in and out) but runs an ONNX
    Runtime session of it.

    Args:
        tom: the loaded generator (evaluation mode, float32 weights); exported at
            `size` (H, W) with a free batch size.
        threads: ONNX Runtime's intra-op threads (torch's own count by default).
        cache_dir: where exported graphs are kept (`default_cache_dir()`); None: never
            written, exported in memory.
    """

    def __init__(
        self,
        tom: TryOnGenerator,
        size: tuple[int, int],
        *,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        import onnxruntime

        self.shows_background = tom.shows_background
        self.input_names = _INPUTS[: 4 if self.shows_background else 3]
        self.output_names = _OUTPUTS[: 4 if self.shows_background else 3]
        graph = self._graph(tom, size, cache_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )

    def __call__(
        self,
        person: torch.Tensor,
        warped_garment: torch.Tensor,
        warped_mask: torch.Tensor,
        background: torch.Tensor | None = None,
    ) -> TomOutput:
        """As `TryOnGenerator.forward`: `(B, 22, H, W)`, `(B, 3, H, W)`, `(B, 1, H, W)` and,
        for a generator that shows the background, `(B, 3, H, W)`; returns CPU tensors."""
        inputs = (person, warped_garment, warped_mask, background)[: len(self.input_names)]
        if any(value is None for value in inputs):
            raise ValueError(
                "this TOM shows the photo's background: pass the background fill "
                "(PersonRepresentation.background_fill())"
            )
        feed = {
            name: np.ascontiguousarray(value.detach().cpu().float().numpy())
            for name, value in zip(self.input_names, inputs, strict=True)
        }
        outputs = [torch.from_numpy(value) for value in self.session.run(None, feed)]
        return TomOutput(*outputs)

    def _graph(self, tom: TryOnGenerator, size: tuple[int, int], cache_dir: Path | None) -> bytes:
        """The exported graph: from the cache when it holds this network's, else exported
        (and stored there when the folder can be written)."""
        path = None
        if cache_dir is not None:
            path = cache_dir / "onnx" / f"tom-{self._digest(tom, size)}.onnx"
            if path.is_file():
                return path.read_bytes()
        graph = self._export(tom, size)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.part")
                partial.write_bytes(graph)
                partial.replace(path)  # whole or absent, also with replicas sharing the folder
            except OSError as error:
                log.info("exported TOM graph not cached (%s): exporting at every start", error)
        return graph

    def _export(self, tom: TryOnGenerator, size: tuple[int, int]) -> bytes:
        height, width = size
        channels = (tom.person_channels, 3, 1, 3)
        example = tuple(torch.zeros(1, c, height, width) for c in channels)
        buffer = io.BytesIO()
        # The TorchScript exporter (dynamo=False): torch.export could not keep the batch
        # size free in this network. It warns that it is deprecated; torch is pinned to
        # versions that have it.
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                _ForwardTuple(tom).eval(),
                example[: len(self.input_names)],
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=list(self.input_names),
                output_names=list(self.output_names),
                dynamic_axes={name: {0: "batch"} for name in self.input_names + self.output_names},
            )
        return buffer.getvalue()

    @staticmethod
    def _digest(tom: TryOnGenerator, size: tuple[int, int]) -> str:
        """Names the graph: the weights, the input size and the exporter's versions."""
        import onnx

        digest = hashlib.sha256(f"{size} {torch.__version__} {onnx.__version__} {OPSET}".encode())
        for name, tensor in tom.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:24]
