"""The README's Python examples run as written, and its first two commands are the documented ones."""

from __future__ import annotations

import re

from .conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation


def test_readme_opens_with_the_two_commands_ci_uses():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)[:2]
    assert "llmroofline demo" in commands[0]
    assert "pytest" in commands[1]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci
