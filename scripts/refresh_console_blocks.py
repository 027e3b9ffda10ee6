"""Re-run every ```console block of a Markdown file and replace its output with today's.

Each block starts with `$ llmroofline ...`; the command runs with this checkout's package and the
output (stdout, then stderr) replaces the rest of the block. Run:
.venv/bin/python scripts/refresh_console_blocks.py docs/buyers-questions.md
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

BLOCK = re.compile(r"```console\n\$ (?P<cmd>.+?)\n(?P<out>.*?)```", re.S)


def run(cmd: str, workdir: str) -> str:
    args = shlex.split(cmd)
    exe = Path(sys.executable).with_name(args[0])
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run([str(exe), *args[1:]], capture_output=True, text=True, cwd=workdir, env=env)
    return done.stdout + done.stderr


def main(path: str) -> None:
    p = Path(path)
    with tempfile.TemporaryDirectory() as workdir:
        text = BLOCK.sub(lambda m: f"```console\n$ {m['cmd']}\n{run(m['cmd'], workdir)}```", p.read_text())
    p.write_text(text)
    print(f"refreshed {path}")


if __name__ == "__main__":
    main(sys.argv[1])
