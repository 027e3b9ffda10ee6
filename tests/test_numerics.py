"""Numerical hygiene: huge workloads and models stay finite and exact, results are float64,
deterministic, and do not depend on the order the catalog files are read in."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import llmroofline as lr
from llmroofline import catalog, hardware, model
from llmroofline.cli import main
from llmroofline.estimate import sum_max_affine
from llmroofline.operators import AttentionGroup, attended_pairs, op_totals

from .conftest import round_device

OPERATOR_ARRAYS = ("flops", "weight_bytes", "act_read_bytes", "act_write_bytes", "kv_read_bytes", "kv_write_bytes",
                   "gemm_rows", "comm_bytes")


@pytest.fixture
def strict_floats():
    """Overflow, invalid operations (NaN) and division by zero raise instead of warning."""
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        yield


def giant_config(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int) -> dict:
    return {"model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "intermediate_size": intermediate, "vocab_size": vocab}


def llama_params(h: int, L: int, H: int, K: int, i: int, V: int) -> int:
    """Parameters of a Llama-style model by hand, in Python integers (exact at any size)."""
    d = h // H
    attention = h * H * d + 2 * h * K * d + H * d * h
    mlp = 3 * h * i
    norms = 2 * h
    return L * (attention + mlp + norms) + 2 * V * h + h


def test_ten_trillion_parameter_model_is_counted_exactly(strict_floats):
    cfg = giant_config(hidden=32_768, layers=780, heads=256, kv_heads=16, intermediate=131_072, vocab=256_000)
    m = lr.model_from_config(cfg, model_id="giant-10T")
    expected = llama_params(32_768, 780, 256, 16, 131_072, 256_000)
    assert type(m.params_total) is int and m.params_total == expected
    assert 1e13 <= m.params_total < 2e13
    assert m.weight_bytes("fp16") == pytest.approx(2.0 * expected, rel=1e-15)
    # It runs (on a thousand devices' worth of memory it still does not fit on one): finite numbers.
    r = lr.estimate(m, round_device(memory_gb=90), batch=[1, 1024], input_len=2048, output_len=128, tp=256,
                    calibration="none")
    for v in (r.ttft_s, r.tpot_s, r.e2e_s, r.throughput_tok_s, r.memory.total):
        assert np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0)
    assert not np.any(r.memory.fits)


def test_counts_beyond_float64_integers_stay_exact():
    # 2^53 ~ 9.0e15: a float64 would round this count; Python integers do not.
    cfg = giant_config(hidden=999_999, layers=1001, heads=27, kv_heads=27, intermediate=4_000_000, vocab=1)
    m = lr.model_from_config(cfg, model_id="absurd")
    expected = llama_params(999_999, 1001, 27, 27, 4_000_000, 1)
    assert expected > 2**53 and float(expected) != expected  # not representable as a float64
    # Active leaves out the input embedding table (1 x 999,999: a lookup), as OpenAI counts gpt-oss.
    assert m.params_total == expected and m.params_active == expected - 999_999


def test_ten_trillion_parameters_print_exactly_in_json(tmp_path):
    cfg = giant_config(hidden=32_768, layers=780, heads=256, kv_heads=16, intermediate=131_072, vocab=256_001)
    f = tmp_path / "config.json"
    f.write_text(json.dumps(cfg))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["models", "show", str(f), "--json"])
    assert rc == 0, err.getvalue()
    shown = json.loads(out.getvalue())
    assert shown["params_total"] == llama_params(32_768, 780, 256, 16, 131_072, 256_001)


@pytest.mark.parametrize("mode", ["static", "continuous"])
def test_million_batch_and_ten_million_tokens(strict_floats, mode):
    hw = round_device(memory_gb=90_000)
    r = lr.estimate("llama2-7b", hw, batch=1_000_000, input_len=10_000_000, output_len=1000, mode=mode,
                    calibration="default")
    for name, v in (("ttft", r.ttft_s), ("tpot", r.tpot_s), ("e2e", r.e2e_s), ("throughput", r.throughput_tok_s),
                    ("memory", r.memory.total)):
        assert np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0), name
    assert r.ttft_s.dtype == np.float64 and r.memory.total.dtype == np.float64


def test_ten_million_decode_steps_in_closed_form(strict_floats):
    r = lr.estimate("mistralai/Mistral-7B-v0.1", round_device(), batch=8, input_len=1000, output_len=10_000_000,
                    calibration="none")
    assert np.isfinite(float(r.e2e_s)) and float(r.tpot_s) > 0
    # Beyond the 4096-token window every step costs the same: the mean step tends to that cost.
    last = float(lr.decode_step("mistralai/Mistral-7B-v0.1", round_device(), 8, 9_000_000).total())
    assert float(r.tpot_s) == pytest.approx(last, rel=1e-3)


def test_closed_form_sums_are_exact_at_large_counts(strict_floats):
    # Sum over L = 1 .. 1e7 of max(3 + 2L, 1e6): integers, computed exactly with Python ints.
    lo, hi = 1, 10_000_000
    exact = sum(max(3 + 2 * L, 10**6) for L in range(lo, 499_999)) + sum(3 + 2 * L for L in range(499_999, hi + 1))
    assert float(sum_max_affine(3.0, 2.0, 1e6, 0.0, lo, hi)) == pytest.approx(exact, rel=1e-15)
    # Attended (query, key) pairs of a ten-million-token prompt: n(n+1)/2, exact in float64.
    n = 10_000_000
    assert float(attended_pairs(n, 0, math.inf)) == n * (n + 1) // 2


def test_decode_sum_far_along_the_cache_matches_a_loop():
    from llmroofline.efficiency import Efficiency
    from llmroofline.estimate import decode_steps_time, pass_time

    dep = lr.make_deployment("llama2-7b", round_device())
    eff = Efficiency(gemm_compute=0.7, gemm_tile_rows=64, memory=0.8, layer_overhead_s=1e-5)
    lo, hi = 10_000_000, 10_000_200
    closed = float(decode_steps_time(dep, eff, 4, lo, hi))
    loop = float(pass_time(dep, eff, [AttentionGroup(4, 1, np.arange(lo, hi + 1) - 1)]).sum())
    assert closed == pytest.approx(loop, rel=1e-9)


def test_flops_scale_exactly_to_a_million_sequences():
    m = lr.load_model("mistralai/Mixtral-8x7B-v0.1")
    one = float(op_totals(lr.forward_ops(m, groups=[AttentionGroup(1, 1, 4095)]))["flops"])
    million = float(op_totals(lr.forward_ops(m, groups=[AttentionGroup(1_000_000, 1, 4095)]))["flops"])
    assert million == pytest.approx(1e6 * one, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.uint16])
def test_inputs_of_any_numeric_dtype_compute_in_float64(dtype):
    hw = round_device()
    batch = np.array([1, 64, 60_000], dtype=dtype)
    r = lr.estimate("llama2-13b", hw, batch=batch, input_len=dtype(30_000), output_len=dtype(2_000),
                    calibration="none")
    ref = lr.estimate("llama2-13b", hw, batch=[1, 64, 60_000], input_len=30_000, output_len=2_000,
                      calibration="none")
    for name in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"):
        assert getattr(r, name).dtype == np.float64
        assert np.array_equal(getattr(r, name), getattr(ref, name)), name
    # int32 tokens x widths would overflow in integer arithmetic; operators convert first.
    ops = lr.forward_ops(lr.load_model("llama2-13b"), groups=[AttentionGroup(batch, dtype(30_000), 0)])
    for op in ops:
        for f in OPERATOR_ARRAYS:
            a = np.asarray(getattr(op, f))
            assert a.dtype == np.float64 and np.all(np.isfinite(a)) and np.all(a >= 0), (op.name, f)


def test_results_are_deterministic():
    hw = round_device()
    kwargs = dict(batch=[[1], [8], [512]], input_len=[128, 4096], output_len=256, calibration="default")
    a = lr.estimate("deepseek-ai/DeepSeek-V2-Lite", hw, **kwargs)
    b = lr.estimate("deepseek-ai/DeepSeek-V2-Lite", hw, **kwargs)
    for name in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c1 = lr.compare("llama2-13b", "A100-SXM4-80GB", "H20", method="ops", batch="1:64:4", seq="128:4096:4")
    c2 = lr.compare("llama2-13b", "A100-SXM4-80GB", "H20", method="ops", batch="1:64:4", seq="128:4096:4")
    assert np.array_equal(c1.ratio, c2.ratio)


def test_catalog_files_are_read_sorted():
    for kind, suffixes in (("hardware", (".yaml", ".yml")), ("models", (".json",))):
        files = catalog.catalog_files(kind, suffixes)
        assert files == sorted(files) and files


def test_reversed_catalog_file_order_gives_the_same_catalog(monkeypatch):
    def snapshot():
        hardware.hardware_catalog.cache_clear()
        model.model_catalog.cache_clear()
        return (hardware.hardware_catalog(), model.model_catalog(), hardware._lookup_table(), model._lookup_table(),
                {n: lr.load_model(n).id for n in ("llama-3.1-8b", "llama2-7b", "Llama-3.1-8B")},
                {n: lr.load_hardware(n).id for n in ("a100", "h20", "H100-SXM5-80GB")})

    forward = snapshot()
    original = catalog.catalog_files
    reverse = lambda kind, suffixes: list(reversed(original(kind, suffixes)))  # noqa: E731
    monkeypatch.setattr(hardware, "catalog_files", reverse)
    monkeypatch.setattr(model, "catalog_files", reverse)
    try:
        backward = snapshot()
    finally:
        monkeypatch.undo()
        hardware.hardware_catalog.cache_clear()
        model.model_catalog.cache_clear()
    assert list(backward[0]) == list(reversed(forward[0]))  # the order did change...
    for f, b in zip(forward, backward, strict=True):  # ...and nothing else
        assert f == b


def test_catalog_refuses_ambiguous_names():
    with pytest.raises(lr.InputError, match="alias 'x' of B already names A"):
        catalog.name_table("device", [("B", ["x"], []), ("A", ["x"], [])])
    with pytest.raises(lr.InputError, match="id 'a' of a already names A"):
        catalog.name_table("device", [("a", [], []), ("A", [], [])])
    # A derived name (the part of a Hub id after the slash) yields to ids and aliases, in any order.
    for entries in ([("o/m", [], ["m"]), ("o/n", ["m"], ["n"])], [("o/n", ["m"], ["n"]), ("o/m", [], ["m"])]):
        assert catalog.name_table("model", entries)["m"] == "o/n"
