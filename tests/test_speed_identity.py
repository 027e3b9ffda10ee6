"""Speed never changes an answer: a fixed battery of workloads against numbers pinned in a golden file.

The battery covers dense, GQA, sliding-window, MLA and MoE models; tensor, pipeline and expert
parallelism; static, continuous and max modes; the plain roofline and the bundled calibration;
several serving stacks; grids of batch x length; per-operator step times and a comparison mesh.
Every value must match `data/speed_identity.json` to 1e-12 relative.

Regenerate the golden file only when an answer is meant to change:
    PYTHONPATH=src python tests/test_speed_identity.py --write
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import llmroofline as lr

GOLDEN = Path(__file__).resolve().parent / "data" / "speed_identity.json"
RTOL = 1e-12

GRID_B = [[1], [7], [64], [333]]
GRID_IN = [[128, 2048, 9000]]

# name -> keyword arguments of lr.estimate
ESTIMATES: dict[str, dict[str, Any]] = {
    "dense-plain-grid": dict(model="llama2-7b", hardware="A100-SXM4-80GB", batch=GRID_B, input_len=GRID_IN,
                             output_len=128, calibration="none"),
    "dense-default-grid": dict(model="llama2-7b", hardware="A100-SXM4-80GB", batch=GRID_B, input_len=GRID_IN,
                               output_len=128),
    "dense-output-grid": dict(model="llama2-13b", hardware="H20", batch=[1, 16, 256], input_len=512,
                              output_len=[[1], [2], [3], [1024]]),
    "gqa-tp4": dict(model="llama3.1-70b", hardware="H100-SXM5-80GB", batch=GRID_B, input_len=GRID_IN,
                    output_len=512, tp=4),
    "gqa-tp2-pp2": dict(model="llama2-70b", hardware="A100-SXM4-80GB", batch=[4, 32], input_len=[1000, 4000],
                        output_len=200, tp=2, pp=2),
    "gqa-fp8-kv8": dict(model="llama3.1-8b", hardware="H100-SXM5-80GB", batch=GRID_B, input_len=GRID_IN,
                        output_len=300, weight_dtype="fp8", kv_dtype="fp8"),
    "sliding-mistral": dict(model="mistral-7b", hardware="L40S", batch=[1, 8, 50], input_len=[[100], [4000], [20000]],
                            output_len=5000),
    "sliding-gemma2": dict(model="gemma-2-9b", hardware="H20", batch=GRID_B, input_len=[[1000, 4000, 8000]],
                           output_len=3000, calibration="none"),
    "mla-v3-tp8": dict(model="deepseek-v3", hardware="H200-SXM-141GB", batch=GRID_B, input_len=GRID_IN,
                       output_len=256, tp=8),
    "mla-v2lite": dict(model="deepseek-ai/DeepSeek-V2-Lite", hardware="A100-SXM4-80GB", batch=[1, 9, 77],
                       input_len=[[300], [3000]], output_len=[[2], [700]], calibration="none"),
    "moe-mixtral-tp2": dict(model="mixtral-8x7b", hardware="H20", batch=GRID_B, input_len=GRID_IN, output_len=1024,
                            tp=2),
    "moe-v3-ep8": dict(model="deepseek-v3", hardware="H200-SXM-141GB", batch=[8, 128], input_len=2048,
                       output_len=512, tp=2, ep=8),
    "moe-qwen3-ep2": dict(model="Qwen/Qwen3-30B-A3B", hardware="H100-SXM5-80GB", batch=[1, 32], input_len=1024,
                          output_len=256, tp=2, ep=2),
    "gpt-oss-mxfp4": dict(model="gpt-oss-120b", hardware="H100-SXM5-80GB", batch=[1, 64], input_len=[[512], [8192]],
                          output_len=512),
    "continuous-dense": dict(model="llama3.1-8b", hardware="A100-SXM4-80GB", batch=GRID_B, input_len=GRID_IN,
                             output_len=256, mode="continuous"),
    "continuous-moe-plain": dict(model="mixtral-8x7b", hardware="H100-SXM5-80GB", batch=[1, 64], input_len=[[256], [4096]],
                                 output_len=512, mode="continuous", tp=2, calibration="none"),
    "max-dense": dict(model="llama3.1-70b", hardware="H100-SXM5-80GB", batch="max", input_len=[[512], [4096]],
                      output_len=[256, 2048], tp=4),
    "max-mla-pp": dict(model="deepseek-v3", hardware="H200-SXM-141GB", mode="max", input_len=1024,
                       output_len=1024, tp=8, pp=2),
    "runtime-vllm": dict(model="llama3.1-8b", hardware="H20", batch=GRID_B, input_len=GRID_IN, output_len=256,
                         runtime="vllm"),
    "runtime-trtllm08": dict(model="llama2-7b", hardware="A100-SXM4-80GB", batch=GRID_B, input_len=GRID_IN,
                             output_len=128, runtime="trtllm@0.8"),
    "runtime-sglang-max": dict(model="llama3.1-8b", hardware="H100-SXM5-80GB", batch="max", input_len=2048,
                               output_len=2048, runtime="sglang"),
    "runtime-lmdeploy": dict(model="Qwen/Qwen2.5-7B-Instruct", hardware="A800-SXM4-80GB", batch=[1, 16],
                             input_len=1024, output_len=1024, runtime="lmdeploy"),
    "runtime-llamacpp": dict(model="llama3.1-8b", hardware="RTX-4090", batch=[1, 4], input_len=[[128], [2048]],
                             output_len=128, runtime="llama.cpp", weight_dtype="int4"),
    "unfused": dict(model="llama2-7b", hardware="A100-SXM4-80GB", batch=[1, 8], input_len=2048, output_len=64,
                    fused_attention=False),
}

# name -> keyword arguments of lr.decode_step (per-operator times, the `ops` command's view)
STEPS: dict[str, dict[str, Any]] = {
    "step-dense": dict(model="llama2-7b", hardware="A100-SXM4-80GB", batch=[1, 8, 64], kv_len=4096),
    "step-mla-default": dict(model="deepseek-v3", hardware="H200-SXM-141GB", batch=16, kv_len=[1000, 9000], tp=8,
                             calibration="default", runtime="vllm"),
    "step-sliding": dict(model="gemma-2-9b", hardware="L40S", batch=4, kv_len=[100, 5000, 40000],
                         calibration="default"),
}

# name -> keyword arguments of lr.compare
MESHES: dict[str, dict[str, Any]] = {
    "mesh-ops-e2e": dict(model="llama2-13b", a="A100-SXM4-80GB", b="H20", method="ops", metric="e2e",
                         batch="1:512:5", seq="128:32768:6", calibration="default"),
    "mesh-ops-decode": dict(model="mixtral-8x7b", a="H100-SXM5-80GB", b="H20", method="ops", metric="decode",
                            batch="1:256:4", seq="128:65536:5", tp_a=2, tp_b=2),
}


def _numbers(x) -> list:
    return np.asarray(x, dtype=float).ravel().tolist()


def compute() -> dict[str, dict[str, list]]:
    """Every battery entry's numbers, flattened."""
    out: dict[str, dict[str, list]] = {}
    for name, kw in ESTIMATES.items():
        kw = dict(kw)
        r = lr.estimate(kw.pop("model"), kw.pop("hardware"), **kw)
        d = {k: _numbers(getattr(r, k)) for k in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s",
                                                  "throughput_per_gpu_tok_s", "batch")}
        d.update({f"memory.{k}": _numbers(getattr(r.memory, k)) for k in ("weights", "kv_cache", "activations")})
        for k, v in r.interval.items():
            if k not in ("level", "conditions"):
                d[f"interval.{k}.low"], d[f"interval.{k}.high"] = _numbers(v[0]), _numbers(v[1])
        out[name] = d
    for name, kw in STEPS.items():
        kw = dict(kw)
        t = lr.decode_step(kw.pop("model"), kw.pop("hardware"), **kw)
        out[name] = {"compute_s": _numbers(t.compute_s), "memory_s": _numbers(t.memory_s), "comm_s": _numbers(t.comm_s),
                     "time_s": _numbers(t.time_s), "total": _numbers(t.total()), "counts": _numbers(t.counts)}
    for name, kw in MESHES.items():
        kw = dict(kw)
        c = lr.compare(kw.pop("model"), kw.pop("a"), kw.pop("b"), **kw)
        out[name] = {"perf_a": _numbers(c.perf_a), "perf_b": _numbers(c.perf_b)}
    return out


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, list]]:
    return compute()


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, list]]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_battery_covers_the_golden_file(results, golden):
    assert set(results) == set(golden)
    for name in golden:
        assert set(results[name]) == set(golden[name]), name


@pytest.mark.parametrize("name", [*ESTIMATES, *STEPS, *MESHES])
def test_answers_are_unchanged(name, results, golden):
    for key, expected in golden[name].items():
        got = np.asarray(results[name][key], dtype=float)
        want = np.asarray(expected, dtype=float)
        assert got.shape == want.shape, (name, key)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, equal_nan=True, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", ["dense-default-grid", "sliding-gemma2", "mla-v3-tp8", "continuous-dense",
                                  "dense-output-grid", "max-dense"])
def test_blocks_of_rows_give_the_same_answers(name, golden, monkeypatch):
    """A large grid runs in blocks of rows; here every grid is 'large' (blocks of one or two rows)."""
    estimate_module = importlib.import_module("llmroofline.estimate")

    monkeypatch.setattr(estimate_module, "BLOCK_POINTS", 2)
    kw = dict(ESTIMATES[name])
    r = lr.estimate(kw.pop("model"), kw.pop("hardware"), **kw)
    for key in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"):
        np.testing.assert_allclose(_numbers(getattr(r, key)), golden[name][key], rtol=RTOL, atol=0, err_msg=key)


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit(__doc__)
    GOLDEN.write_text(json.dumps(compute(), indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
