"""The calibrated model stays physical outside its data: laws over the whole device catalog,
tile quantization by hand, serving-stack profiles, paged KV sizing and prediction intervals."""

from __future__ import annotations

import io
import itertools
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.efficiency import Efficiency
from llmroofline.errors import InputError
from llmroofline.estimate import decode_step
from llmroofline.memory import max_batch, usable_memory
from llmroofline.priors import priors_from_dict
from llmroofline.roofline import padded_rows
from llmroofline.runtime import load_runtime, runtime_catalog, runtime_from_framework

DENSE_8_TO_14B = ("llama3.1-8b", "qwen3-8b", "llama2-13b", "qwen2.5-14b", "phi-4")
DEVICES = [hw.id for hw in lr.list_hardware()]


def batch1_tpot(model: str, device: str, calibration: str, runtime: str | None = None) -> tuple[float, bool]:
    r = lr.estimate(model, device, batch=1, input_len=512, output_len=256, calibration=calibration, runtime=runtime)
    return float(r.tpot_s), bool(r.memory.fits)


@pytest.mark.parametrize("model", DENSE_8_TO_14B)
def test_batch1_decode_is_between_one_and_two_plain_rooflines_on_every_device(model):
    for device in DEVICES:
        cal, fits = batch1_tpot(model, device, "default")
        plain, _ = batch1_tpot(model, device, "none")
        if fits:
            assert 1.0 <= cal / plain <= 2.0, (device, cal / plain)


@pytest.mark.parametrize("model", ("llama3.1-8b", "llama2-13b"))
def test_calibration_keeps_the_plain_ranking_of_devices_whose_bandwidths_differ_by_half(model):
    tpots = {d: (batch1_tpot(model, d, "default")[0], batch1_tpot(model, d, "none")[0]) for d in DEVICES}
    bandwidth = {hw.id: hw.memory_bandwidth for hw in lr.list_hardware()}
    for a, b in itertools.combinations(DEVICES, 2):
        if max(bandwidth[a], bandwidth[b]) >= 1.5 * min(bandwidth[a], bandwidth[b]):
            assert (tpots[a][0] < tpots[b][0]) == (tpots[a][1] < tpots[b][1]), (a, b)


def test_small_gemms_are_memory_bound_at_batch_1_on_every_device():
    for device in DEVICES:
        for dtype in ("fp16", "fp8"):
            t = decode_step("llama3.1-8b", device, 1, 1024, weight_dtype=dtype, calibration="default")
            gemm = [i for i, n in enumerate(t.names) if n.endswith("_proj") or n == "lm_head"]
            assert gemm and all(t.bound()[i] == "memory" for i in gemm), (device, dtype)


def test_h20_decodes_a_70b_model_faster_than_a800_at_batch_1_as_the_roofline_says():
    # The LLMRoofline article's question: decode streams weights, and the H20 has 2x the bandwidth.
    for cal in ("none", "default"):
        m = lr.compare("llama3.1-70b", "A800-SXM4-80GB", "H20", batch=[1], seq=[1024], method="ops",
                       metric="decode", tp_a=8, tp_b=8, calibration=cal)
        assert m.ratio[0, 0] < 0.75, cal  # A800 over H20


def test_tile_quantization_by_hand():
    eff = Efficiency(gemm_min_rows=8, gemm_tile_rows=128, gemv_rows=1)
    rows = np.array([1, 2, 8, 9, 100, 128, 129, 300])
    # 1: a GEMV; 2..128 in steps of the 8-token tile; above 128 in steps of a 64-row tile
    assert padded_rows(rows, eff).tolist() == [1, 8, 8, 16, 104, 128, 192, 320]
    assert padded_rows(rows, Efficiency()).tolist() == rows.tolist()  # the plain roofline pads nothing


