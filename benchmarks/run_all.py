"""Run every benchmark script in this folder; print their tables. Never fails on a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
status = 0
for script in sorted(here.glob("bench_*.py")):
    print(f"\n## {script.name}", flush=True)
    rc = subprocess.call([sys.executable, str(script)])
    if rc:
        print(f"{script.name} exited with {rc}")
        status = 1
sys.exit(status)
