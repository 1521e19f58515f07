"""Keep freed CPU tensor memory in the process (glibc malloc), so training does not page-fault.

glibc serves a large allocation with a fresh `mmap` and unmaps it again on `free`. Its threshold for
"large" adapts upwards only while freed blocks are small enough, and freed heap memory above
`M_TRIM_THRESHOLD` goes back to the OS. A training step of the default world model allocates and
frees dozens of activation tensors of 1 to 17 MiB (the first conv layer's output alone is
64 clips x 4 frames x 16 x 32 x 32 floats = 16 MiB), so every step maps them afresh and the kernel
zero-fills each 4 KiB page on first touch: an element-wise op such as GELU then runs at a fraction
of its speed on memory it has used before.

`keep_freed_memory` sets `M_MMAP_THRESHOLD` to glibc's largest allowed value (32 MiB on 64-bit),
so tensors up to that size come from the heap, and `M_TRIM_THRESHOLD` to the largest int, so the
heap is not shrunk: freed blocks are reused by the next step, already mapped. The process's peak
memory barely changes (what a step uses is reused, not added); what changes is that memory freed at
the end is not returned to the OS until the process exits.

Measured on this workplace's 2-core CPU (torch 2.13, default model, batch 64 x 4 frames, float32):
a training step 86 ms -> 79 ms; at batch 128, 176 ms -> 145 ms (benchmarks/perf.py measures both
ways: `--system-malloc`). Other allocators (jemalloc, tcmalloc via LD_PRELOAD) do the same job from
outside; this needs nothing installed and no environment variable set before Python starts.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's cap on 64-bit: 4 MiB * sizeof(long)
TRIM_NEVER = 2**31 - 1

_applied = False


def is_glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Tune glibc malloc as the module docstring says; True when it is in effect (now or from an
    earlier call), False where the C library is not glibc (macOS, musl, Windows: nothing done).
    Process-wide and not undone; `jepaworld train` calls it for CPU training."""
    global _applied
    if _applied:
        return True
    if not is_glibc():
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
