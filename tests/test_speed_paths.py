"""The shortcuts taken for speed give what the plain path gives: bit for bit where the same
arithmetic runs in the same order, and the same objects where a result is kept for reuse.

test_speed_identity.py pins whole answers against a golden file; these tests pin each shortcut
against the straightforward computation it replaces, so that a difference points at its cause.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import yaml

import llmroofline as lr
from llmroofline.catalog import catalog_files
from llmroofline.efficiency import load_calibration
from llmroofline.errors import InputError
from llmroofline.files import parse_yaml
from llmroofline.intervals import factor_levels
from llmroofline.operators import AttentionGroup
from llmroofline.runtime import load_runtime, with_fitted

roofline = importlib.import_module("llmroofline.roofline")
estimate_mod = importlib.import_module("llmroofline.estimate")
energy = importlib.import_module("llmroofline.energy")

# (model, device, tp, ep): dense, GQA with all-reduces, sliding windows, MLA, MoE with
# expert parallelism inside tp and beyond it (all-to-all), fp8 weights.
DEPLOYMENTS = [
    ("llama2-7b", "A100-SXM4-80GB", 1, 1, None),
    ("llama3.1-70b", "H100-SXM5-80GB", 4, 1, None),
    ("gemma-2-9b", "H20", 2, 1, None),
    ("deepseek-v3", "H200-SXM-141GB", 2, 8, None),
    ("mixtral-8x7b", "L40S", 2, 2, None),
    ("llama3.1-8b", "H100-SXM5-80GB", 1, 1, "fp8"),
    ("jamba", "H100-SXM5-80GB", 2, 1, None),  # hybrid: Mamba mixers beside attention, MoE
    ("qwen3-next", "H200-SXM-141GB", 2, 2, None),  # hybrid: linear attention beside full attention
]
B = np.arange(1.0, 40.0)
PASSES = {
    "decode, KV lengths on a trailing axis": [AttentionGroup(B[:, None], 1, np.array([0.0, 1.0]))],
    "one prompt (0-d)": [AttentionGroup(1.0, 4096.0, 0)],
    "continuous step": [AttentionGroup(B * 1023 / 1024, 1, 4607.0), AttentionGroup(B / 1024, 4096, 0, label="p")],
    "prefill grid": [AttentionGroup(B[:, None], np.array([[128.0, 3000.0, 9000.0]]), 0)],
}


@pytest.mark.parametrize("calibration", ["default", "none"])
@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: f"{d[0]}-tp{d[2]}-ep{d[3]}")
def test_stacked_pass_adds_the_same_numbers_in_the_same_order(deployment, calibration, monkeypatch):
    """Small grids time like kernels as stacks; large ones operator by operator. Both run the
    same elementwise steps and add the operators in list order, so they agree to the last bit
    (the calibrated case has overlap_loss > 0, the plain one 0)."""
    model, device, tp, ep, weights = deployment
    dep = estimate_mod.make_deployment(model, device, tp=tp, ep=ep, weight_dtype=weights)
    eff = load_calibration(calibration).for_device(dep.hardware, None)
    for name, groups in PASSES.items():
        ops = dep.ops(groups)
        monkeypatch.setattr(roofline, "STACK_POINTS", 10**9)
        stacked = np.asarray(roofline.pass_seconds(ops, dep.hardware, eff))
        monkeypatch.setattr(roofline, "STACK_POINTS", 0)
        one_by_one = np.asarray(roofline.pass_seconds(ops, dep.hardware, eff))
        assert stacked.shape == one_by_one.shape, name
        assert np.array_equal(stacked, one_by_one), (name, np.max(np.abs(stacked / one_by_one - 1)))
        # ... and both are the sum of the per-operator table, count x step time, in order.
        table = roofline.time_ops(ops, dep.hardware, eff)
        by_hand = np.zeros(())
        for count, t in zip(table.counts, table.time_s, strict=True):
            by_hand = by_hand + count * t
        np.testing.assert_allclose(stacked, by_hand, rtol=1e-15, atol=0)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: f"{d[0]}-tp{d[2]}-ep{d[3]}")
def test_stacked_activity_seconds_are_the_loops(deployment, monkeypatch):
    """The energy model's activity seconds (compute, busy, communication) from the stacks equal
    the operator-by-operator sums to the last bit."""
    model, device, tp, ep, weights = deployment
    dep = estimate_mod.make_deployment(model, device, tp=tp, ep=ep, weight_dtype=weights)
    eff = load_calibration("default").for_device(dep.hardware, None)
    for name, groups in PASSES.items():
        ops = dep.ops(groups)
        monkeypatch.setattr(roofline, "STACK_POINTS", 10**9)
        stacked = energy.pass_work(ops, dep.hardware, eff)
        monkeypatch.setattr(roofline, "STACK_POINTS", 0)
        one_by_one = energy.pass_work(ops, dep.hardware, eff)
        for field in ("compute_s", "busy_s", "comm_s"):
            a, b = np.broadcast_arrays(getattr(stacked, field), getattr(one_by_one, field))
            assert np.array_equal(a, b), (name, field)


def test_kept_stacks_belong_to_their_device_and_efficiencies():
    """The last few stacks are kept by identity: the same pass on another device or under other
    efficiencies is timed afresh, and the kept arrays cannot be written to."""
    dep = estimate_mod.make_deployment("llama2-7b", "A100-SXM4-80GB")
    ops = dep.ops(PASSES["continuous step"])
    hw, other = dep.hardware, lr.load_hardware("H100-SXM5-80GB")
    cal, plain = load_calibration("default").for_device(hw), load_calibration("none").for_device(hw)
    a = roofline.pass_seconds(ops, hw, cal)
    assert not np.array_equal(a, roofline.pass_seconds(ops, hw, plain))
    assert not np.array_equal(a, roofline.pass_seconds(ops, other, cal))
    assert np.array_equal(a, roofline.pass_seconds(ops, hw, cal))
    compute, memory, _, counts = roofline.small_pass_stacks(ops, hw, cal)
    with pytest.raises(ValueError):
        compute[0] = 0.0


def test_pass_of_no_operators_takes_no_time():
    hw = lr.load_hardware("A100-SXM4-80GB")
    assert float(roofline.pass_seconds([], hw, load_calibration("default").for_device(hw))) == 0.0


def test_weight_precision_is_kept_per_model_and_equals_a_fresh_one():
    m = lr.load_model("gpt-oss-120b")
    for given in (None, "checkpoint", "fp8", "int4"):
        first = m.weight_precision(given)
        assert m.weight_precision(given) is first  # kept
        assert first == m._weight_precision(given)  # what the uncached path builds
    wp = m.weight_precision("fp8")
    assert m.weight_precision(wp) == wp.for_groups(m.weight_groups)
    with pytest.raises(InputError):  # bad input is refused every time, never kept
        m.weight_precision("fp7")
    with pytest.raises(InputError):
        m.weight_precision("fp7")
    # Equal models compare equal whatever each has kept.
    assert lr.load_model("gpt-oss-120b") == m


def test_weight_bytes_by_group_is_a_fresh_dict_each_time():
    m = lr.load_model("llama2-7b")
    a = m.weight_bytes_by_group("fp16")
    a["attention"] = -1.0
    b = m.weight_bytes_by_group("fp16")
    assert b["attention"] > 0
    # fp16 attention: 32 layers x 4 matrices of 4096^2 elements x 2 bytes (Llama-2 has no attention biases).
    assert b["attention"] == 32 * 4 * 4096 * 4096 * 2


def test_efficiency_kept_per_device_and_profile_equals_a_fresh_one():
    cal = load_calibration("default")
    hw = lr.load_hardware("H20")
    prof = cal.runtime("vllm")
    first = cal.for_device(hw, prof)
    assert cal.for_device(hw, prof) is first
    assert first == cal._for_device(hw, prof)
    other = cal.for_device(hw, cal.runtime("trtllm@0.8"))
    assert other != first  # another stack, other overheads
    assert cal.for_device(hw, "vllm") == first  # by name: the same values


def test_with_fitted_keeps_a_profile_already_fitted():
    prof = load_runtime("vllm")
    assert with_fitted(prof, {}) is prof
    changed = with_fitted(prof, {"step_overhead_s": prof.step_overhead_s * 2})
    assert changed.step_overhead_s == prof.step_overhead_s * 2
    assert with_fitted(changed, {"step_overhead_s": prof.step_overhead_s * 2}) is changed


def test_factor_levels_match_the_product_of_factors():
    widen = {"a": 2.0, "b": 3.0, "c": 5.0}
    conditions = {"a": np.array([True, False, True]), "b": True, "c": np.array([False, False, True])}
    levels, index = factor_levels(widen, conditions)
    # Point 0: a and b hold, 2 x 3; point 1: b only, 3; point 2: all three, 2 x 3 x 5.
    assert levels[index].tolist() == [6.0, 3.0, 30.0]
    levels, index = factor_levels(widen, {"a": False, "b": np.bool_(True), "c": False})
    assert float(levels[index]) == 3.0


@pytest.mark.parametrize("path", catalog_files("hardware", (".yaml",)) + catalog_files("runtimes", (".yaml",)),
                         ids=lambda p: p.name)
def test_yaml_parses_as_safe_load_does(path):
    text = path.read_text()
    assert parse_yaml(text, str(path)) == yaml.safe_load(text)


def test_yaml_still_refuses_repeated_keys_and_python_tags():
    with pytest.raises(InputError, match="appears twice"):
        parse_yaml("a: 1\nb: {c: 1, c: 2}\n", "x")
    with pytest.raises(InputError, match="not valid YAML"):
        parse_yaml("!!python/object/apply:os.system [echo]", "x")
    assert parse_yaml("", "x") is None


@pytest.mark.parametrize("value", [np.array([1.5]), np.array([np.nan]), np.array([np.inf]), np.array([0.0]),
                                   -3.0, 2.5, float("nan"), np.array([2e7])])
def test_quick_checks_of_lengths_still_refuse_bad_numbers(value):
    with pytest.raises(InputError, match="batch"):
        lr.estimate("llama2-7b", "a100", batch=value, input_len=128, output_len=16)


def test_quick_checks_pass_good_numbers_through_unchanged():
    b = np.array([1.0, 8.0, 64.0])
    r = lr.estimate("llama2-7b", "a100", batch=b, input_len=128.0, output_len=16)
    assert r.batch.tolist() == [1.0, 8.0, 64.0]
    assert r.input_len.tolist() == [128, 128, 128]
