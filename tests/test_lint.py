"""Lint and type checks as tests: `ruff check src tests` and `mypy` (configured in pyproject.toml)
must report nothing. Each is skipped, saying so, where the tool is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT


def tool(name: str) -> list[str]:
    """The tool from the interpreter's own environment (the venv), else from PATH; skip if absent."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' installs it)")
    return [found]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_ruff():
    r = run([*tool("ruff"), "check", "--output-format", "concise", "src", "tests"])
    assert r.returncode == 0, f"ruff found problems:\n{r.stdout}{r.stderr}"


def test_mypy():
    r = run([*tool("mypy")])  # files and options: [tool.mypy] in pyproject.toml
    assert r.returncode == 0, f"mypy found problems:\n{r.stdout}{r.stderr}"
