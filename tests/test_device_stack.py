"""A device stack (device_stack.py) gives each member exactly what an estimate on that device alone gives."""

from __future__ import annotations

import importlib
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmroofline as lr
from llmroofline.device_stack import DeviceStack, stack_devices, stack_efficiencies
from llmroofline.estimate import gemm_rates
from llmroofline.hardware import list_hardware, load_hardware

rec = importlib.import_module("llmroofline.recommend")  # the module (the package exports its function by that name)
BATCHES = np.array([1.0, 3.0, 17.0, 64.0, 200.0, 1024.0])
FIELDS = ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "throughput_per_gpu_tok_s", "energy_j_per_token")


def _groups(model: str, **layout) -> list[list[lr.Hardware]]:
    """Catalog devices that can hold the layout, grouped by the GEMM rates the model runs at."""
    m = lr.load_model(model)
    weights = m.weight_precision(None)
    out = defaultdict(list)
    for name in list_hardware():
        hw = load_hardware(name)
        try:
            lr.make_deployment(m, hw, **layout)
            rates = tuple(sorted(gemm_rates(m, weights, hw).items()))
        except lr.InputError:
            continue
        out[rates].append(hw)
    return list(out.values())


def _assert_members_match(model: str, hws: list[lr.Hardware], mode: str = "continuous", calibration="default",
                          **kw) -> None:
    batch = BATCHES[:, None] if mode == "continuous" else 1
    stacked = lr.estimate(model, stack_devices(hws), batch=batch, mode=mode, calibration=calibration,
                          with_warnings=False, **kw)
    for j, hw in enumerate(hws):
        alone = lr.estimate(model, hw, batch=BATCHES if mode == "continuous" else 1, mode=mode,
                            calibration=calibration, with_warnings=False, **kw)
        for name in FIELDS:
            # bit for bit: the stack runs the same elementwise steps on each member's numbers
            np.testing.assert_array_equal(getattr(stacked, name)[..., j], getattr(alone, name), err_msg=f"{hw.id} {name}")
        for name in ("weights", "kv_cache", "activations", "total", "fits"):
            np.testing.assert_array_equal(getattr(stacked.memory, name)[..., j], getattr(alone.memory, name),
                                          err_msg=f"{hw.id} memory {name}")
        for key, value in alone.interval.items():
            if key in ("level", "conditions"):
                continue
            low, high = value
            np.testing.assert_array_equal(stacked.interval[key][0][..., j], low, err_msg=f"{hw.id} {key} low")
            np.testing.assert_array_equal(stacked.interval[key][1][..., j], high, err_msg=f"{hw.id} {key} high")


CASES = [
    ("qwen3-30b-a3b", dict(tp=2, ep=2, input_len=4096, output_len=1024)),
    ("qwen3-30b-a3b", dict(tp=1, ep=16, dp=16, input_len=4096, output_len=1024)),  # all-to-all across domains
    ("mixtral-8x7b", dict(tp=8, ep=8, input_len=4096, output_len=1024)),
    ("llama3.1-70b", dict(tp=4, pp=2, input_len=2048, output_len=256)),  # pipeline hand-overs
    ("llama3.1-70b", dict(tp=16, input_len=2048, output_len=256)),  # all-reduce across domains
    ("deepseek-v3", dict(tp=1, ep=64, dp=64, input_len=2048, output_len=256)),  # MLA, wide EP
    ("qwen2.5-vl-7b", dict(tp=1, input_len=2048, output_len=256, images=2)),  # a vision encoder per step
    ("gemma2-9b", dict(tp=2, input_len=8192, output_len=512)),  # sliding windows
]


@pytest.mark.parametrize(("model", "kw"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_every_member_gets_its_own_estimate(model, kw):
    layout = {k: kw[k] for k in ("tp", "pp", "ep", "dp") if k in kw}
    groups = _groups(model, **layout)
    assert sum(map(len, groups)) >= 10  # the catalog holds the layout on many devices
    for hws in groups:
        _assert_members_match(model, hws, **kw)


def test_max_mode_and_plain_roofline():
    hws = _groups("llama3.1-8b")[0]
    _assert_members_match("llama3.1-8b", hws, mode="max", input_len=1024, output_len=256)
    _assert_members_match("llama3.1-8b", hws, calibration="none", input_len=1024, output_len=256)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_any_subset_in_any_order(data):
    groups = _groups("llama3.1-8b", tp=2)
    hws = data.draw(st.permutations(max(groups, key=len)))
    n = data.draw(st.integers(1, len(hws)))
    _assert_members_match("llama3.1-8b", list(hws[:n]), tp=2, input_len=data.draw(st.integers(1, 20000)),
                          output_len=data.draw(st.integers(1, 4000)))


def test_stack_fields_are_the_members():
    a, b = load_hardware("a100"), load_hardware("h100")
    s = stack_devices([a, b])
    assert isinstance(s, DeviceStack) and s.size == 2
    np.testing.assert_array_equal(s.memory_bandwidth, [a.memory_bandwidth, b.memory_bandwidth])
    assert s.max_devices == 8  # shared values stay plain numbers
    assert s.precisions == a.precisions & b.precisions
    effs = [lr.load_calibration("default").for_device(hw) for hw in (a, b)]
    e = stack_efficiencies(effs)
    np.testing.assert_array_equal(e.gemm_compute, [effs[0].gemm_compute, effs[1].gemm_compute])


def test_bad_stacks_are_refused():
    with pytest.raises(ValueError, match="at least one member"):
        stack_devices([])
    s = stack_devices([load_hardware("a100"), load_hardware("h100")])
    with pytest.raises(ValueError, match="single devices"):
        stack_devices([s])
    with pytest.raises(lr.InputError, match="continuous or max"):
        lr.estimate("llama3.1-8b", s, batch=np.ones((3, 1)))
    with pytest.raises(lr.InputError, match="last axis must have length 1"):
        lr.estimate("llama3.1-8b", s, batch=np.array([1.0, 2.0]), mode="continuous")


@pytest.mark.parametrize(("model", "kw"), [("qwen3-30b-a3b", {}), ("deepseek-v3", {}),
                                           ("llama3.1-70b", {"max_gpus": 16}),
                                           ("qwen2.5-vl-7b", {"images": 2}),
                                           ("llama3.1-8b", {"calibration": "none", "runtime": "vllm"}),
                                           ("mixtral-8x7b", {"weight_dtype": "fp8", "tp": 2, "pp": 2})])
def test_recommend_on_stacks_equals_recommend_device_by_device(model, kw, monkeypatch):
    fast = rec.recommend(model, 4096, 1024, **kw)
    monkeypatch.setattr(rec, "_evaluate_stacked", lambda *a, **k: {})  # every device searched alone
    slow = rec.recommend(model, 4096, 1024, **kw)
    assert [c.device for c in fast.ranking] == [c.device for c in slow.ranking]
    for a, b in zip(fast.searches, slow.searches, strict=True):
        assert (a.device, a.reason) == (b.device, b.reason)
        assert (a.points is None) == (b.points is None)
        if a.points is not None:
            for k in rec._COLUMNS:
                np.testing.assert_array_equal(getattr(a.points, k), getattr(b.points, k), err_msg=f"{a.device} {k}")
