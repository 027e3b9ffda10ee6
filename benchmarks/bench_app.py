"""Seconds each app tab's default view takes to compute (warm: catalogs and calibration loaded).

    python benchmarks/bench_app.py [--repeat N]

The page should feel live: each view well under a second. Prints a table; never fails on a time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import llmroofline as lr
from llmroofline import app as A

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    m = lr.load_model(MODEL)
    a, b, h = (lr.load_hardware(n) for n in ("A100-SXM4-80GB", "H20", "H100-SXM5-80GB"))
    views = {
        "roofline": lambda: A.roofline_view(m, [a, h, b], ["fp16"], batch=1, seq=2048),
        "compare": lambda: A.compare_view(m, a, b),
        "estimate": lambda: A.estimate_view(m, a, batch=8, input_len=2048, output_len=256),
        "recommend (5 devices)": lambda: A.recommend_view(m, devices=[a, h, b, lr.load_hardware("MI300X"),
                                                                      lr.load_hardware("L40S")]),
    }
    print(f"{'view':<24} {'median ms':>10}")
    for name, view in views.items():
        view()  # warm caches
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            view()
            times.append(time.perf_counter() - t0)
        print(f"{name:<24} {1e3 * statistics.median(times):>10.1f}")


if __name__ == "__main__":
    main()
