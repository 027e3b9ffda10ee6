"""Energy per token from the power model (energy.py, catalog/priors/power.yaml): hand-derived
joules, the closed-form sums over decode steps against step-by-step sums, the physical bounds
(idle × time <= energy <= TDP × time), and the catalog's validation."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.efficiency import load_calibration
from llmroofline.energy import (
    PowerModel,
    Work,
    decode_steps_work,
    energy_j,
    energy_use,
    pass_work,
    power_model,
    power_priors,
    power_priors_from_dict,
)
from llmroofline.errors import InputError
from llmroofline.estimate import make_deployment
from llmroofline.operators import AttentionGroup

from .conftest import round_device

# TDP 700 W, idle 100 W, compute-bound 0.95 × 700 = 665 W, memory-bound 0.6 × 700 = 420 W, comm 210 W.
P = PowerModel("made-up", tdp_w=700.0, idle_w=100.0, compute_w=665.0, memory_w=420.0, comm_w=210.0, sources={})


# ---- the formula, by hand ------------------------------------------------------------------

def test_a_memory_bound_decode_step_by_hand():
    # A 10 ms decode step that only streams memory (no compute-bound seconds): it draws P_memory =
    # 420 W for 10 ms = 4.2 J; with a batch of 64 sequences each emitting one token, 4.2 / 64 =
    # 0.065625 J per token. At full board power it would be 700 W × 10 ms / 64 = 0.109375 J.
    work = Work(compute_s=0.0, busy_s=0.010, comm_s=0.0)
    assert float(energy_j(P, 0.010, work)) == pytest.approx(4.2, rel=1e-12)
    use = energy_use(P, 1, 0.010, work, 64)
    assert float(use.j_per_token) == pytest.approx(0.065625, rel=1e-12)
    assert float(use.j_per_token_tdp) == pytest.approx(0.109375, rel=1e-12)
    assert float(use.power_w_per_gpu) == pytest.approx(420.0, rel=1e-12)


def test_compute_bound_mixed_idle_and_communication_by_hand():
    # Compute-bound for its whole length: 665 W × 20 ms = 13.3 J.
    assert float(energy_j(P, 0.020, Work(0.020, 0.020, 0.0))) == pytest.approx(13.3, rel=1e-12)
    # An operator with 4 ms of compute under 10 ms of streaming, then 2 ms of all-reduce and 3 ms
    # of launch gaps (15 ms in all): 4 ms at 665 W + 6 ms at 420 W + 2 ms at 210 W + 3 ms at 100 W
    # = 2.66 + 2.52 + 0.42 + 0.30 = 5.90 J.
    assert float(energy_j(P, 0.015, Work(0.004, 0.010, 0.002))) == pytest.approx(5.90, rel=1e-12)
    # Nothing running: idle for the whole time. Two GPUs, 10 tokens: 2 × 100 W × 1 s / 10 = 20 J/token.
    assert float(energy_use(P, 2, 1.0, Work(0.0, 0.0, 0.0), 10).j_per_token) == pytest.approx(20.0, rel=1e-12)


def test_an_estimate_by_hand_on_the_round_device():
    # One sequence, one prompt token, one output token: a single one-token pass of Llama-2-7B on a
    # made-up device (100 TFLOPS, 1000 GB/s, 500 W; its family has no power figures, so the
    # catalog's defaults apply: idle 0.20, memory 0.50, compute 0.95 of TDP = 100, 250, 475 W).
    # Every operator of a one-token pass does ~1 FLOP per byte, far below the 100 FLOP/B ridge, so
    # all of it is memory-bound: the whole time T streams (busy = T) and the compute engines work
    # FLOPs / peak seconds of it. Energy = 250 W × T + (475 - 250) W × FLOPs / 1e14.
    # T ≈ 13.2 GB / 1000 GB/s = 13.2 ms (13.48 GB of fp16 weights less the 0.26 GB input embedding
    # table, of which one row is read) -> 3.31 J; FLOPs ≈ 2 × 6.6e9 -> 0.03 J; 3.34 J in all.
    hw = round_device()
    r = lr.estimate("llama2-7b", hw, batch=1, input_len=1, output_len=1, calibration="none")
    flops = sum(op.count * float(op.flops) for op in lr.forward_ops(
        lr.load_model("llama2-7b"), groups=[AttentionGroup(1, 1, 0)], weight_dtype="fp16"))
    assert float(r.energy_j_per_token) == pytest.approx(250 * float(r.e2e_s) + 225 * flops / 1e14, rel=1e-9)
    assert float(r.energy_j_per_token) == pytest.approx(3.34, rel=0.01)
    assert float(r.energy_j_per_token_tdp) == pytest.approx(500 * float(r.e2e_s), rel=1e-12)
    assert float(r.energy.power_w_per_gpu) == pytest.approx(252.2, rel=0.01)


# ---- the sums are the operator times' own --------------------------------------------------

@pytest.mark.parametrize("model,hardware,tp", [("llama2-7b", "A100-SXM4-80GB", 1), ("mistral-7b", "L40S", 1),
                                               ("mixtral-8x7b", "H100-SXM5-80GB", 2)])
def test_pass_work_adds_up_the_operator_table(model, hardware, tp):
    dep = make_deployment(model, hardware, tp=tp)
    eff = load_calibration("default").for_device(dep.hardware, None)
    ops = dep.ops([AttentionGroup(np.array([1.0, 16.0, 256.0]), 1, 3000.0)])
    t = lr.time_ops(ops, dep.hardware, eff)
    w = pass_work(ops, dep.hardware, eff)
    c = t.counts[:, None]
    np.testing.assert_allclose(w.compute_s, (c * t.compute_s).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(w.busy_s, (c * np.maximum(t.compute_s, t.memory_s)).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(w.comm_s, (c * t.comm_s).sum(axis=0), rtol=1e-12, atol=1e-300)
    assert np.all(w.busy_s + w.comm_s <= t.total() * (1 + 1e-12))  # a pass lasts at least its work


@pytest.mark.parametrize("model,hardware", [("llama2-7b", "A100-SXM4-80GB"), ("mistral-7b", "L40S"),
                                            ("gemma-2-9b", "H20")])
def test_decode_sums_in_closed_form_equal_the_step_by_step_sums(model, hardware):
    # Mistral and Gemma-2 have sliding windows (4096): the KV range 4000..4300 crosses them.
    dep = make_deployment(model, hardware)
    eff = load_calibration("default").for_device(dep.hardware, None)
    batch = np.array([1.0, 8.0, 64.0])
    first, last = 4000, 4300
    ops = dep.ops([AttentionGroup(batch[:, None], 1, np.array([0.0, 1.0]))])
    closed = decode_steps_work(ops, dep.hardware, eff, first, last)
    steps = [pass_work(dep.ops([AttentionGroup(batch, 1, kv - 1.0)]), dep.hardware, eff) for kv in range(first, last + 1)]
    for name in ("compute_s", "busy_s", "comm_s"):
        np.testing.assert_allclose(getattr(closed, name), sum(getattr(s, name) for s in steps), rtol=1e-9, atol=1e-300)


def test_static_energy_is_prefill_plus_every_decode_step():
    dep = make_deployment("llama2-7b", "A100-SXM4-80GB")
    eff = load_calibration("default").for_device(dep.hardware, None)
    r = lr.estimate("llama2-7b", "A100-SXM4-80GB", batch=8, input_len=500, output_len=40)
    power = power_model(dep.hardware)
    work = pass_work(dep.ops([AttentionGroup(8.0, 500.0, 0.0)]), dep.hardware, eff)
    for kv in range(501, 540):  # decode steps 2..40 attend 501..539 positions
        work = work + pass_work(dep.ops([AttentionGroup(8.0, 1.0, kv - 1.0)]), dep.hardware, eff)
    expected = energy_j(power, float(r.e2e_s), work) / (8 * 40)
    assert float(r.energy_j_per_token) == pytest.approx(float(expected), rel=1e-9)


# ---- laws ----------------------------------------------------------------------------------

@given(batch=st.integers(1, 512), input_len=st.integers(1, 16384), output_len=st.integers(1, 4096),
       mode=st.sampled_from(["static", "continuous"]),
       case=st.sampled_from([("llama3.1-8b", "H100-SXM5-80GB", 1, 1, 1), ("llama3.1-70b", "A100-SXM4-80GB", 4, 2, 1),
                             ("mixtral-8x7b", "H20", 2, 1, 2), ("llama2-7b", "L40S", 1, 1, 1)]))
def test_energy_lies_between_idle_and_the_board_limit(batch, input_len, output_len, mode, case):
    model, hardware, tp, pp, ep = case
    r = lr.estimate(model, hardware, batch=batch, input_len=input_len, output_len=output_len, mode=mode,
                    tp=tp, pp=pp, ep=ep)
    power = power_model(lr.load_hardware(hardware))
    ceiling = float(r.energy_j_per_token_tdp)
    assert ceiling == pytest.approx(power.tdp_w * r.gpus / float(r.throughput_tok_s), rel=1e-9)
    assert power.idle_w / power.tdp_w * ceiling * (1 - 1e-9) <= float(r.energy_j_per_token) <= ceiling
    assert power.idle_w * (1 - 1e-9) <= float(r.energy.power_w_per_gpu) <= power.compute_w * (1 + 1e-9)


def test_energy_per_token_falls_with_the_batch_in_decode():
    # Decode streams the weights once per step whatever the batch: more sequences share those joules.
    r = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=[1, 2, 4, 8, 16, 32, 64, 128, 256], input_len=512,
                    output_len=512, mode="continuous")
    assert np.all(np.diff(r.energy_j_per_token) < 0)


def test_compute_bound_prefill_draws_more_than_memory_bound_decode():
    prefill = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=16, input_len=4096, output_len=1)
    decode = lr.estimate("llama3.1-8b", "H100-SXM5-80GB", batch=1, input_len=16, output_len=2048)
    power = power_model(lr.load_hardware("H100-SXM5-80GB"))
    assert float(prefill.energy.power_w_per_gpu) > 0.8 * power.compute_w  # close to the board limit
    assert float(decode.energy.power_w_per_gpu) < 1.05 * power.memory_w  # a stream, with launch gaps
    assert float(decode.energy.power_w_per_gpu) < 0.6 * float(prefill.energy.power_w_per_gpu)


def test_energy_broadcasts_over_the_grid_and_is_computed_in_blocks(monkeypatch):
    estimate_module = importlib.import_module("llmroofline.estimate")
    kw = dict(batch=[[1], [16], [256]], input_len=[[128, 2048, 9000]], output_len=256)
    whole = lr.estimate("llama3.1-8b", "A100-SXM4-80GB", **kw).energy_j_per_token
    assert whole.shape == (3, 3) and np.all(np.isfinite(whole))
    monkeypatch.setattr(estimate_module, "BLOCK_POINTS", 2)
    np.testing.assert_allclose(lr.estimate("llama3.1-8b", "A100-SXM4-80GB", **kw).energy_j_per_token, whole,
                               rtol=1e-12)


# ---- the catalog ---------------------------------------------------------------------------

def test_bundled_figures_and_their_sources():
    priors = power_priors()
    h100 = power_model(lr.load_hardware("H100-SXM5-80GB"), priors)
    # Hopper: memory-bound 0.45 × 700 W (Ma et al. 2026), the rest the defaults.
    assert (h100.idle_w, h100.memory_w, h100.compute_w, h100.comm_w) == pytest.approx((140, 315, 665, 210))
    l40s = power_model(lr.load_hardware("L40S"), priors)  # no Ada figures: the stated defaults
    assert (l40s.idle_w, l40s.memory_w, l40s.compute_w) == pytest.approx((70, 175, 332.5))
    for hw in lr.list_hardware():
        p = power_model(hw, priors)
        assert p.idle_w <= p.memory_w <= p.compute_w <= p.tdp_w and p.idle_w <= p.comm_w <= p.compute_w
        assert all(s.strip() for s in p.sources.values())


def _entry(**shares):
    return {k: {"value": v, "source": "test"} for k, v in shares.items()}


GOOD = {"default": _entry(idle=0.2, compute=0.95, memory=0.5, comm=0.3), "families": {}, "devices": {}}


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("devices"), "sections"),
    (lambda d: d["default"].pop("comm"), "all of"),
    (lambda d: d["default"]["idle"].update(source=" "), "source"),
    (lambda d: d["default"]["idle"].update(value=1.5), "fraction of TDP"),
    (lambda d: d["default"]["idle"].update(value=True), "fraction of TDP"),
    (lambda d: d["default"].update(fan=d["default"]["idle"]), "some of|all of"),
    (lambda d: d["families"].update(hopper=_entry(memory=0.99)), "memory <= compute"),
    (lambda d: d["devices"].update(X=_entry(idle=0.6)), "idle <= memory"),
    (lambda d: d["families"].update(hopper=[1]), "expected"),
])
def test_bad_power_catalogs_are_refused_naming_the_field(change, message):
    data = json.loads(json.dumps(GOOD))
    assert power_priors_from_dict(data, "power.yaml").default["idle"][0] == 0.2
    change(data)
    with pytest.raises(InputError, match=message):
        power_priors_from_dict(data, "power.yaml")


# ---- the shells ----------------------------------------------------------------------------

def test_estimate_json_carries_energy_and_its_ceiling(capsys):
    assert main(["estimate", "--model", "llama2-7b", "--hardware", "a100", "--batch", "64", "--input", "128",
                 "--output", "128", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert 0 < d["energy_j_per_token"] < d["energy_j_per_token_tdp"]
    assert d["energy_j_per_token_tdp"] == pytest.approx(400 * d["gpus"] / d["throughput_tok_s"], rel=1e-9)
    assert 80 <= d["power_w_per_gpu"] <= 380  # between idle (0.2 × 400 W) and compute-bound (0.95 × 400 W)


def test_hardware_show_gives_the_power_model_and_its_sources(capsys):
    assert main(["hardware", "show", "h100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["power_w"] == pytest.approx({"tdp_w": 700, "idle_w": 140, "compute_w": 665, "memory_w": 315,
                                          "comm_w": 210})
    assert "2605.11999" in d["power_sources"]["memory"]


def test_an_estimate_pickles_with_its_energy_before_and_after_first_use():
    import pickle

    r = lr.estimate("llama2-7b", "A100-SXM4-80GB", batch=[1, 8], input_len=128, output_len=64)
    fresh = pickle.loads(pickle.dumps(r))  # energy not computed yet: it travels as its recipe
    np.testing.assert_array_equal(fresh.energy_j_per_token, r.energy_j_per_token)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(r)).energy_j_per_token, r.energy_j_per_token)
