from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from tryon.server.memory import limit_malloc_arenas, release_free_memory

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the allocator knobs are glibc's"
)


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@glibc_only
def test_freed_memory_goes_back_to_the_system():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # Many small blocks live on the heap, which glibc keeps after free (large ones are
    # unmapped at once and would prove nothing).
    blocks = [libc.malloc(4096) for _ in range(40_000)]
    pin = libc.malloc(64)  # above them, so free() alone cannot shrink the heap
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    for block in blocks:
        libc.free(block)
    before = resident_kib()

    assert release_free_memory()
    assert resident_kib() < before - 50_000  # most of the ~160 MB came back
    libc.free(pin)


@glibc_only
def test_arena_limit_is_accepted():
    assert limit_malloc_arenas(2)


def test_the_server_process_keeps_the_kernel_compiler_out():
    """Triton (~80 MB resident) is loaded by a plain torchvision import when installed;
    after `skip_kernel_compiler` it is not, and the networks still run."""
    pytest.importorskip("triton", reason="Triton is not installed: nothing to keep out")
    probe = (
        "import torch\n"
        "from tryon.models import HumanParser\n"
        "HumanParser().eval()(torch.rand(1, 3, 64, 48))\n"
        "print(any('libtriton' in line for line in open('/proc/self/maps')))\n"
    )
    skipping = "from tryon.server.memory import skip_kernel_compiler; skip_kernel_compiler()\n"
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    kept_out = subprocess.run(
        [sys.executable, "-c", skipping + probe], capture_output=True, text=True
    )
    assert plain.stdout.strip() == "True", plain.stderr
    assert kept_out.stdout.strip() == "False", kept_out.stderr
