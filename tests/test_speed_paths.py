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


recommend_mod = importlib.import_module("llmroofline.recommend")
SEARCH_DEVICES = ["A100-SXM4-80GB", "H100-SXM5-80GB", "L40S", "H200-SXM-141GB", "H20"]


@pytest.mark.parametrize("max_gpus", [8, 32])
def test_search_over_shared_grids_gives_each_device_its_own_points(max_gpus):
    """`recommend` evaluates each (tp, pp, ep, dp) over the union of the devices' batch grids and
    keeps each device's own points; every point is computed from its own inputs, so each device's
    columns are those of searching it alone, to the last bit (and in the same order)."""
    rec = lr.recommend("mixtral-8x7b", 4096, 1024, devices=SEARCH_DEVICES, max_gpus=max_gpus)
    cal = load_calibration("default")
    grids = [len(s.points) for s in rec.searches if s.points is not None]
    assert len(set(grids)) > 1  # the devices' grids differ, so the shared ones hold points some do not
    for shared in rec.searches:
        hw = lr.load_hardware(shared.device)
        alone = recommend_mod.search_device(rec.workload, hw, price=hw.price_per_hour_usd, calibration=cal)
        assert (shared.points is None) == (alone.points is None) and shared.reason == alone.reason
        if alone.points is None:
            continue
        for column in recommend_mod._COLUMNS:
            a, b = getattr(shared.points, column), getattr(alone.points, column)
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (shared.device, column)
        assert shared.points.interval_level == alone.points.interval_level


def test_estimate_without_warnings_gives_the_same_numbers():
    args = dict(batch=np.array([1.0, 8.0, 300.0]), input_len=4096, output_len=1024, tp=2, ep=2, mode="continuous")
    full = lr.estimate("mixtral-8x7b", "L40S", **args)
    quiet = lr.estimate("mixtral-8x7b", "L40S", **args, with_warnings=False)
    assert full.warnings and quiet.warnings == ()
    for name in ("ttft_s", "tpot_s", "throughput_per_gpu_tok_s", "energy_j_per_token"):
        assert np.array_equal(getattr(full, name), getattr(quiet, name)), name


def test_gemm_rates_kept_per_model_weights_and_device_equal_fresh_ones():
    """A deployment's GEMM rates are kept across deployments of the same objects; fp8 weights run
    at the fp8 rate where the device has one (H100) and at a 16-bit rate where not (A100)."""
    rates = {}
    for device in ("H100-SXM5-80GB", "A100-SXM4-80GB"):
        dep = estimate_mod.make_deployment("llama3.1-8b", device, weight_dtype="fp8")
        again = estimate_mod.make_deployment("llama3.1-8b", device, weight_dtype="fp8")
        assert again.gemm_precisions is dep.gemm_precisions  # kept
        fresh = {g: estimate_mod.gemm_precision(dep.weights.format(g).precision, dep.hardware.precisions)
                 for g in estimate_mod.GROUPS}
        assert dep.gemm_precisions == fresh
        rates[device] = dep.gemm_precision
    assert rates["H100-SXM5-80GB"] == "fp8" and rates["A100-SXM4-80GB"] in ("fp16", "bf16")


def test_pass_fields_kept_per_operator_list():
    """The stacked fields are gathered once per operator list (kept by identity) and are those of
    a fresh gathering; a list over more than STACK_POINTS points has none."""
    dep = estimate_mod.make_deployment("mixtral-8x7b", "L40S", tp=2, ep=2)
    ops = dep.ops(PASSES["continuous step"])
    fields = roofline.pass_fields(ops)
    assert roofline.pass_fields(ops) is fields
    fresh = roofline._gather(list(ops))
    assert fresh is not None and fields is not None and len(fresh.like) == len(fields.like)
    for kept, new in zip(fields.like, fresh.like, strict=True):
        assert kept[:3] == new[:3] and all(np.array_equal(x, y) for x, y in zip(kept[3:], new[3:], strict=True))
    big = dep.ops([AttentionGroup(np.arange(1.0, roofline.STACK_POINTS + 2), 1, 4607.0)])
    assert roofline.pass_fields(big) is None


