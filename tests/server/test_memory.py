from __future__ import annotations

import ctypes
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
