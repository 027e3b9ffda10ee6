"""How long one 256 × 256 comparison mesh takes, by method and metric (goal: well under 1 s).

    .venv/bin/python benchmarks/bench_mesh.py [--model M] [--a D] [--b D] [--size N] [--repeat R] [--plot]

Prints the first (cold: catalog loading) and the best of R warm runs of `llmroofline.compare`
on an N × N grid (batch 1..N, sequence length 128..131072 log-spaced), and with --plot the time
to draw the static pair figure and the interactive one (plotting is not part of the goal).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from llmroofline.compare import compare

GOAL_S = 1.0


def best_of(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(max(repeat, 1) + 1):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times[1:]), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="meta-llama/Llama-2-13b-hf")
    ap.add_argument("--a", default="A100-SXM4-80GB")
    ap.add_argument("--b", default="H20")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--plot", action="store_true", help="also time the figures")
    args = ap.parse_args()
    n = args.size
    batch = np.arange(1, n + 1, dtype=float)
    seq = np.unique(np.round(np.geomspace(128, 131072, n)))
    print(f"{args.model}: {args.a} / {args.b}, grid {batch.size} batches × {seq.size} lengths "
          f"= {batch.size * seq.size:,} cells, best of {args.repeat}")
    print(f"{'method':<7} {'metric':<7} {'cold s':>8} {'warm s':>8} {'Mcells/s':>9}  goal")
    worst = 0.0
    meshes = {}
    for method in ("whole", "ops"):
        for metric in ("decode", "ttft", "e2e"):
            cold, warm, c = best_of(lambda m=method, k=metric: compare(args.model, args.a, args.b, batch=batch, seq=seq,
                                                                       method=m, metric=k), args.repeat)
            meshes[(method, metric)] = c
            if metric == "decode":
                worst = max(worst, warm)
            ok = "ok" if warm < GOAL_S else "SLOW"
            print(f"{method:<7} {metric:<7} {cold:8.3f} {warm:8.3f} {batch.size * seq.size / warm / 1e6:9.2f}  {ok}")
    print(f"both methods, decode: {worst:.3f} s at worst (goal < {GOAL_S:g} s)")
    if args.plot:
        from llmroofline.interactive import comparison_pair_figure
        from llmroofline.plots import plot_comparison_pair

        ops, whole = meshes[("ops", "decode")], meshes[("whole", "decode")]
        t0 = time.perf_counter()
        fig = plot_comparison_pair(ops, whole, allow_unfit=True)
        fig.savefig("/dev/null", format="png", dpi=110)
        t1 = time.perf_counter()
        comparison_pair_figure(ops, whole, allow_unfit=True).to_json()
        t2 = time.perf_counter()
        print(f"pair figure: PNG {t1 - t0:.2f} s, interactive {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