def test_padding_costs_compute_not_bytes():
    padded = Efficiency(gemm_min_rows=8, gemm_tile_rows=128, gemv_rows=1)
    ops = lr.forward_ops(lr.load_model("llama3.1-8b"), groups=[lr.AttentionGroup(2, 1, 100)])
    hw = lr.load_hardware("H100-SXM5-80GB")
    t0, t1 = lr.time_ops(ops, hw, Efficiency()), lr.time_ops(ops, hw, padded)
    i = t0.names.index("mlp/up_proj")
    assert t1.compute_s[i] == pytest.approx(t0.compute_s[i] * 8 / 2)  # 2 rows computed as 8
    assert t1.memory_s[i] == pytest.approx(t0.memory_s[i])


def test_every_runtime_profile_loads_and_versions_pick_the_nearest():
    assert {"trtllm", "vllm", "sglang", "lmdeploy", "llama.cpp", "generic"} <= set(runtime_catalog())
    assert load_runtime(None).id == "generic@1"
    assert load_runtime("trtllm@0.8").id == "trtllm@0.8"
    assert load_runtime("trtllm@0.9").id == "trtllm@0.8"
    assert load_runtime("TRTLLM@v0.16").id == "trtllm@0.17"
    assert load_runtime("trtllm").id == "trtllm@1.0"  # bare: the newest
    assert load_runtime("tensorrt-llm@1.2").id == "trtllm@1.0"


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(InputError, match="unknown runtime 'vlm'.*vllm"):
        load_runtime("vlm")
    with pytest.raises(InputError, match="version"):
        load_runtime("vllm@latest!")


def test_framework_text_maps_to_a_profile():
    assert runtime_from_framework("TensorRT-LLM (PyTorch backend, trtllm-bench)", "~1.0 (doc state)").id == "trtllm@1.0"
    assert runtime_from_framework("TensorRT-LLM", "v0.11.0").id == "trtllm@0.8"
    assert runtime_from_framework("TensorRT-LLM (TRT engine, trtllm-bench)", "v0.17").id == "trtllm@0.17"
    assert runtime_from_framework("TensorRT-LLM (Triton tensorrtllm_backend)", "v0.14.0").id == "trtllm@0.14"
    assert runtime_from_framework("vLLM (benchmarks/benchmark_latency.py)", "unstated (llama-3.1)").id == "vllm@0.8"
    # unstated but dated: the first profile released from that month on
    assert runtime_from_framework("vLLM", "unstated (after 2024-07)").id == "vllm@0.6"
    assert runtime_from_framework("vLLM", "v0.6.3").id == "vllm@0.6"
    assert runtime_from_framework("SGLang", "0.4.1").id.startswith("sglang")
    assert runtime_from_framework("some in-house engine", "").id == "generic@1"


def test_runtime_changes_overheads_and_is_echoed():
    old = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=1, input_len=512, output_len=256, runtime="trtllm@0.8")
    new = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=1, input_len=512, output_len=256, runtime="trtllm@1.0")
    assert old.to_dict()["runtime"] == "trtllm@0.8" and new.to_dict()["runtime"] == "trtllm@1.0"
    assert new.tpot_s < old.tpot_s  # CUDA graphs and fused all-reduce: less fixed cost per step
    plain = [lr.estimate("llama3.1-8b", "H100-SXM5-80GB", calibration="none", runtime=r).tpot_s
             for r in ("trtllm@0.8", "vllm")]
    assert plain[0] == plain[1]  # the plain roofline has no overheads to differ