def test_interval_ratios_kept_per_levels_table_equal_fresh_ones():
    """metric_interval keeps exp(mid + (q - mid) x level) per read-only levels table; a table
    that can be written to is used afresh each time."""
    intervals = importlib.import_module("llmroofline.intervals")
    q = [-0.3, 0.05, 0.4]
    levels, index = factor_levels({"a": 2.0, "b": 3.0}, {"a": np.array([True, False]), "b": False})
    v = np.array([10.0, 20.0])
    low, high = intervals.metric_interval(v, q, (levels, index))
    # Point 0: factor 2, 10 x exp(0.05 - 0.35 x 2); point 1: factor 1, 20 x exp(0.05 + 0.35).
    assert np.allclose(low, [10 * np.exp(0.05 - 0.7), 20 * np.exp(-0.3)])
    assert np.allclose(high, [10 * np.exp(0.05 + 0.7), 20 * np.exp(0.4)])
    again = intervals.metric_interval(v, q, (levels, index))
    assert all(np.array_equal(a, b) for a, b in zip((low, high), again, strict=True))
    table = np.array(levels)  # writable: changed in place, it gives new ratios
    first = intervals.metric_interval(v, q, (table, index))[0]
    table *= 2
    assert not np.array_equal(first, intervals.metric_interval(v, q, (table, index))[0])


def test_kept_pass_fields_stay_within_their_budget(monkeypatch):
    """Kept operator lists are dropped oldest first beyond RECENT_FIELDS lists or
    RECENT_FIELD_VALUES operator x point values, and the count of kept values stays exact."""
    import math

    monkeypatch.setattr(roofline, "_RECENT_FIELDS", {})
    monkeypatch.setattr(roofline, "_KEPT", [0])
    monkeypatch.setattr(roofline, "RECENT_FIELD_VALUES", 3000)
    dep = estimate_mod.make_deployment("llama2-7b", "A100-SXM4-80GB")
    lists = [dep.ops([AttentionGroup(np.arange(1.0, 101.0) + k, 1, 1000.0)]) for k in range(4)]
    for ops in lists:
        assert roofline.pass_fields(ops) is not None
    kept = [f for _, f in roofline._RECENT_FIELDS.values()]
    values = [len(f.ops) * math.prod(f.shape) for f in kept]
    assert roofline._KEPT[0] == sum(values) <= 3000
    assert kept[-1].ops == tuple(lists[-1]) and len(kept) < len(lists)  # the newest stays, the oldest went


def test_power_model_kept_per_device_equals_a_fresh_one():
    hw = lr.load_hardware("H100-SXM5-80GB")
    first = energy.power_model(hw)
    assert energy.power_model(hw) is first  # kept
    assert first == energy.power_model(hw, energy.power_priors())  # what the given priors build
    assert energy.power_model(lr.load_hardware("L40S")) != first


def test_kept_batch_grid_is_batch_grid_read_only():
    for largest in (0, 1, 10, 37, 2048, 65536):
        kept = recommend_mod._kept_batch_grid(largest)
        assert np.array_equal(kept, recommend_mod.batch_grid(largest)) and not kept.flags.writeable
    assert recommend_mod.batch_grid(10).flags.writeable  # the public function still hands out its own array


def test_weights_per_device_kept_equals_a_fresh_computation():
    memory = importlib.import_module("llmroofline.memory")
    m = lr.load_model("mixtral-8x7b")
    for tp, pp, ep in ((1, 1, 1), (2, 1, 2), (4, 2, 8), (np.int64(2), 1, 1)):
        kept = memory.weights_per_device(m, None, tp, pp, ep)
        assert memory.weights_per_device(m, None, tp, pp, ep) == kept
        fresh = memory._weights_per_device(m, m.weight_precision(None), tp, pp, ep, 0)
        assert kept == fresh and type(kept) is type(fresh)
    assert memory.weights_per_device(m, "fp8", 2, 1, 2) < memory.weights_per_device(m, None, 2, 1, 2)
