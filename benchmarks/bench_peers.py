"""llmroofline against LLM-Viewer and llm-analysis on the same grid (static batches, Llama-2 7B, A100 80 GB).

    python benchmarks/bench_peers.py [--peers DIR] [--python PY] [--viewer-points N] [--analysis-points N]

The grid: 64 batches (1 to 1,024) x 64 prompt lengths (128 to 3,072), 1,024 output tokens each
(llm-analysis refuses prompts + outputs above the model's 4,096 positions, so the grid stops there).
The peers are not dependencies: check their sources out under DIR (default /tmp/peers) as
`LLM-Viewer/` (github.com/hahnyuan/LLM-Viewer) and `llm-analysis/` (github.com/cli99/llm-analysis),
and give --python an interpreter of a throwaway virtual environment with what they import
(`fire` for llm-analysis). A peer that is not there is skipped with a message.

How each one is driven, point by point (neither evaluates a grid at once):
- LLM-Viewer: `ModelAnalyzer.analyze_generate_task(prompt, 1024, batch)`, which runs `analyze` once
  for the prefill and once per decode step. Its module imports `transformers` only to fetch a Hub
  config: the driver gives it the model's config from this project's catalog instead and stands
  in an empty `transformers` module when that package is absent. It takes tens of
  milliseconds per point, so it runs on --viewer-points points spread over the grid and the grid
  time is the median time per point times 4,096 (marked "extrapolated").
- llm-analysis: `infer(...)` per point (decode at one representative KV length, no sum over steps).
  Points whose KV cache does not fit raise an error in it; they are timed too (the error comes
  after most of the work) and counted.

Prints a table (medians over points); never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import llmroofline as lr

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE = ROOT / "src" / "llmroofline" / "catalog" / "models" / "meta-llama__Llama-2-7b-hf.json"
OUTPUT = 1024


def grid() -> tuple[np.ndarray, np.ndarray]:
    batch = np.round(np.geomspace(1, 1024, 64))
    prompts = np.round(np.geomspace(128, 3072, 64))
    return batch, prompts


def sample(n: int) -> list[tuple[int, int]]:
    """n points spread over the grid (a diagonal walk over both axes)."""
    batch, prompts = grid()
    idx = np.unique(np.round(np.linspace(0, 63, max(n, 1))).astype(int))
    return [(int(batch[i]), int(prompts[(i * 37) % 64])) for i in idx]


VIEWER_DRIVER = r"""
import importlib, json, os, statistics, sys, time, types
src, points, config = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
os.chdir(src); sys.path.insert(0, src)
try:
    import transformers  # noqa: F401
except ImportError:  # only its Hub config loader is imported; the config is given below
    stub = types.ModuleType("transformers")
    stub.AutoTokenizer = stub.AutoConfig = stub.AutoModelForCausalLM = None
    sys.modules["transformers"] = stub
from model_analyzer import ModelAnalyzer
a = ModelAnalyzer.__new__(ModelAnalyzer)
a.model_id, a.hardware = "meta-llama/Llama-2-7b-hf", "nvidia_A100_80G"
a.model_params = types.SimpleNamespace(**config)
a.config = importlib.import_module("configs.Llama")
a.results = a.w_bit = a.a_bit = a.kv_bit = a.batchsize = a.seqlen = None
times, totals = [], []
for batch, prompt in points:
    t0 = time.perf_counter()
    r = a.analyze_generate_task(prompt, OUTPUT, batch)
    times.append(time.perf_counter() - t0)
    totals.append(r["inference_time"])
print(json.dumps({"per_point_s": statistics.median(times), "points": len(points), "errors": 0, "e2e_s": totals}))
""".replace("OUTPUT", str(OUTPUT))

ANALYSIS_DRIVER = r"""
import json, logging, statistics, sys, time
src, points = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, src)
from llm_analysis.analysis import infer
logging.disable(logging.CRITICAL)
times, errors = [], 0
for batch, prompt in points:
    t0 = time.perf_counter()
    try:
        infer(model_name="NousResearch_Llama-2-7b-hf", gpu_name="a100-sxm-80gb", batch_size_per_gpu=batch,
              seq_len=prompt, num_tokens_to_generate=OUTPUT, log_level="CRITICAL")
    except AssertionError:  # does not fit in memory, or is too long for the model
        errors += 1
    times.append(time.perf_counter() - t0)
print(json.dumps({"per_point_s": statistics.median(times), "total_s": sum(times), "points": len(points),
                  "errors": errors}))
""".replace("OUTPUT", str(OUTPUT))


def run_driver(python: str, code: str, *args: str) -> dict | None:
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit status {out.returncode}"
        print(f"skipped a peer: {why} (give --python an interpreter that has the peer's imports)")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    ap.add_argument("--python", default=sys.executable, help="interpreter with the peers' imports")
    ap.add_argument("--viewer-points", type=int, default=16)
    ap.add_argument("--analysis-points", type=int, default=4096, help="4096: the whole grid")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()

    batch, prompts = grid()
    model, device = lr.load_model("llama2-7b"), lr.load_hardware("A100-SXM4-80GB")
    lr.estimate(model, device, batch=1, input_len=128, output_len=8)
    rows = []
    for calibration in ("none", "default"):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            lr.estimate(model, device, batch=batch[:, None], input_len=prompts[None, :], output_len=OUTPUT,
                        calibration=calibration)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        rows.append((f"llmroofline ({'plain' if calibration == 'none' else 'calibrated'})", 4096, t / 4096, t,
                     "measured, whole grid in one call, every decode step summed"))
    ours = rows[0][3]

    config = json.loads(MODEL_FILE.read_text(encoding="utf-8"))["config"]
    viewer = args.peers / "LLM-Viewer"
    if (viewer / "model_analyzer.py").exists():
        r = run_driver(args.python, VIEWER_DRIVER, str(viewer), json.dumps(sample(args.viewer_points)), json.dumps(config))
        if r:
            rows.append(("LLM-Viewer", r["points"], r["per_point_s"], r["per_point_s"] * 4096,
                         f"extrapolated from {r['points']} points (1,025 analyze calls each)"))
    else:
        print(f"LLM-Viewer not found under {viewer}: skipped")
    analysis = args.peers / "llm-analysis"
    if (analysis / "llm_analysis" / "analysis.py").exists():
        points = [(int(b), int(s)) for b in batch for s in prompts]
        if args.analysis_points < len(points):
            points = sample(args.analysis_points)
        r = run_driver(args.python, ANALYSIS_DRIVER, str(analysis), json.dumps(points))
        if r:
            whole = r["points"] == 4096
            rows.append(("llm-analysis", r["points"], r["per_point_s"], r["total_s"] if whole else r["per_point_s"] * 4096,
                         ("measured, whole grid" if whole else f"extrapolated from {r['points']} points")
                         + f"; {r['errors']} points refused (memory)"))
    else:
        print(f"llm-analysis not found under {analysis}: skipped")

    print(f"grid: {batch.size} batches x {prompts.size} prompt lengths, {OUTPUT} output tokens, Llama-2 7B on A100 80GB")
    print(f"{'tool':30s} {'points':>7s} {'per point':>12s} {'64x64 grid':>12s} {'x llmroofline':>14s}  how")
    for name, n, per_point, total, how in rows:
        print(f"{name:30s} {n:7d} {per_point * 1e6:9.1f} us {total:10.3f} s {total / ours:14,.0f}  {how}")


if __name__ == "__main__":
    main()