def test_paged_cache_holds_input_plus_half_the_output():
    m, hw = lr.load_model("llama3.1-8b"), lr.load_hardware("A100-SXM4-80GB")
    vllm, trt = load_runtime("vllm"), load_runtime("trtllm")
    assert vllm.kv_tokens(1000, 2000) == 2000 and trt.kv_tokens(1000, 2000) == 3000
    # By hand: 90% of the memory left after the weights and a 16,384-token prefill workspace (two
    # hidden-wide tensors plus the gated MLP's two intermediate ones, 16 bit), over one sequence's
    # KV cache (2 x 32 layers x 8 KV heads x 128 x 2 bytes per token) and fp32 logits.
    per_token = 2 * 32 * 8 * 128 * 2
    workspace = 16384 * (2 * 4096 + 2 * 14336) * 2
    b = max_batch(m, hw, context=2000, weight_dtype="fp16", kv_dtype="fp16", limit=10**6)
    weights = float(lr.estimate(m, hw).memory.weights)
    by_hand = (usable_memory(hw) - weights - workspace) * 0.9 / (2000 * per_token + 128256 * 4)
    assert b == np.floor(by_hand)
    # vLLM: a paged cache (1000 + 2000 / 2 tokens per sequence) in what is left of 90% of the device;
    # TensorRT-LLM: whole sequences reserved (3000 tokens) in 90% of what weights and workspace leave.
    seq = {n: t * per_token + 128256 * 4 for n, t in (("vllm", 2000), ("trtllm", 3000))}
    want = {"vllm": np.floor((usable_memory(hw) * 0.9 - weights - workspace) / seq["vllm"]),
            "trtllm": np.floor((usable_memory(hw) - weights - workspace) * 0.9 / seq["trtllm"])}
    for name in want:
        got = lr.estimate(m, hw, batch="max", input_len=1000, output_len=2000, runtime=name, max_batch_size=4096)
        assert float(got.batch) == want[name], name


def test_runtime_default_max_batch():
    r = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch="max", input_len=128, output_len=128, runtime="vllm")
    assert float(r.batch) == load_runtime("vllm").max_batch_size


def test_calibrated_estimates_carry_an_interval_wider_off_the_data():
    def rel_width(device: str) -> float:
        r = lr.estimate("llama3.1-8b", device, batch=16, input_len=1024, output_len=256)
        lo, hi = r.interval["throughput_tok_s"]
        assert lo < r.throughput_tok_s < hi
        return float((hi - lo) / r.throughput_tok_s)

    r = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=16, input_len=1024, output_len=256)
    d = r.to_dict()
    assert d["interval"]["level"] == 0.8
    for key in ("throughput_tok_s", "throughput_per_gpu_tok_s", "ttft_s", "tpot_s", "e2e_s"):
        lo, hi = d["interval"][key]
        assert lo < d[key] < hi
    assert rel_width("MI300X") > rel_width("H100-SXM5-80GB")  # CDNA3 was never measured
    assert "interval" not in lr.estimate("llama3.1-8b", "H100-SXM5-80GB", calibration="none").to_dict()


def test_priors_need_a_source_for_every_figure():
    doc = {"gemm_compute": {"default": {"value": 0.7, "source": ""}}, "gemm_by_device": {},
           "memory": {"default": {"value": 0.8, "source": "x"}}, "memory_by_family": {},
           "comm_by_link": {"default": {"value": 0.7, "source": "x"}}, "shared": {}, "fixed_costs": {},
           "tiles": {"default": {"gemm_min_rows": 8, "gemm_tile_rows": 128, "gemv_rows": 1, "source": "x"}}}
    with pytest.raises(InputError, match="source"):
        priors_from_dict(doc, "test")


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", [
    ["estimate", "-m", "llama3.1-8b", "-d", "h100"],
    ["compare", "-m", "llama3.1-8b", "--a", "h100", "--b", "a100", "--batch", "1,8", "--seq", "128,1024",
     "--method", "ops", "--calibration", "default"],
    ["recommend", "-m", "llama3.1-8b", "-i", "512", "-o", "128", "-d", "h100,a100"],
])
def test_cli_runtime_option(command):
    rc, out, _ = run_cli(*command, "--runtime", "vllm", "--json")
    assert rc == 0
    if command[0] == "estimate":
        assert json.loads(out)["runtime"] == "vllm@0.8"  # a bare id: the newest profile
    rc, _, err = run_cli(*command, "--runtime", "bogus")
    assert rc == 2 and "unknown runtime 'bogus'" in err


def test_validate_takes_one_runtime_for_every_row():
    rc, out, _ = run_cli("validate", "--runtime", "trtllm@0.8", "--json")
    assert rc == 0
    assert {r["runtime"] for r in json.loads(out)["rows"]} == {"trtllm@0.8"}
