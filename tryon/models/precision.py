"""Running the networks in bfloat16: their convolutions and matrix products, nothing else.

On CPUs that multiply bfloat16 natively (AVX512-BF16: AMD Zen 4 on, Intel Xeon with
AMX), the networks run faster in bfloat16 (the TOM 1.4-2.1x at inference, 1.6-2x in
training; docs/speed.md). `in_precision` runs a network under
`torch.autocast`, which lowers only the convolutions, matrix products and linear layers;
the thin-plate spline (float64), `grid_sample`, and everything outside the network
(decoding, losses, metrics) stay in float32, and every floating output comes back as
float32. Measured on synthetic and VITON test pairs, bfloat16 moves the evaluation's
scores by less than 0.001 (docs/speed.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from tryon.channels import concatenate_channels

PRECISIONS = ("auto", "float32", "bfloat16")
Output = TypeVar("Output")


def resolve_precision(name: str, device: str | torch.device = "cpu") -> torch.dtype:
    """The dtype the networks' convolutions run in, for a precision name.

    "auto" is bfloat16 on a CPU with native bfloat16 dot products (measured faster on an
    Intel Xeon with AMX and an AMD EPYC with AVX512-BF16, at the same scores) and float32
    anywhere else: without them a CPU emulates bfloat16, slower than float32.
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    on_cpu = torch.device(device).type == "cpu"
    return torch.bfloat16 if on_cpu and cpu_multiplies_bfloat16() else torch.float32


def precision_name(dtype: torch.dtype) -> str:
    """A dtype as the `--precision` options spell it: torch.bfloat16 -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")


def cpu_multiplies_bfloat16() -> bool:
    """Whether this CPU has bfloat16 dot products (AVX512-BF16: Intel Xeon 4th generation
    on, whose AMX tiles build on them, and AMD Zen 4 on)."""
    # PyTorch's own CPU feature check (used by its compiler); private, so guarded.
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(bf16 and bf16())


def in_precision(
    network: Callable[..., Output], dtype: torch.dtype, device_type: str = "cpu"
) -> Callable[..., Output]:
    """`network` (a module or a method) called with its convolutions in `dtype`, returning
    its floating outputs as float32 (`as_float32`).

    float32 returns `network` itself. Gradients flow through the casts, so training can
    use it too.
    """
    if dtype == torch.float32:
        return network

    @functools.wraps(network)
    def call(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            output = network(*args, **kwargs)
        return as_float32(output)

    return call


# Layers whose weights autocast would cast to the lower precision on every call.
AUTOCAST_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def store_weights_in(network: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Inference only: keep the weights of convolutions and linear layers in `dtype`, in
    place, so that autocast (`in_precision`) does not copy them on every call (10% of
    the three networks' time in bfloat16 on the CPU, docs/speed.md). Such a network runs
    only under `in_precision` with the same dtype. Returns `network`."""
    for module in network.modules():
        if isinstance(module, AUTOCAST_LAYERS):
            module.to(dtype)
    return network


def convolution_input(convolution: nn.Conv2d, *parts: torch.Tensor) -> torch.Tensor:
    """`parts` `(B, C_i, H, W)` concatenated along channels, `(B, sum C_i, H, W)`, in the
    dtype and memory layout `convolution` runs in: autocast's dtype when autocast is on
    (else the parts' own), channels-last when its weights are.

    The same values as `torch.cat(parts, 1)` with fewer passes over them
    (`concatenate_channels`); a single part already in that dtype and layout is returned
    as it is. Gradients flow to every part.
    """
    first = parts[0]
    device_type = first.device.type
    dtype = first.dtype
    if torch.is_autocast_enabled(device_type) and first.is_floating_point():
        dtype = torch.get_autocast_dtype(device_type)
    weight = convolution.weight
    layout = torch.contiguous_format
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        layout = torch.channels_last
    return concatenate_channels(parts, layout, dtype)


def as_float32(output):
    """Floating tensors in `output` (a tensor, or lists, tuples and named tuples of them)
    as float32; anything else as it is."""
    if torch.is_tensor(output):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, list):
        return [as_float32(value) for value in output]
    if isinstance(output, tuple):
        values = [as_float32(value) for value in output]
        return type(output)(*values) if hasattr(output, "_fields") else tuple(values)
    return output
