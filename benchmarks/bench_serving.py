"""Time rate sweeps of 32 points (requests at a Poisson rate: latency percentiles and capacity).

Goal: under one second per sweep on a laptop-class CPU. Prints a table; never fails on a time.
Run: .venv/bin/python benchmarks/bench_serving.py
"""

from __future__ import annotations

import numpy as np
from timing import best_of  # benchmarks/timing.py: scripts run from this folder

from llmroofline.serving import serve


def main() -> None:
    cases = [
        ("meta-llama/Llama-3.1-8B-Instruct", "H100-SXM5-80GB", 1, {}),
        ("meta-llama/Llama-3.1-70B-Instruct", "H100-SXM5-80GB", 4, {}),
        ("meta-llama/Llama-3.1-8B-Instruct", "H100-SXM5-80GB", 1, {"input_dist": "lognormal:2048:1"}),
        ("meta-llama/Llama-3.1-8B-Instruct", "H100-SXM5-80GB", 1, {"spec": "mtp:2", "acceptance": 0.7}),
        ("meta-llama/Llama-3.1-70B-Instruct", "H20", 8, {"prefill_hardware": "H800-SXM5-80GB", "prefill_tp": 4}),
    ]
    print(f"{'model':36s} {'device':16s} {'tp':>3s} {'options':40s} {'points':>6s} {'ms':>8s}  goal < 1000 ms")
    for model, device, tp, opts in cases:
        cap = serve(model, device, 1.0, 1024, 256, tp=tp, **opts).capacity_req_s  # warm caches
        rates = np.linspace(0.02, 1.1, 32) * cap
        t = best_of(lambda m=model, d=device, tp=tp, o=opts, r=rates: serve(m, d, r, 1024, 256, tp=tp, **o))
        label = ",".join(f"{k}={v}" for k, v in opts.items()) or "-"
        print(f"{model:36s} {device:16s} {tp:3d} {label[:40]:40s} {len(rates):6d} {t * 1e3:8.1f}")


if __name__ == "__main__":
    main()
