"""The engine against numpy's floor, and the command line's wall time (issue targets in the last column).

    python benchmarks/bench_speed.py [--repeat N] [--skip-cli]

Rows:
- `grid 64x64` / `grid 1024x1024`: one static `estimate` over batch x input length (Llama-2 7B on an
  A100, bundled calibration, 1,024 output tokens: each point sums its 1,023 decode steps). Peak
  memory is the largest amount numpy and Python held at once during the call (tracemalloc).
- `floor`: the least numpy can do for the same grid: a 15-operator roofline, max(FLOPs / peak,
  bytes / bandwidth) summed over operators, for one pass (no decode sum, no calibration).
- `estimate (process)`: one `llmroofline estimate` command, process start to exit; its floor is a
  process that only imports numpy, typer, rich and yaml.
- `recommend`: every catalog device for one model (warm: catalogs already loaded): a dense model
  (Llama-3.1 70B) and three mixtures of experts (Mixtral 8x7B and Qwen3 30B-A3B, whose expert-parallel
  layouts make about five times as many configurations, the largest searches; DeepSeek-V3, which
  needs wide expert parallelism beyond one node on most devices).

Times are medians of repeated runs (the machine is shared). Prints a table; never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import llmroofline as lr
from llmroofline.recommend import recommend

CLI = ["estimate", "--model", "llama2-7b", "--hardware", "a100", "--batch", "64", "--input", "2048",
       "--output", "128"]


def median_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    batch = np.round(np.geomspace(1, 1024, n))[:, None]
    inputs = np.round(np.geomspace(128, 32768, n))[None, :]
    return batch, inputs


def floor(batch: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """15 operators, each max(FLOPs / peak, bytes / bandwidth) over the grid, summed."""
    rng = np.random.default_rng(0)
    flop_per_token, weight_bytes, byte_per_token = rng.uniform(1e6, 1e8, (3, 15))
    tokens = batch * inputs
    total = np.zeros(np.broadcast_shapes(batch.shape, inputs.shape))
    for f, w, b in zip(flop_per_token, weight_bytes, byte_per_token, strict=True):
        total += np.maximum(f * tokens / 312e12, (w + b * tokens) / 2.0e12)
    return total


def engine(model, device, batch, inputs):
    return lr.estimate(model, device, batch=batch, input_len=inputs, output_len=1024)


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def process_wall(code: str, args: list[str], repeat: int) -> float:
    cmd = [sys.executable, "-c", code, *args]
    env = {"PYTHONPATH": str(Path(lr.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}  # this copy
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # warm the file cache

    def once():
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    return median_of(once, repeat)


def cli_wall(repeat: int) -> tuple[float, float | None]:
    """The command's wall time, and its floor: a process that only imports the libraries the
    command needs (numpy, typer, rich, yaml; typer's pydantic option checks are not among them,
    see cli/common.py)."""
    floor = process_wall("import numpy, rich.console, typer, yaml", [], repeat)
    return process_wall("import sys; from llmroofline.cli import main; sys.exit(main())", CLI, repeat), floor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    model, device = lr.load_model("llama2-7b"), lr.load_hardware("A100-SXM4-80GB")
    engine(model, device, 1, 128)  # catalogs and calibration loaded
    rows = []
    for n, target_s, target_mb, repeat in ((64, 5e-3, None, args.repeat * 5), (1024, 1.0, 700.0, max(args.repeat // 3, 3))):
        b, s = grid(n)
        t_floor = median_of(lambda b=b, s=s: floor(b, s), repeat)
        engine(model, device, b, s)  # untimed: the first large call pays the heap's page faults
        t = median_of(lambda b=b, s=s: engine(model, device, b, s), repeat)
        mb = peak_mb(lambda b=b, s=s: engine(model, device, b, s)) if target_mb else None
        rows.append((f"grid {n}x{n}", t, t_floor, mb, target_s, target_mb))
    for name, label in (("llama3.1-70b", "Llama-3.1 70B"), ("mixtral-8x7b", "Mixtral 8x7B"),
                        ("qwen3-30b-a3b", "Qwen3 30B-A3B"), ("deepseek-v3", "DeepSeek-V3")):
        recommend(name, 4096, 1024)  # its catalog entry loaded
        t = median_of(lambda name=name: recommend(name, 4096, 1024), max(args.repeat // 3, 3))
        rows.append((f"recommend, all devices, {label}", t, None, None, 0.3, None))
    if not args.skip_cli:
        t, t_floor = cli_wall(args.repeat)
        rows.append(("estimate (process)", t, t_floor, None, 0.35, None))

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    print(f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}; "
          f"load average (1, 5, 15 min) {load} at the end")
    print(f"{'case':38s} {'time':>10s} {'floor':>12s} {'x floor':>8s} {'peak MB':>8s}  target")
    for name, t, t_floor, mb, target_s, target_mb in rows:
        ratio = f"{t / t_floor:8.1f}" if t_floor else f"{'':8s}"
        fl = f"{t_floor * 1e3:9.3f} ms" if t_floor else f"{'':12s}"
        peak = f"{mb:8.0f}" if mb is not None else f"{'':8s}"
        goal = f"<= {target_s * 1e3:g} ms" if target_s < 1 else f"<= {target_s:g} s"
        goal += f", <= {target_mb:g} MB" if target_mb else ""
        ok = t <= target_s and (mb is None or mb <= target_mb)
        print(f"{name:38s} {t * 1e3:7.1f} ms {fl} {ratio} {peak}  {goal} {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
