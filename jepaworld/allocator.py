"""Keep freed CPU tensor memory in the process (glibc malloc), so training does not page-fault.

glibc serves an allocation above its mmap threshold with a fresh `mmap` and unmaps it on `free`;
the threshold starts at 128 KiB and rises only as larger mapped blocks are freed (up to 32 MiB),
and free memory at the top of the heap beyond `M_TRIM_THRESHOLD` goes back to the OS. A training
step of the default world model allocates and frees dozens of activation tensors of 1 to 17 MiB
(the first conv layer's output alone is 64 clips x 4 frames x 16 x 32 x 32 floats = 16 MiB), in an
order that varies, so some of them keep landing in memory the process has just given back, and the
kernel zero-fills each 4 KiB page on first touch, inside whichever op first writes the tensor.

`keep_freed_memory` sets `M_MMAP_THRESHOLD` to glibc's largest allowed value (32 MiB on 64-bit),
so tensors up to that size come from the heap from the first step, and `M_TRIM_THRESHOLD` to the
largest int, so the heap is not shrunk: freed blocks are reused, already mapped. The process's peak
memory barely changes (what a step uses is reused, not added); memory freed at the end is not
returned to the OS until the process exits.

Measured with `benchmarks/perf.py` against `--system-malloc` (2-core CPU, torch 2.13, float32,
batch 64 x 4 frames; frames/s of model-only training steps): see that script's docstring. Where
another allocator is preloaded (jemalloc, tcmalloc, mimalloc through LD_PRELOAD) it already does
this job and nothing is changed; this one needs nothing installed and no environment variable set
before Python starts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's cap on 64-bit: 4 MiB * sizeof(long)
TRIM_NEVER = 2**31 - 1

OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_applied = False


def is_glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def preloaded_allocator() -> str | None:
    """The name of an allocator preloaded in place of glibc's malloc (LD_PRELOAD), if any."""
    preload = os.environ.get("LD_PRELOAD", "")
    return next((name for name in OTHER_ALLOCATORS if name in preload), None)


def keep_freed_memory() -> bool:
    """Tune glibc malloc as the module docstring says; True when it is in effect (now or from an
    earlier call), False where the C library is not glibc (macOS, musl, Windows) or another
    allocator is preloaded: nothing done.
    Process-wide and not undone; `jepaworld train` calls it for CPU training."""
    global _applied
    if _applied:
        return True
    if not is_glibc():
        return False
    if (other := preloaded_allocator()) is not None:
        log.info("%s is preloaded (LD_PRELOAD): glibc malloc left as it is", other)
        return False
    libc = ctypes.CDLL(None)  # the symbols already loaded into the process, glibc's among them
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_NEVER) == 1 and ok
    if not ok:
        log.warning("glibc mallopt refused the allocator settings; training runs slower on CPU")
        return False
    _applied = True
    log.info("glibc malloc keeps freed memory (mmap threshold 32 MiB, no trimming)")
    return True


def keeping_freed_memory() -> bool:
    """Whether `keep_freed_memory` is in effect in this process."""
    return _applied
