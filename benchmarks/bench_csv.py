"""Time `estimate --from-csv` on 100,000 rows (three models, three devices, three modes, mixed
batches and lengths), written as JSON to /dev/null. Prints a table; never fails on a time.
Run: .venv/bin/python benchmarks/bench_csv.py
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import tempfile
import time
from pathlib import Path

from llmroofline.cli import main as cli


def write_rows(path: Path, n: int) -> None:
    rnd = random.Random(1)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "model", "hardware", "mode", "batch", "input_len", "output_len"])
        for i in range(n):
            w.writerow([i, rnd.choice(["llama2-7b", "llama3.1-8b", "mistral-7b"]), rnd.choice(["a100", "h100", "l40s"]),
                        rnd.choice(["static", "continuous", "max"]), rnd.choice([1, 8, 64, 256]),
                        rnd.choice([128, 512, 2048]), rnd.choice([128, 512])])


def main() -> None:
    print(f"{'rows':>8s} {'s':>7s}  goal < 10 s for 100,000")
    with tempfile.TemporaryDirectory() as d:
        for n in (1_000, 100_000):
            path = Path(d) / f"rows{n}.csv"
            write_rows(path, n)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                rc = cli(["estimate", "--from-csv", str(path), "--json"])
            print(f"{n:8,d} {time.perf_counter() - t0:7.2f}" + ("" if rc == 0 else f"  exit {rc}"))


if __name__ == "__main__":
    main()
