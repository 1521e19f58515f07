"""Facts about the machine and the code that produced a measurement, stamped on every result."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: a busy machine lowers every number here."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_ticks() -> tuple[int, int]:
    """(total, idle + iowait) jiffies of all CPUs from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def cpu_busy_fraction(seconds: float = 0.5) -> float | None:
    """Fraction of all CPUs busy over `seconds`, sampled while this process sits idle."""
    try:
        total0, idle0 = cpu_ticks()
        time.sleep(seconds)
        total1, idle1 = cpu_ticks()
    except (OSError, ValueError, IndexError):
        return None
    return round(1 - (idle1 - idle0) / max(1, total1 - total0), 3)


def environment(device: torch.device) -> dict[str, Any]:
    info = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "device": str(device),
        "load_average_start": load_average(),
    }
    # other processes were using half a CPU or more just before we started (load averages lag)
    busy = info["cpu_busy_fraction_start"] = cpu_busy_fraction()
    info["machine_busy"] = bool(busy is not None and busy * (os.cpu_count() or 1) >= 0.5)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def peak_rss_mib() -> float:
    """ru_maxrss is KiB on Linux and bytes on macOS."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
