"""Keeping the server's resident memory close to what it uses.

PyTorch imports Triton (its GPU kernel compiler, ~80 MB resident) whenever the package is
installed, as it is beside CUDA builds of torch, although this server compiles nothing;
`skip_kernel_compiler` keeps it out of the process.

glibc's allocator gives each thread that allocates its own arena and keeps freed memory
for reuse; a server whose model batches allocate and free hundreds of MB, from several
threads, then holds far more than it uses. Two arenas and a trim once batches pause keep
the resident size near the working set (measured in README's service numbers). Other C
libraries (musl in Alpine, macOS) have neither knob; there both calls do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - only glibc has both
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's per-thread arenas at `count` (call before starting threads); True if
    the C library took it."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, count))


def release_free_memory() -> bool:
    """Give memory freed since the last call back to the system; True if some was."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def skip_kernel_compiler() -> None:
    """Keep Triton out of this process (call before anything imports torchvision or
    torch._dynamo; torch then reports Triton unavailable, which eager inference never
    needs)."""
    sys.modules.setdefault("triton", None)
