"""Time a 64 x 64 grid (batch x input length) of static workloads with 1,024 output tokens.

Every grid point sums its 1,023 decode steps exactly (closed form), so the grid stands for
4.2 million decode steps. Prints a table; never fails on a time.
Run: .venv/bin/python benchmarks/bench_grid.py
"""

from __future__ import annotations

import numpy as np
from timing import best_of  # benchmarks/timing.py: scripts run from this folder

import llmroofline as lr


def main() -> None:
    batch = np.round(np.geomspace(1, 1024, 64))[:, None]
    inputs = np.round(np.geomspace(128, 32768, 64))[None, :]
    cases = [
        ("meta-llama/Llama-2-7b-hf", "A100-SXM4-80GB", 1, "none"),
        ("meta-llama/Llama-2-7b-hf", "A100-SXM4-80GB", 1, "default"),
        ("meta-llama/Llama-2-70b-hf", "H100-SXM5-80GB", 4, "default"),
        ("mistralai/Mixtral-8x7B-v0.1", "H20", 2, "default"),
        ("deepseek-ai/DeepSeek-V3", "H200-SXM-141GB", 8, "default"),
    ]
    print(f"{'model':40s} {'device':16s} {'tp':>3s} {'calibration':>11s} {'grid':>7s} {'ms':>8s}  goal <= 5 ms")
    for model, device, tp, cal in cases:
        m, d = lr.load_model(model), lr.load_hardware(device)
        lr.estimate(m, d, batch=1, input_len=128, output_len=8, tp=tp, calibration=cal)  # warm caches
        t = best_of(lambda m=m, d=d, tp=tp, cal=cal: lr.estimate(m, d, batch=batch, input_len=inputs,
                                                                 output_len=1024, tp=tp, calibration=cal))
        print(f"{model:40s} {device:16s} {tp:3d} {cal:>11s} {'64x64':>7s} {t * 1e3:8.1f}")


if __name__ == "__main__":
    main()
