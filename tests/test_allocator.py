"""glibc malloc kept from returning freed tensor memory to the OS.

Each case runs in a fresh interpreter (the setting is process-wide and not undone), with no other
allocator preloaded and no malloc tuning from the environment."""

import json
import os
import subprocess
import sys

import pytest

from jepaworld.allocator import is_glibc

ROUND = """
import ctypes, json, sys, torch
from jepaworld.allocator import keep_freed_memory, keeping_freed_memory

class MallInfo2(ctypes.Structure):  # glibc >= 2.33
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
tuned = sys.argv[1] == "keep" and keep_freed_memory()
tensors = [torch.ones(4 * 2**20) for _ in range(8)]  # 8 x 16 MiB, like a step's activations
del tensors
info = libc.mallinfo2()
print(json.dumps({"tuned": tuned, "state": keeping_freed_memory(),
                  "free_in_heap_mib": info.fordblks / 2**20}))
"""
KEPT_MIB = 8 * 16


def first_round(mode: str, **env: str) -> dict:
    """Free memory the heap keeps after 8 tensors of 16 MiB are made and freed, in a fresh
    interpreter with glibc malloc as shipped (`mode` "system") or keeping freed memory ("keep")."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LD_PRELOAD", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")
    }
    proc = subprocess.run(
        [sys.executable, "-c", ROUND, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "OMP_NUM_THREADS": "1", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not is_glibc(), reason="the setting is glibc's")
def test_freed_tensors_stay_in_the_process_when_kept() -> None:
    system, kept = first_round("system"), first_round("keep")
    assert not system["state"] and kept["tuned"] and kept["state"]
    # as shipped, the first 16 MiB blocks are mapped on their own and unmapped when freed
    assert system["free_in_heap_mib"] < 8, system
    # kept: they come from the heap and stay there, ready for the next step
    assert kept["free_in_heap_mib"] >= KEPT_MIB, kept


@pytest.mark.skipif(not is_glibc(), reason="the setting is glibc's")
def test_a_preloaded_allocator_is_left_alone() -> None:
    # the loader skips a library that does not exist (with a warning): only the name decides
    result = first_round("keep", LD_PRELOAD=" /nonexistent/libjemalloc.so.2")
    assert not result["tuned"] and not result["state"]
