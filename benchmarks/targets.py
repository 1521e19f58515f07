"""What every benchmark script ends with: print its targets, write its JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report_and_save(result: dict[str, Any], out: Path) -> None:
    """Print one line per target (PASS/FAIL, or per-item results) and write `result` to `out`."""
    for name, t in result.get("targets", {}).items():
        verdict = t["pass"]
        shown = verdict if isinstance(verdict, dict) else ("PASS" if verdict else "FAIL")
        print(f"target {name} {t['target']}: {shown}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
