"""`recommend` and `pareto`: the ranking follows physics, costs follow their formula, nothing that
does not fit is recommended, the search is exhaustive, and bad input exits 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.memory import max_batch, usable_memory
from llmroofline.recommend import batch_grid, frontier_mask, pareto, recommend

from .conftest import round_device

# Round devices: 100 TFLOPS fp16, 1000 GB/s, 100 GB, 8 per NVLink domain, $2/GPU-hour, 500 W.
BANDWIDTH_2X = round_device(id="BW-2X", memory_bandwidth_gbps=2000)
COMPUTE_2X = round_device(id="FLOPS-2X", peak_tflops={"fp16": 200, "bf16": 200, "fp8": 400})
PAIR = [BANDWIDTH_2X, COMPUTE_2X]


# ---- physics -------------------------------------------------------------------------------

def test_decode_heavy_long_context_prefers_bandwidth():
    # Llama-2-7B has one KV head per query head (MHA): every decode step reads each sequence's
    # whole KV cache (~0.5 MB per cached token) for ~1 FLOP per byte, a hundred times below the
    # devices' ridge (100 FLOP/B). With 8192-token prompts and 4096-token answers the KV reads
    # dwarf everything else in a step, so time per token halves with bandwidth and ignores compute.
    r = recommend("llama2-7b", 8192, 4096, devices=PAIR, calibration="none")
    assert [c.device for c in r.ranking] == ["BW-2X", "FLOPS-2X"]
    bw, fl = r.ranking
    assert bw.throughput_per_gpu_tok_s > 1.5 * fl.throughput_per_gpu_tok_s
    assert bw.cost_per_million_tokens < fl.cost_per_million_tokens  # equal prices: cost follows speed


def test_prefill_heavy_short_context_prefers_compute():
    # 2048-token prompts and 16-token answers: each continuous-batching step prefills B/16 prompts,
    # 128 prompt tokens per answer token, so the linear layers multiply ~130 tokens per weight read
    # at full batch (~70 sequences): arithmetic intensity ~130 FLOP/B per sequence, ~9,000 for the
    # batch, far above the ridge. The short context keeps KV reads small. Compute decides.
    r = recommend("llama2-7b", 2048, 16, devices=PAIR, calibration="none")
    assert [c.device for c in r.ranking] == ["FLOPS-2X", "BW-2X"]
    fl, bw = r.ranking
    assert fl.throughput_per_gpu_tok_s > 1.5 * bw.throughput_per_gpu_tok_s


def test_calibrated_ranking_agrees_with_the_plain_roofline():
    for (i, o), first in (((8192, 4096), "BW-2X"), ((2048, 16), "FLOPS-2X")):
        assert recommend("llama2-7b", i, o, devices=PAIR).ranking[0].device == first


def test_the_price_can_overturn_the_physics():
    # Twice the speed at three times the price costs more per token.
    r = recommend("llama2-7b", 8192, 4096, devices=PAIR, calibration="none", prices={"BW-2X": 6.0})
    assert r.ranking[0].device == "FLOPS-2X"


# ---- the formulas --------------------------------------------------------------------------

@pytest.mark.parametrize("model,i,o,prices", [
    ("llama2-7b", 2048, 512, None),
    ("llama2-70b", 4096, 1024, {"BW-2X": 3.7, "flops-2x": 0.9}),  # several GPUs per instance
    ("mixtral-8x7b", 1024, 256, {"BW-2X": 1.25}),
])
def test_cost_energy_and_speed_follow_their_formulas(model, i, o, prices):
    r = recommend(model, i, o, devices=PAIR, prices=prices, calibration="none")
    assert len(r.ranking) == 2
    for c in r.ranking:
        hw = {d.id: d for d in PAIR}[c.device]
        price = {"BW-2X": 2.0, "FLOPS-2X": 2.0, **{k.upper(): v for k, v in (prices or {}).items()}}[c.device]
        system = c.throughput_per_gpu_tok_s * c.gpus  # output tokens/s of the whole instance
        assert c.price_per_gpu_hour == price
        assert c.cost_per_million_tokens == pytest.approx(price * c.gpus / (3600 * system) * 1e6, rel=1e-12)
        # The ceiling is the board limit over the whole time; the power model draws less, never
        # below idle (energy.py; these round devices take the catalog's default shares of TDP).
        assert c.energy_j_per_token_tdp == pytest.approx(hw.tdp_w * c.gpus / system, rel=1e-12)
        idle = lr.power_model(hw).idle_w
        assert idle * c.gpus / system <= c.energy_j_per_token < c.energy_j_per_token_tdp
        assert c.tokens_per_s_per_user == pytest.approx(1 / c.tpot_s, rel=1e-12)
        assert c.gpus == max(c.tp, c.ep) * c.pp  # ep > tp: data-parallel attention replicas
        # The figures are the engine's own for that configuration.
        e = lr.estimate(model, hw, batch=c.batch, input_len=i, output_len=o, tp=c.tp, pp=c.pp, ep=c.ep,
                        mode="continuous", calibration="none")
        assert float(e.throughput_per_gpu_tok_s) == pytest.approx(c.throughput_per_gpu_tok_s, rel=1e-9)
        assert float(e.ttft_s) == pytest.approx(c.ttft_s, rel=1e-9)
        assert float(e.tpot_s) == pytest.approx(c.tpot_s, rel=1e-9)
        assert float(e.energy_j_per_token) == pytest.approx(c.energy_j_per_token, rel=1e-9)
    costs = [c.cost_per_million_tokens for c in r.ranking]
    assert costs == sorted(costs)


def test_json_has_the_spec_fields():
    d = recommend("llama2-7b", 1024, 256, devices=PAIR).to_dict()
    spec = {"device", "gpus", "tp", "pp", "ep", "batch", "ttft_s", "tpot_s", "throughput_per_gpu_tok_s",
            "tokens_per_s_per_user", "price_per_gpu_hour", "cost_per_million_tokens", "energy_j_per_token",
            "energy_j_per_token_tdp"}
    assert set(d) >= {"ranking", "excluded"}
    assert all(spec <= set(c) for c in d["ranking"])
    json.dumps(d, allow_nan=False)


# ---- memory ---------------------------------------------------------------------------------

# The default stack's KV pool (runtime generic): paged, holding input + half the output per sequence,
# with weights, workspace and pool together in 90% of the device.
GENERIC_POOL = {"rule": "total", "kv_fraction": 0.9}


def _fits(model, hw, c, i, o) -> bool:
    e = lr.estimate(model, hw, batch=c.batch, input_len=i, output_len=o, tp=c.tp, pp=c.pp, ep=c.ep,
                    mode="continuous", calibration="none")
    runtime = max_batch(lr.load_model(model), hw, context=i + o / 2, weight_dtype="fp16", kv_dtype="fp16",
                        tp=c.tp, pp=c.pp, **GENERIC_POOL)
    return bool(e.memory.fits) and c.batch <= runtime


@settings(max_examples=25, deadline=None)
@given(memory_gb=st.sampled_from([16, 24, 40, 48, 80, 141]), i=st.integers(1, 32768), o=st.integers(1, 8192),
       max_devices=st.sampled_from([1, 2, 8]))
def test_a_configuration_that_does_not_fit_is_never_recommended(memory_gb, i, o, max_devices):
    hw = round_device(id="SMALL", memory_gb=memory_gb,
                      interconnect={"kind": "NVLink", "bandwidth_gbps": 400, "max_devices": max_devices})
    r = recommend("llama2-13b", i, o, devices=[hw], calibration="none")
    for c in r.ranking:
        assert _fits("llama2-13b", hw, c, i, o)
    for s in r.searches:
        if s.points is not None:
            assert np.all(s.points.memory_per_gpu_gb <= memory_gb)
    assert len(r.ranking) + len(r.excluded) == 1


def test_a_model_too_big_is_excluded_with_the_memory_it_needs():
    small = round_device(id="SMALL-24", memory_gb=24)
    r = recommend("llama2-70b", 4096, 4096, devices=[small, BANDWIDTH_2X], max_gpus=4, calibration="none")
    assert [c.device for c in r.ranking] == ["BW-2X"]
    (e,) = r.excluded
    assert e.device == "SMALL-24" and e.reason.startswith("does not fit")
    weights = lr.load_model("llama2-70b").params_total * 2 / 4 / 1e9  # fp16 over tp 4: 34.5 GB per GPU
    available = (24 * 2**30 - 2**30) / 1e9  # 24 GiB of HBM less the runtime's 1 GiB
    assert f"{weights:.1f} GB weights" in e.reason and f"{available:.1f} GB available" in e.reason
    assert "at most 4 GPUs" in e.reason


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(["llama2-13b", "llama2-70b", "mixtral-8x7b", "deepseek-v2-lite"]),
       memory_gb=st.integers(8, 200), context=st.integers(2, 200_000), tp=st.sampled_from([1, 2, 4, 8]),
       pp=st.sampled_from([1, 2, 4]), rule=st.sampled_from([("free", 0.9), ("total", 0.9), ("total", 0.88)]))
def test_the_memory_cited_in_exclusions_agrees_with_max_batch(model, memory_gb, context, tp, pp, rule):
    from llmroofline.recommend import memory_needed

    m, hw = lr.load_model(model), round_device(memory_gb=memory_gb)
    need = memory_needed(m, hw, context, weight_dtype="fp16", kv_dtype="fp16", tp=tp, pp=pp, rule=rule[0],
                         fraction=rule[1])
    assert need["total"] == pytest.approx(need["weights"] + need["sequence"] + need["workspace"])
    runtime = max_batch(m, hw, context=context, weight_dtype="fp16", kv_dtype="fp16", tp=tp, pp=pp, rule=rule[0],
                        kv_fraction=rule[1])
    if not math.isclose(need["total"], usable_memory(hw), rel_tol=1e-9):
        assert (need["total"] <= usable_memory(hw)) == (runtime >= 1)


def test_pipeline_parallelism_only_when_one_domain_cannot_hold_the_model():
    # Pairs of 24 GB devices (two per NVLink domain) cannot hold Llama-2-70B's 140 GB: pipeline stages.
    pairs = round_device(id="PAIRS-24", memory_gb=24,
                         interconnect={"kind": "NVLink", "bandwidth_gbps": 400, "max_devices": 2})
    c = recommend("llama2-70b", 1024, 256, devices=[pairs], calibration="none").ranking[0]
    assert c.pp > 1 and c.tp <= 2 and c.gpus <= 8
    # A model that fits in one domain never gets a pipeline.
    r = recommend("llama2-13b", 1024, 256, devices=[pairs], calibration="none")
    assert all(np.all(s.points.pp == 1) for s in r.searches)


def test_tensor_parallelism_respects_heads_domain_and_budget():
    narrow = round_device(id="NARROW", interconnect={"kind": "PCIe", "bandwidth_gbps": 64, "max_devices": 2})
    (s,) = recommend("llama2-70b", 512, 128, devices=[narrow], calibration="none").searches
    assert set(s.points.tp.tolist()) <= {1, 2}
    (s,) = recommend("falcon-7b", 512, 128, devices=[BANDWIDTH_2X], calibration="none").searches  # 71 heads
    assert set(s.points.tp.tolist()) == {1}
    (s,) = recommend("llama2-7b", 512, 128, devices=[BANDWIDTH_2X], max_gpus=2, calibration="none").searches
    assert set(s.points.tp.tolist()) == {1, 2}


# ---- exhaustive search ----------------------------------------------------------------------

def brute_force(model_name, hw, i, o, *, max_gpus, ttft_slo=None, tpot_slo=None):
    """Every (tp, pp, ep, batch) of the stated space, one scalar estimate at a time."""
    m = lr.load_model(model_name)

    def largest(tp, pp, ep=1):
        replicas = ep // tp if ep > tp else 1  # data-parallel attention: each replica its own batch
        per_replica = max_batch(m, hw, context=i + o / 2, weight_dtype="fp16", kv_dtype="fp16", tp=tp, pp=pp, ep=ep,
                                **GENERIC_POOL)
        return int(min(per_replica * replicas, 2048))

    tps = [t for t in (1, 2, 4, 8) if t <= max_gpus and t <= hw.max_devices and m.num_heads % t == 0]
    layouts = [(t, 1) for t in tps]
    if not any(largest(t, 1) for t in tps):
        layouts += [(t, p) for t in tps for p in (2, 4, 8, 16) if t * p <= max_gpus and p <= m.num_layers]
    feasible = {}
    for tp, pp in layouts:
        domain = min(hw.max_devices, max_gpus // pp)
        eps = [e for e in (1, 2, 4, 8) if m.num_experts % e == 0 and (tp % e == 0 or (e % tp == 0 and e <= domain))
               ] if m.is_moe else [1]
        for ep in eps:
            for b in batch_grid(largest(tp, pp, ep)):
                e = lr.estimate(m, hw, batch=int(b), input_len=i, output_len=o, tp=tp, pp=pp, ep=ep,
                                mode="continuous", calibration="none")
                ok = bool(e.memory.fits) and (ttft_slo is None or float(e.ttft_s) <= ttft_slo) and (
                    tpot_slo is None or float(e.tpot_s) <= tpot_slo)
                if ok:
                    cost = hw.price_per_hour_usd * max(tp, ep) * pp / (3600 * float(e.throughput_tok_s)) * 1e6
                    feasible[(tp, pp, ep, int(b))] = (cost, -float(e.throughput_per_gpu_tok_s))
    return feasible


@pytest.mark.parametrize("model,hw,i,o,max_gpus,slo", [
    ("mixtral-8x7b", round_device(id="MOE-BOX", interconnect={"kind": "NVLink", "bandwidth_gbps": 400,
                                                              "max_devices": 4}), 1024, 512, 4, {"tpot_slo": 0.03}),
    ("llama2-70b", round_device(id="PIPE-BOX", memory_gb=24, interconnect={"kind": "PCIe", "bandwidth_gbps": 64,
                                                                           "max_devices": 2}), 512, 256, 8, {}),
    ("llama2-13b", round_device(id="SLO-BOX"), 4096, 512, 8, {"ttft_slo": 0.5, "tpot_slo": 0.02}),
])
def test_the_search_is_exhaustive(model, hw, i, o, max_gpus, slo):
    expected = brute_force(model, hw, i, o, max_gpus=max_gpus, **slo)
    assert expected, "the brute force should find feasible configurations"
    r = recommend(model, i, o, devices=[hw], max_gpus=max_gpus, calibration="none", **slo)
    (s,) = r.searches
    ok = s.points.meets(slo.get("ttft_slo"), slo.get("tpot_slo"))
    found = {(int(s.points.tp[k]), int(s.points.pp[k]), int(s.points.ep[k]), int(s.points.batch[k]))
             for k in np.flatnonzero(ok)}
    assert found == set(expected)
    (c,) = r.ranking
    best = min(expected.values())
    assert (c.cost_per_million_tokens, -c.throughput_per_gpu_tok_s) == pytest.approx(best, rel=1e-9)
    assert expected[(c.tp, c.pp, c.ep, c.batch)] == pytest.approx(best, rel=1e-9)


def test_batch_grid_is_log_spaced_from_one_to_the_largest():
    assert batch_grid(0).size == 0
    assert batch_grid(1).tolist() == [1.0]
    for n in (2, 7, 100, 2048, 3000):
        g = batch_grid(n)
        assert g[0] == 1 and g[-1] == n and np.all(np.diff(g) > 0)
        assert np.all(g[1:] / g[:-1] <= 2.0)  # no gap wider than a doubling
        assert len(g) <= 4 * math.log2(n) + 2


# ---- SLOs ----------------------------------------------------------------------------------

def test_slos_are_met_and_tighter_slos_cost_more():
    loose = recommend("llama2-13b", 2048, 512, devices=PAIR, calibration="none")
    tight = recommend("llama2-13b", 2048, 512, devices=PAIR, ttft_slo=0.3, tpot_slo=0.015, calibration="none")
    for c in tight.ranking:
        assert c.ttft_s <= 0.3 and c.tpot_s <= 0.015
    cost = {c.device: c.cost_per_million_tokens for c in loose.ranking}
    for c in tight.ranking:
        assert c.cost_per_million_tokens >= cost[c.device] * (1 - 1e-12)


def test_impossible_slos_name_the_closest_configuration():
    r = recommend("llama2-13b", 2048, 512, devices=PAIR, tpot_slo=1e-4, calibration="none")
    assert r.ranking == []
    assert {e.device for e in r.excluded} == {"BW-2X", "FLOPS-2X"}
    for e in r.excluded:
        assert e.reason.startswith("misses the SLO") and "TPOT" in e.reason
        (s,) = [s for s in r.searches if s.device == e.device]
        assert e.closest.tpot_s == pytest.approx(float(s.points.tpot_s.min()))  # nothing nearer
        assert e.slo_miss == pytest.approx(e.closest.tpot_s / 1e-4 - 1)
    assert r.closest()[0].device == "BW-2X"  # decode at batch 1 is bandwidth-bound


# ---- Pareto --------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=40))
def test_frontier_mask_keeps_exactly_the_undominated_points(pts):
    x, y = np.array(pts, dtype=float).T
    mask = frontier_mask(x, y)
    for k in range(len(pts)):
        dominated = np.any((x >= x[k]) & (y >= y[k]) & ((x > x[k]) | (y > y[k])))
        if dominated:
            assert not mask[k]
        else:  # undominated: on the frontier, or an exact duplicate of a frontier point
            assert mask[k] or np.any(mask & (x == x[k]) & (y == y[k]))


def test_pareto_frontiers_per_device_and_overall():
    p = pareto("llama2-7b", 2048, 512, devices=PAIR, calibration="none")
    assert set(p.points) == {"BW-2X", "FLOPS-2X"}
    overall = p.overall_frontier()
    xs = [c.tokens_per_s_per_user for c in overall]
    ys = [c.throughput_per_gpu_tok_s for c in overall]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # a trade-off: faster per user, less per GPU
    for c in overall:  # every overall frontier point is on its own device's frontier
        assert any(f == c for f in p.frontier(c.device))
    d = p.to_dict()
    assert len(d["devices"]) == 2 and d["frontier"]
    json.dumps(d, allow_nan=False)


def test_pareto_drawings(tmp_path):
    from llmroofline.pareto_plot import pareto_html, pareto_png, recommendation_html

    p = pareto("llama2-7b", 1024, 256, devices=PAIR, calibration="none", tpot_slo=0.05)
    png = pareto_png(p, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = pareto_html(p)
    assert "per user (1 \\u002f TPOT)" in page and "throughput per GPU" in page  # plotly escapes "/"
    assert "frontier, all devices" in page
    rec = recommend("llama2-7b", 1024, 256, devices=PAIR, calibration="none")
    report = recommendation_html(rec)
    assert "BW-2X" in report
    assert ("Excluded devices" in report) == bool(rec.excluded)  # no empty table
    with pytest.raises(InputError):
        pareto_png(p, tmp_path / "missing" / "p.png")


# ---- command line --------------------------------------------------------------------------

BASE = ["--model", "llama2-7b", "--input", "1024", "--output", "256"]


@pytest.mark.parametrize("args,culprit", [
    (["--devices", "A100-SXM4-80GB,NO-SUCH-GPU"], "NO-SUCH-GPU"),
    (["--devices", "H20,,L20"], "empty name"),
    (["--price", "H20=-1"], "positive"),
    (["--price", "H20=0"], "positive"),
    (["--price", "H20=cheap"], "not a number"),
    (["--price", "H20"], "DEVICE=USD_PER_GPU_HOUR"),
    (["--price", "=1.5"], "DEVICE=USD_PER_GPU_HOUR"),
    (["--price", "NO-SUCH-GPU=1"], "NO-SUCH-GPU"),
    (["--price", "H20=nan"], "positive"),
    (["--ttft-slo", "-1"], "ttft_slo"),
    (["--tpot-slo", "0"], "tpot_slo"),
    (["--max-gpus", "0"], "max_gpus"),
    (["--weight-dtype", "fp3"], "weight_dtype"),
])
def test_bad_recommend_input_exits_2(args, culprit, capsys):
    assert main(["recommend", *BASE, "--devices", "H20,L20", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert culprit in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["recommend", "--model", "llama2-7b", "--input", "0", "--output", "256"],
    ["recommend", "--model", "llama2-7b", "--input", "many", "--output", "256"],
    ["recommend", "--model", "no-such-model", "--input", "1", "--output", "1"],
    ["recommend", "--model", "llama2-7b", "--output", "256"],
    ["pareto", *BASE, "--devices", "NO-SUCH-GPU"],
    ["pareto", *BASE, "--devices", "H20", "--out", "chart.jpg"],
    ["pareto", *BASE, "--devices", "H20", "--price", "H20=-3"],
])
def test_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_json_is_the_only_output(capsys):
    assert main(["recommend", *BASE, "--devices", "H20,RTX-4090", "--price", "H20=1.0", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {c["device"] for c in d["ranking"]} | {e["device"] for e in d["excluded"]} == {"H20", "RTX-4090"}
    (h20,) = [c for c in d["ranking"] if c["device"] == "H20"]
    assert h20["price_per_gpu_hour"] == 1.0


def test_cli_says_when_no_configuration_meets_the_slos(capsys):
    assert main(["recommend", *BASE, "--devices", "H20,L20", "--tpot-slo", "0.0001"]) == 0
    out = capsys.readouterr().out
    assert "No configuration meets the SLOs" in out and "Closest" in out
    assert main(["recommend", *BASE, "--devices", "H20,L20", "--tpot-slo", "0.0001", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["ranking"] == [] and all("closest" in e for e in d["excluded"])


def test_cli_pareto_writes_files(tmp_path, capsys):
    png, page = tmp_path / "p.png", tmp_path / "p.html"
    assert main(["pareto", *BASE, "--devices", "L20,RTX-4090", "--out", str(png), "--html", str(page),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert png.stat().st_size > 0 and page.stat().st_size > 0
    assert [x["device"] for x in d["devices"]] == ["L20", "RTX-4090"]
