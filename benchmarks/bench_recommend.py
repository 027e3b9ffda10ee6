"""How long `recommend` takes over every catalog device for one model (target: 0.3 s, issue 14).

    .venv/bin/python benchmarks/bench_recommend.py [MODEL ...] [--input I] [--output O] [--repeat N]

Prints, per model, the first (cold: catalog and calibration loading) and the best of N warm runs,
with the number of (device, tp, pp, ep) configurations and batch points evaluated.
"""

from __future__ import annotations

import argparse
import time

from llmroofline.hardware import list_hardware
from llmroofline.recommend import recommend

GOAL_S = 0.3  # seconds, the target of issue 14


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["llama3.1-70b", "llama3.1-8b", "mixtral-8x7b", "deepseek-v3"])
    ap.add_argument("--input", type=int, default=4096)
    ap.add_argument("--output", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    devices = len(list_hardware())
    print(f"recommend over all {devices} catalog devices, input {args.input}, output {args.output}, at most 8 GPUs (a MoE model that fits nowhere within 8 is widened to 64 with wide expert parallelism)")
    worst = 0.0
    for name in args.models:
        times = []
        for _ in range(max(args.repeat, 1)):
            t0 = time.perf_counter()
            rec = recommend(name, args.input, args.output)
            times.append(time.perf_counter() - t0)
        layouts = sum(len({(int(a), int(b), int(c)) for a, b, c in zip(s.points.tp, s.points.pp, s.points.ep,
                                                                          strict=True)})
                      for s in rec.searches if s.points is not None)
        points = sum(len(s.points) for s in rec.searches if s.points is not None)
        worst = max(worst, min(times))
        print(f"  {rec.workload.model.id:45s} first {times[0]:6.3f} s, best {min(times):6.3f} s "
              f"({layouts} configurations, {points} fitting points, {len(rec.ranking)} ranked)")
    print(f"slowest model: {worst:.3f} s ({'within' if worst < GOAL_S else 'OVER'} the {GOAL_S:g} s goal)")


if __name__ == "__main__":
    main()
