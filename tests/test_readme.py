"""The README cannot drift: its Python examples run, and CI runs its test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_readme_python_examples_run(code: str) -> None:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


def test_ci_runs_the_readme_test_command() -> None:
    commands = [b.strip() for b in _blocks("bash") if b.count("\n") == 1]
    test_cmd = next(c for c in commands if "pytest" in c)
    demo_cmd = next(c for c in commands if "jepaworld demo" in c)
    assert test_cmd in (ROOT / ".ci" / "run").read_text()
    assert "-c constraints.txt" in test_cmd and "-c constraints.txt" in demo_cmd
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
