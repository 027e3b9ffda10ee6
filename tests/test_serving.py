"""Requests at a rate (llmroofline.serving): closed forms, Little's law, limits, published rows."""

from __future__ import annotations

import csv
import io
import json
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.serving import serve
from llmroofline.serving.queueing import accepted_per_step, erlang_c, mg1_wait, wait_samples

from .conftest import REPO_ROOT

M8, M70, H100 = "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "H100-SXM5-80GB"


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


# ---- closed forms ---------------------------------------------------------------------------

def test_md1_closed_form():
    mu, lam = 4.0, 3.0  # deterministic service 0.25 s, rho = 0.75
    rho = lam / mu
    assert mg1_wait(lam, 1 / mu, 1 / mu**2) == pytest.approx(rho / (2 * mu * (1 - rho)))
    assert np.isinf(mg1_wait(5.0, 0.25, 0.0625))


def test_mm1_wait_tail_is_exponential():
    # M/M/1 (E[S^2] = 2/mu^2): Wq = rho/(mu - lam); P(W > t) = rho exp(-(mu - lam) t)
    mu, lam = 2.0, 1.0
    wq = mg1_wait(lam, 1 / mu, 2 / mu**2)
    assert wq == pytest.approx((lam / mu) / (mu - lam))
    u = np.linspace(0, 1, 200001)[:-1]
    w = wait_samples(lam / mu, wq, u)
    assert w.mean() == pytest.approx(wq, rel=1e-3)
    assert np.mean(w > 1.0) == pytest.approx(0.5 * np.exp(-1.0), abs=1e-3)


def test_erlang_c_limits():
    assert erlang_c(1, 0.3) == pytest.approx(0.3)  # one server: P(wait) = rho
    # two servers, A = 1: C = (A^2/2)/(1 - A/2) / (1 + A + (A^2/2)/(1 - A/2)) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_accepted_per_step_formula():
    for a in (0.0, 0.3, 0.8):
        for k in (1, 3):
            assert accepted_per_step(a, k) == pytest.approx((1 - a ** (k + 1)) / (1 - a))
    assert accepted_per_step(1.0, 3) == 4


# ---- the serving state -----------------------------------------------------------------------

def test_littles_law_by_construction():
    r = serve(M8, H100, [1, 4, 16], 1024, 256, input_dist="uniform:256:2048")
    assert np.allclose(r.concurrency, r.rate * r.e2e_s)
    # Sequences decoding per step = rate x mean decode time (steps x mean step time)
    decode_time = (r.details["lengths"]["output_mean"] - 1) * r.tpot_s
    assert np.allclose(r.decode_batch, r.rate * decode_time, rtol=1e-6)


def test_md1_limit_of_prefill_queue():
    """Fixed lengths: each prompt takes a fixed share of the step budget, so the prefill queue is
    M/D/1 and its mean wait is rho^2 / (2 rate (1 - rho)) (rho/(2 mu (1-rho)) with mu = rate/rho)."""
    rates = np.array([0.5, 1.0, 2.0])
    r = serve(M8, H100, rates, 4096, 64, chunk=2048)
    rho, wq = r.details["prefill_utilization"], r.details["prefill_wait_s"]
    assert np.all(rho > 0.05)
    assert np.allclose(wq, rho**2 / (2 * rates * (1 - rho)))


def test_ttft_rises_with_rate_and_diverges_at_capacity():
    cap = serve(M8, H100, 1.0, 467, 256).capacity_req_s
    rates = cap * np.array([0.05, 0.3, 0.6, 0.9, 0.99, 0.9999])
    r = serve(M8, H100, rates, 467, 256)
    p90 = r.percentiles["ttft_p90_s"]
    assert np.all(np.diff(p90) >= -1e-12) and np.all(np.diff(r.ttft_s) >= -1e-12)
    assert p90[-1] > 5 * p90[0]
    sat = serve(M8, H100, [cap * 0.5, cap, cap * 2], 467, 256)
    assert sat.saturated.tolist() == [False, True, True]
    d = sat.to_dict()
    assert d["ttft_p90_s"][1] is None and d["tpot_p90_s"][2] is None and d["e2e_p90_s"][1] is None
    assert any("capacity" in w for w in d["warnings"])


def test_rate_sweep_is_fast():
    serve(M8, H100, 1.0, 467, 256)  # load catalogs
    t = time.perf_counter()
    r = serve(M8, H100, np.linspace(0.5, 40, 32), 467, 256)
    assert time.perf_counter() - t < 1.0
    assert r.ttft_s.shape == (32,)


# Published online-serving rows (TensorRT-LLM 0.14 on Triton, data/measured-public.csv x061-x070):
# mean TTFT and mean ITL at a Poisson request rate. Tolerance 20%: docs/serving.md states the errors.
def _published_rows():
    with open(REPO_ROOT / "data" / "measured-public.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["id"] in {f"x0{n}" for n in range(61, 71)}]
    return [pytest.param(r, id=r["id"]) for r in rows]


@pytest.mark.parametrize("row", _published_rows())
def test_published_online_serving(row):
    qps = float(row["notes"].split("QPS ")[1].split()[0])
    r = serve(row["model"], row["hardware"], qps, int(row["input_len"]), int(row["output_len"]), tp=int(row["tp"]),
              weight_dtype="bf16", kv_dtype="bf16", runtime="trtllm@0.14")
    got = (r.ttft_s if row["metric"] == "ttft_ms" else r.tpot_s)[0] * 1e3
    assert got == pytest.approx(float(row["value"]), rel=0.2)
    # The doc's concurrency, derived by Little's law from its own numbers, is the batch column.
    assert r.concurrency[0] == pytest.approx(float(row["batch"]), rel=0.25)


# ---- lengths, chunking, prefix caching -----------------------------------------------------------

def test_length_distributions_follow_means_and_tails():
    fixed = serve(M8, H100, 2.0, 2048, 256)
    logn = serve(M8, H100, 2.0, 2048, 256, input_dist="lognormal:2048:1")
    assert logn.details["lengths"]["input_mean"] == pytest.approx(2048, rel=0.05)
    assert logn.percentiles["ttft_p99_s"][0] > 2 * fixed.percentiles["ttft_p99_s"][0]
    uni = serve(M8, H100, 2.0, 512, 100, output_dist="uniform:50:150")
    assert uni.details["lengths"]["output_mean"] == pytest.approx(100, rel=0.03)
    assert uni.percentiles["e2e_p90_s"][0] > uni.e2e_s[0]


def test_trace_file(tmp_path: Path):
    good = tmp_path / "t.csv"
    good.write_text("input_len,output_len\n100,50\n300,150\n")
    r = serve(M8, H100, 1.0, lengths=good)
    assert r.details["lengths"]["input_mean"] == pytest.approx(200, rel=0.05)
    bad = tmp_path / "bad.csv"
    bad.write_text("input_len,output_len\n100,50\n300,x\n")
    with pytest.raises(InputError, match="line 3"):
        serve(M8, H100, 1.0, lengths=bad)
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--rate", "1", "--lengths", str(bad), "--json")
    assert rc == 2 and "line 3" in err and len(err.strip().splitlines()) == 1


def test_prefix_hit_half_roughly_halves_prefill():
    full = serve(M8, H100, 0.05, 8192, 64)
    half = serve(M8, H100, 0.05, 8192, 64, prefix_hit=0.5)
    assert 0.45 < half.ttft_s[0] / full.ttft_s[0] < 0.62


def test_chunk_trades_ttft_for_smooth_tokens():
    small = serve(M8, H100, 2.0, 8192, 256, chunk=512)
    large = serve(M8, H100, 2.0, 8192, 256, chunk=8192)
    assert small.ttft_s[0] > large.ttft_s[0]  # the prompt takes 16 steps
    assert small.percentiles["itl_p99_s"][0] < 0.5 * large.percentiles["itl_p99_s"][0]


# ---- command line -----------------------------------------------------------------------------

def test_cli_rate_json():
    rc, out, err = run_cli("estimate", "-m", M8, "-d", H100, "--rate", "1,2,1000", "--json")
    assert rc == 0, err
    d = json.loads(out)
    for key in ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p90_s", "e2e_p90_s", "concurrency", "capacity_req_s"):
        assert key in d
    assert d["saturated"] == [False, False, True] and d["ttft_p90_s"][2] is None
    rc, out, _ = run_cli("estimate", "-m", M8, "-d", H100, "--rate", "2", "--json")
    assert isinstance(json.loads(out)["ttft_p90_s"], float)


@pytest.mark.parametrize("args,word", [
    (["--rate", "0"], "rate"), (["--rate", "-1"], "rate"), (["--rate", "a,b"], "rate"),
    (["--spec", "mtp:2", "--acceptance", "0.5"], "--rate"),
    (["--rate", "1", "--spec", "mtp:2", "--acceptance", "1.5"], "acceptance"),
    (["--rate", "1", "--spec", "mtp:2"], "acceptance"),
    (["--rate", "1", "--spec", "foo:2", "--acceptance", "0.5"], "spec"),
    (["--rate", "1", "--prefix-hit", "1.2"], "prefix_hit"),
    (["--rate", "1", "--input-dist", "uniform:9:3"], "input distribution"),
    (["--rate", "1", "--mode", "static"], "--mode"),
    (["--rate", "1", "--chunk", "0"], "chunk"),
])
def test_cli_bad_serving_input(args, word):
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, *args)
    assert rc == 2, err
    assert word.lower() in err.lower() and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---- speculative decoding ------------------------------------------------------------------------

def _spec_stage(kind: str, draft: str | None, k: int):
    from llmroofline.efficiency import load_calibration
    from llmroofline.estimate import make_deployment
    from llmroofline.serving.api import _stage

    cal = load_calibration("default")
    return _stage(make_deployment(M8, H100), cal, cal.runtime("generic"), kind, draft, k)


def test_spec_gain_at_batch_one_matches_accepted_tokens():
    """At batch 1 decode reads the weights once whether it checks 1 or k+1 tokens: the gain is the
    expected accepted tokens per step, less the draft's cost (one layer per MTP token)."""
    from llmroofline.serving.api import spec_speedup

    a, k = 0.7, 3
    e = (1 - a ** (k + 1)) / (1 - a)
    gain = spec_speedup(_spec_stage("mtp", None, k), np.array([1.0]), 1500.0, e)[0]
    assert gain == pytest.approx(e, rel=0.15) and gain < e
    # serve() at a trickle of requests shows the same gain in its TPOT
    plain = serve(M8, H100, 0.01, 1024, 256)
    spec = serve(M8, H100, 0.01, 1024, 256, spec=f"mtp:{k}", acceptance=a)
    assert plain.tpot_s[0] / spec.tpot_s[0] == pytest.approx(spec.details["spec"]["decode_speedup"][0], rel=0.02)
    assert spec.details["spec"]["accepted_per_step"] == pytest.approx(e)


def test_spec_gain_shrinks_as_decode_turns_compute_bound():
    from llmroofline.serving.api import spec_speedup

    for kind, draft in (("mtp", None), ("draft", "llama3.2-1b")):
        g = spec_speedup(_spec_stage(kind, draft, 3), np.array([1.0, 64, 1024, 4096]), 128.0, 2.533)
        assert np.all(np.diff(g) < 0), (kind, g)
        assert g[-1] < 0.6 * g[0]
    # a draft model costs more than prediction heads
    assert spec_speedup(_spec_stage("draft", "llama3.2-1b", 3), np.array([1.0]), 1500.0, 2.533)[0] < \
        spec_speedup(_spec_stage("mtp", None, 3), np.array([1.0]), 1500.0, 2.533)[0]


# ---- disaggregated prefill / decode -------------------------------------------------------------

def test_disaggregated_tpot_free_of_prefill_interference():
    agg = serve(M8, H100, [1.0, 2.0], 8192, 256)
    dis = serve(M8, H100, [1.0, 2.0], 8192, 256, prefill_hardware=H100, prefill_count=2)
    assert np.all(dis.tpot_s < 0.9 * agg.tpot_s)  # 8k-token prompts interleaved in decode steps cost >10%
    # decode steps carry no prompt: TPOT is the decode-only step at the operating batch, exactly
    from llmroofline.efficiency import load_calibration
    from llmroofline.estimate import make_deployment
    from llmroofline.serving.steady import Stage

    cal = load_calibration("default")
    dep = make_deployment(M8, H100)
    stage = Stage(dep, cal.for_device(dep.hardware, cal.runtime("generic")))
    step = stage.step(dis.decode_batch, 8192 + 128, np.zeros(2), 1.0, 0.0)
    assert np.allclose(dis.tpot_s, step, rtol=1e-6)
    assert np.all(np.asarray(dis.percentiles["tpot_p99_s"]) == pytest.approx(dis.tpot_s))
    d = dis.to_dict()
    assert d["prefill"]["count"] == 2 and d["decode"]["hardware"] == H100 and d["gpus"] == 3


def test_kv_transfer_by_hand():
    from llmroofline.model import load_model

    r = serve(M8, "H20", 1.0, 4096, 128, prefill_hardware="H800-SXM5-80GB", prefill_tp=2)
    kv_bytes = 4096 * load_model(M8).kv_cache_bytes_per_token("fp16")
    # different devices: NICs between nodes, the catalog's 400 Gb/s per GPU (H20: RoCE, H800:
    # InfiniBand NDR) = 50 GB/s over the fewer GPUs (1 decode GPU)
    assert r.details["kv_transfer_s"] == pytest.approx(kv_bytes / 50e9)
    assert "400 Gb/s" in r.details["kv_link"] and not any("assumed" in w and "NIC" in w for w in r.warnings)
    # A100 SXM's NIC is 200 Gb/s HDR (DGX A100): the slower side sets the rate, 25 GB/s
    a100 = serve(M8, "H20", 1.0, 4096, 128, prefill_hardware="A100-SXM4-80GB", prefill_tp=2)
    assert a100.details["kv_transfer_s"] == pytest.approx(kv_bytes / 25e9)
    # RTX 4090 states no network: the default 100 Gb/s = 12.5 GB/s, named in the warnings
    rtx = serve(M8, "H20", 1.0, 4096, 128, prefill_hardware="RTX-4090", prefill_tp=1)
    assert rtx.details["kv_transfer_s"] == pytest.approx(kv_bytes / 12.5e9)
    assert any("assumed 100 Gb/s" in w and "RTX-4090" in w for w in rtx.warnings)
    same = serve(M8, H100, 1.0, 4096, 128, prefill_hardware=H100)
    assert "NVLink" in same.details["kv_link"]
    assert same.details["kv_transfer_s"] < r.details["kv_transfer_s"]


# ---- fleet sizing -------------------------------------------------------------------------------

def test_fleet_sizing_meets_targets_with_whole_devices():
    from llmroofline.serving.fleet import size_fleet

    out = size_fleet(M8, 1024, 256, 40.0, "H100-SXM5-80GB,L40S", ttft_slo=1.0, tpot_slo=0.05, disaggregated=True)
    ranking = out["ranking"]
    assert ranking and any(e["disaggregated"] for e in ranking) and any(not e["disaggregated"] for e in ranking)
    costs = [e["cost_per_hour"] for e in ranking]
    assert costs == sorted(costs)
    for e in ranking:
        assert isinstance(e["devices_needed"], int) and e["devices_needed"] >= 1
        assert e["ttft_p90_s"] <= 1.0 and e["tpot_p90_s"] <= 0.05
        assert e["cost_per_million_tokens"] == pytest.approx(e["cost_per_hour"] / (40 * 256 * 3600) * 1e6)
        if e["disaggregated"]:
            assert e["devices_needed"] == e["prefill"]["count"] * e["prefill"]["tp"] + e["decode"]["count"] * e["decode"]["tp"]
        else:
            assert e["devices_needed"] == e["replicas"] * e["tp"]
            # one replica fewer would carry more than the highest rate that met the targets
            fewer = serve(M8, e["device"], 40.0 / max(e["replicas"] - 1, 1), 1024, 256, tp=e["tp"])
            assert e["replicas"] == 1 or fewer.saturated[0] or fewer.percentiles["ttft_p90_s"][0] > 1.0 or \
                fewer.percentiles["tpot_p90_s"][0] > 0.05


def test_a_fleet_of_a_model_that_needs_expert_parallelism():
    """DeepSeek-V3 fits in no tensor-parallel layout of one 8 x H100 node; its fleet is sized with
    the wide expert-parallel layout recommend finds (tp 1, ep = dp), and the whole fleet checks out."""
    from llmroofline.serving.fleet import layout_text, size_fleet

    out = size_fleet("deepseek-v3", 2048, 512, 20.0, "H100-SXM5-80GB", tpot_slo=0.05)
    assert not out["excluded"]
    (e,) = out["ranking"]
    assert (e["tp"], e["pp"]) == (1, 1) and e["ep"] == e["dp"] > 8  # beyond one node
    assert e["gpus"] == e["tp"] * e["pp"] * e["dp"] and e["devices_needed"] == e["replicas"] * e["gpus"]
    assert e["tpot_p90_s"] <= 0.05
    assert layout_text(e) == f"{e['replicas']}x tp1 ep{e['ep']} dp{e['dp']}"
    check = serve("deepseek-v3", "H100-SXM5-80GB", 20.0, 2048, 512, tp=1, ep=e["ep"], dp=e["dp"],
                  replicas=e["replicas"])
    assert check.percentiles["tpot_p90_s"][0] == pytest.approx(e["tpot_p90_s"])


def test_disaggregated_decode_with_expert_parallelism():
    """Prefill instances stay tensor-parallel; a decode side may take the expert-parallel layout."""
    from llmroofline.serving.fleet import layout_text, size_fleet

    out = size_fleet("deepseek-v3", 2048, 512, 20.0, "H100-SXM5-80GB,B200", ttft_slo=2.0, tpot_slo=0.05,
                     disaggregated=True)
    (e,) = [x for x in out["ranking"] if x["disaggregated"] and x["device"] == "H100-SXM5-80GB"]
    p, d = e["prefill"], e["decode"]
    assert p["device"] == "B200" and d["ep"] == d["dp"] > 8 and d["tp"] == 1  # H100s hold it only spread wide
    assert e["devices_needed"] == p["count"] * p["tp"] + d["count"] * d["tp"] * d["pp"] * d["dp"]
    assert e["ttft_p90_s"] <= 2.0 and e["tpot_p90_s"] <= 0.05
    assert layout_text(e) == f"prefill {p['count']}x B200 tp{p['tp']} + decode {d['count']}x tp1 ep{d['ep']} dp{d['dp']}"


def test_fleet_layouts_ruled_out_by_capacity_could_not_win(monkeypatch):
    """size_fleet skips the sweep of a layout whose capacity alone prices it above a fleet already
    sized; sizing every layout by brute force picks the same fleet per device."""
    from llmroofline.efficiency import load_calibration
    from llmroofline.model import load_model
    from llmroofline.recommend import resolve_devices, tp_choices
    from llmroofline.serving import fleet

    devices = "H100-SXM5-80GB,L40S,A100-SXM4-80GB"
    swept = []
    sweep = fleet._aggregated
    monkeypatch.setattr(fleet, "_aggregated", lambda *a, **k: swept.append(a[1:3]) or sweep(*a, **k))
    out = fleet.size_fleet("mixtral-8x7b", 2048, 512, 20.0, devices, tpot_slo=0.05)
    monkeypatch.undo()
    first = fleet._first_layouts("mixtral-8x7b", 2048, 512, resolve_devices(devices), ttft_slo=None, tpot_slo=0.05,
                                 max_gpus=None, prices=None, weight_dtype=None, kv_dtype=None, calibration="default",
                                 runtime=None, serving={})
    common = dict(model="mixtral-8x7b", input_len=2048, output_len=512, weight_dtype=None, kv_dtype=None,
                  calibration=load_calibration("default"), runtime=None)
    m = load_model("mixtral-8x7b")
    counted = 0
    for hw in resolve_devices(devices):
        layouts = [(tp, 1, 1, 1) for tp in tp_choices(m, hw, 8)]
        layouts += [first[hw.id]] if first[hw.id] not in layouts else []
        fleets = []
        for i, layout in enumerate(layouts):
            try:
                cap = fleet._capacity(common, hw.id, layout)
            except InputError:
                continue
            e = fleet._aggregated(common, hw.id, layout, cap, 20.0, hw.price_per_hour_usd, None, 0.05, {})
            if isinstance(e, fleet.FleetEntry):
                fleets.append((e.cost_per_hour, i, e))
        (entry,) = [e for e in out["ranking"] if e["device"] == hw.id]
        assert entry == min(fleets, key=lambda x: x[:2])[2].to_dict()
        counted += len(fleets)
    assert len(swept) < counted  # some layouts were ruled out without their sweep


def test_cli_recommend_rate():
    rc, out, err = run_cli("recommend", "-m", M8, "-i", "512", "-o", "128", "--rate", "10", "--devices", "H100",
                           "--tpot-slo", "0.03", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["ranking"][0]["devices_needed"] >= 1 and d["ranking"][0]["disaggregated"] is False
    rc, _, err = run_cli("recommend", "-m", M8, "-i", "512", "-o", "128", "--disaggregated")
    assert rc == 2 and "--rate" in err
    rc, _, err = run_cli("recommend", "-m", M8, "-i", "512", "-o", "128", "--rate", "0", "--devices", "H100")
    assert rc == 2 and "rate" in err


# ---- app ------------------------------------------------------------------------------------

def test_serving_tab_view():
    pytest.importorskip("plotly")
    from llmroofline import load_hardware, load_model
    from llmroofline.app import serving_view

    v = serving_view(load_model(M8), load_hardware(H100), ttft_slo=1.0, tpot_slo=0.02)
    assert len(v.rows) == 32 and v.rows[-1][-1] is True  # the sweep runs past capacity
    assert "meeting the p90 targets" in v.summary[1]
    assert any("interval" in line for line in v.summary)
    names = {t.name for t in v.figures[0].data}
    assert {"ttft p90", "tpot p90"} <= names
    shapes = [s for s in v.figures[0].layout.shapes]
    assert len(shapes) >= 3  # two SLO lines and the capacity
    d = serving_view(load_model(M8), load_hardware("H20"), prefill_hardware=load_hardware(H100), prefill_count=2)
    assert "KV cache moves" in " ".join(d.summary)


@pytest.mark.parametrize("content,word", [
    ("", "no rows"), ("input_len,output_len\n0,5\n", "line 2"), ("1,2\n3\n", "line 2"),
    ("5,5\n1e9,1\n", "line 2"), ("5,5\nnan,1\n", "line 2"),
])
def test_trace_file_errors(tmp_path: Path, content, word):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(InputError, match=word):
        serve(M8, H100, 1.0, lengths=p)


def test_trace_file_not_a_regular_file(tmp_path: Path):
    with pytest.raises(InputError):
        serve(M8, H100, 1.0, lengths="/dev/zero")
    with pytest.raises(InputError):
        serve(M8, H100, 1.0, lengths=tmp_path / "missing.csv")


@pytest.mark.parametrize("rate", ["nan", "inf", "1e400", "", "1,,2", "0.5,-1"])
def test_bad_rates(rate):
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--rate", rate)
    assert rc == 2 and "rate" in err and len(err.strip().splitlines()) == 1


def test_top_level_api():
    import llmroofline as lr

    s = lr.serve(M8, H100, [1, 2])
    assert s.ttft_s.shape == (2,) and s.interval["level"] == 0.8


def test_chunk_defaults_to_the_runtime():
    from llmroofline.runtime import load_runtime

    for rt in ("vllm", "trtllm"):
        r = serve(M8, H100, 1.0, runtime=rt)
        assert r.details["chunk_tokens"] == load_runtime(rt).chunk_tokens


def test_kv_memory_follows_the_output_distribution():
    """Sequences decode for their own number of steps: long outputs are in the batch longer, so
    the KV each decoding sequence holds is the step-weighted mean, above the plain mean."""
    fixed = serve(M8, H100, 2.0, 1024, 500)
    spread = serve(M8, H100, 2.0, 1024, 500, output_dist="uniform:1:999")
    assert spread.details["batch_limit"] < fixed.details["batch_limit"]
    per_seq = spread.details["memory"]["kv_cache_gb"] / spread.decode_batch
    assert np.all(per_seq > fixed.details["memory"]["kv_cache_gb"] / fixed.decode_batch)


def test_context_window_warning():
    r = serve(M8, H100, 0.1, 1024, 128, input_dist="lognormal:60000:1")
    assert any("trained for" in w for w in r.warnings)


try:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(share=st.floats(0.01, 0.95), input_len=st.integers(16, 16384), output_len=st.integers(2, 2048),
           hit=st.sampled_from([0.0, 0.3, 0.9]))
    def test_property_littles_law_and_order(share, input_len, output_len, hit):
        cap = serve(M8, H100, 1.0, input_len, output_len, prefix_hit=hit).capacity_req_s
        r = serve(M8, H100, [share * cap, min(share * 1.05, 0.99) * cap], input_len, output_len, prefix_hit=hit)
        assert not r.saturated.any()
        assert np.allclose(r.concurrency, r.rate * r.e2e_s)
        p = r.percentiles
        assert np.all(p["ttft_p50_s"] <= p["ttft_p90_s"] + 1e-12) and np.all(p["ttft_p90_s"] <= p["ttft_p99_s"] + 1e-12)
        assert np.all(r.ttft_s > 0) and np.all(r.tpot_s > 0)
        assert r.ttft_s[1] >= r.ttft_s[0] - 1e-12 and r.tpot_s[1] >= r.tpot_s[0] - 1e-12
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


def test_replicas_share_the_rate_and_single_token_outputs():
    two = serve(M8, H100, [2.0, 20.0], 512, 128, replicas=2)
    one = serve(M8, H100, [1.0, 10.0], 512, 128)
    assert np.allclose(two.ttft_s, one.ttft_s) and np.allclose(two.tpot_s, one.tpot_s)
    assert two.capacity_req_s == pytest.approx(2 * one.capacity_req_s) and two.gpus == 2
    first_only = serve(M8, H100, [1.0, 10.0], 512, 1)
    assert np.all(first_only.tpot_s == 0) and np.allclose(first_only.e2e_s, first_only.ttft_s)


def test_serve_at_concurrency_keeps_that_many_in_flight():
    from llmroofline.serving import serve_at_concurrency

    r = serve_at_concurrency(M8, H100, [4, 64], input_len=467, output_len=256)
    assert np.allclose(r.concurrency, [4, 64], rtol=0.02)
    assert np.allclose(r.concurrency, r.rate * r.e2e_s)
    rc, out, err = run_cli("estimate", "-m", M8, "-d", H100, "--concurrency", "16", "--json")
    assert rc == 0, err
    assert json.loads(out)["concurrency"] == pytest.approx(16, rel=0.02)
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--concurrency", "16", "--rate", "2")
    assert rc == 2 and "not both" in err
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--concurrency", "0.5")
    assert rc == 2 and "concurrency" in err


# ---- closed-loop clients ---------------------------------------------------------------------------

def test_closed_wave_steps_by_hand():
    from llmroofline.serving.closed import wave_steps

    assert wave_steps(4, 3, 4).tolist() == [1, 2, 3, 3]  # tokens 3, 6, 9, 12 of a 4-token budget
    assert wave_steps(64, 1024, 8192).tolist() == [(k + 7) // 8 for k in range(1, 65)]
    assert wave_steps(2, 5000, 2048).tolist() == [3, 5]  # ceil(5000/2048), ceil(10000/2048)


def test_closed_loop_one_prompt_per_step():
    """Budget = one prompt: the k-th prompt's first token comes after k steps of one prompt each,
    so TTFT_k = k t1 (t1: one client's TTFT) and the mean is (N + 1)/2 t1."""
    from llmroofline.serving import serve_closed

    n, i = 16, 1024
    t1 = serve_closed(M8, H100, 1, i, 128, chunk=i).ttft_s[0]
    r = serve_closed(M8, H100, n, i, 128, chunk=i)
    assert r.ttft_s[0] == pytest.approx((n + 1) / 2 * t1, rel=1e-9)
    k = np.arange(1, n + 1) * t1
    for p in (50, 90, 99):
        assert r.percentiles[f"ttft_p{p}_s"][0] == pytest.approx(np.percentile(k, p), rel=1e-9)
    assert r.details["prefill_steps"] == [n]


def test_closed_loop_single_step_is_static_batch_and_littles_law():
    """A budget that holds the whole wave: one prefill step of N prompts, then N decode together,
    which is a static batch; N users each finishing a request every wave keep N in flight."""
    from llmroofline.estimate import estimate
    from llmroofline.serving import serve_closed

    r = serve_closed(M8, H100, [4, 8], 512, 128, chunk=8 * 512)
    s = estimate(M8, H100, batch=np.array([4, 8]), input_len=512, output_len=128)
    assert np.allclose(r.ttft_s, s.ttft_s, rtol=1e-9) and np.allclose(r.e2e_s, s.e2e_s, rtol=1e-9)
    assert np.allclose(r.rate * r.e2e_s, [4, 8]) and np.allclose(r.concurrency, [4, 8])
    assert np.allclose(r.throughput_tok_s, r.rate * 128)
    # TPOT_k = (E2E - TTFT_k)/(O - 1) and all requests of a wave end together
    assert np.allclose(r.tpot_s, (r.e2e_s - r.ttft_s) / 127)


def test_closed_loop_ttft_grows_with_clients_and_shrinks_with_budget():
    from llmroofline.serving import serve_closed

    r = serve_closed(M8, H100, [1, 8, 32, 64], 1024, 256, chunk=2048)
    assert np.all(np.diff(r.ttft_s) > 0) and np.all(np.diff(r.rate) > 0)
    assert np.all(r.percentiles["ttft_p99_s"] >= r.percentiles["ttft_p50_s"])
    wide = serve_closed(M8, H100, 64, 1024, 256, chunk=16384)
    assert wide.details["prefill_steps"] == [4] and r.details["prefill_steps"][-1] == 32


def test_cli_closed_loop():
    rc, out, err = run_cli("estimate", "-m", M8, "-d", H100, "--mode", "closed", "--batch", "1,16", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["mode"] == "closed" and d["clients"] == [1, 16] and d["concurrency"] == [1, 16]
    assert d["ttft_p90_s"][1] > d["ttft_p90_s"][0]
    rc, out, err = run_cli("estimate", "-m", M8, "-d", H100, "--mode", "closed", "--batch", "8")
    assert rc == 0 and "closed-loop" in out
    for args, word in ((["--batch", "max"], "clients"), (["--batch", "8", "--spec", "mtp:2"],
                                                          "--spec"), (["--batch", "0"], "clients"),
                       (["--batch", "8", "--rate", "1"], "--mode"), (["--batch", "8", "--output", "1"], "output_len")):
        rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--mode", "closed", *args)
        assert rc == 2 and word in err and len(err.strip().splitlines()) == 1, err


# ---- the request-rate view -------------------------------------------------------------------------

def test_rate_view_staircase_by_hand():
    from llmroofline.serving.fleet import devices_needed, fleet_cost_per_million

    agg = {"sides": [{"gpus": 2, "limit_req_s": 3.0, "usd_per_gpu_hour": 1.5}]}
    assert devices_needed(agg, [1, 3, 3.5, 9]).tolist() == [2, 2, 4, 6]
    # 6 req/s x 100 tokens = 2.16e6 tokens per hour on 4 GPUs at $1.5: $6/h -> $2.78 per million
    assert fleet_cost_per_million(agg, 6.0, 100) == pytest.approx(6 / 2.16)
    disagg = {"sides": [{"gpus": 1, "limit_req_s": 2.0, "usd_per_gpu_hour": 1.0},
                        {"gpus": 4, "limit_req_s": 10.0, "usd_per_gpu_hour": 2.0}]}
    assert devices_needed(disagg, [5.0]).tolist() == [3 + 4]


def test_cli_rate_view_png_and_html(tmp_path: Path):
    png, page, report = tmp_path / "rate.png", tmp_path / "rate.html", tmp_path / "fleet.html"
    args = ("--model", M8, "--input", "1024", "--output", "256", "--rate", "20", "--devices", "H100,L40S",
            "--ttft-slo", "1", "--tpot-slo", "0.05")
    rc, out, err = run_cli("pareto", *args, "--out", png, "--html", page)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    text = page.read_text(encoding="utf-8")
    assert "Fleet: devices needed" in text and "One replica" in text and "H100-SXM5-80GB tp1" in text
    rc, _, err = run_cli("pareto", *args, "--out", png)
    assert rc == 2 and "--force" in err
    rc, out, err = run_cli("recommend", *args, "--html", report, "--json")
    assert rc == 0, err
    assert "curves" not in json.loads(out) and "Fleets, cheapest first" in report.read_text(encoding="utf-8")
    rc, _, err = run_cli("pareto", "--model", M8, "--input", "1024", "--output", "256", "--disaggregated")
    assert rc == 2 and "--rate" in err


def test_cli_rate_html_report(tmp_path: Path):
    page = tmp_path / "serving.html"
    args = ("estimate", "-m", M8, "-d", H100, "--rate", "2,8", "--ttft-slo", "0.2", "--tpot-slo", "0.0065")
    rc, out, err = run_cli(*args, "--html", page, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["meets_slo"] == [True, False]  # TPOT p90 near 6.1 ms at 2 req/s, 7.1 ms at 8
    assert d["tpot_p90_s"][0] <= 0.0065 < d["tpot_p90_s"][1]
    text = page.read_text(encoding="utf-8")
    for words in ("latency against request rate", "TTFT SLO 0.2 s", "TPOT SLO 6.5 ms", "At the rates asked for",
                  "Rate sweep", "ttft p90"):
        assert words in text
    rc, _, err = run_cli(*args, "--html", page)
    assert rc == 2 and "--force" in err
    rc, _, err = run_cli(*args, "--html", page, "--force")
    assert rc == 0, err
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--ttft-slo", "1")
    assert rc == 2 and "--rate" in err
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--mode", "closed", "--batch", "8", "--html", page,
                         "--force")
    assert rc == 2 and "--json" in err


def test_cli_csv_serving_columns(tmp_path: Path):
    """--from-csv rows in mode rate (a `rate` or `concurrency` column) or closed give the same
    answers as the options; serving columns on other modes, or a rate without one, name the row's problem."""
    from llmroofline.serving import serve, serve_closed

    p = tmp_path / "w.csv"
    p.write_text("model,hardware,mode,batch,input_len,output_len,rate,chunk,prefix_hit\n"
                 f"{M8},{H100},,,512,128,4,,\n"
                 f"{M8},{H100},rate,,1024,128,8,2048,0.5\n"
                 f"{M8},{H100},closed,16,1024,128,,2048,\n"
                 f"{M8},{H100},static,8,512,128,4,,\n"
                 f"{M8},{H100},rate,,512,128,,,\n"
                 f"{M8},{H100},closed,16,1024,128,3,,\n")
    rc, out, err = run_cli("estimate", "--from-csv", p, "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert rows[0]["mode"] == "rate" and rows[0]["ttft_p90_s"] == pytest.approx(
        serve(M8, H100, 4, 512, 128).percentiles["ttft_p90_s"][0])
    assert rows[1]["tpot_s"] == pytest.approx(serve(M8, H100, 8, 1024, 128, chunk=2048, prefix_hit=0.5).tpot_s[0])
    assert rows[2]["mode"] == "closed" and rows[2]["ttft_s"] == pytest.approx(
        serve_closed(M8, H100, 16, 1024, 128, chunk=2048).ttft_s[0])
    assert "mode rate or closed" in rows[3]["error"]
    assert "'rate'" in rows[4]["error"] and "mode closed" in rows[5]["error"]


def test_closed_loop_issue_case_as_documented():
    """The DeepSeek-R1 case of issue 12 (measured mean TTFT 423 ms) as docs/serving.md reports it:
    the closed-loop model's mean TTFT and its error are what the documentation states."""
    from llmroofline.serving import serve_closed

    r = serve_closed("deepseek-ai/DeepSeek-R1", "H200-SXM-141GB", 64, 1024, 1024, tp=8)
    assert r.details["prefill_steps"] == [8]
    doc = (REPO_ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    assert f"{r.ttft_s[0] * 1e3:,.0f}" in doc and f"+{(r.ttft_s[0] / 0.423 - 1) * 100:.0f}%" in doc


def test_cli_unknown_mode_lists_every_mode():
    rc, _, err = run_cli("estimate", "-m", M8, "-d", H100, "--mode", "foo")
    assert rc == 2 and "rate, closed" in err and len(err.strip().splitlines()) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(1, 30), st.floats(0, 100), st.integers(0, 2**32 - 1))
def test_percentiles_by_column_are_numpys(rows, cols, p, seed):
    """The vectorized nan-percentile gives np.nanpercentile's values exactly, NaN columns included."""
    from llmroofline.serving.api import nan_percentile_by_column

    rng = np.random.default_rng(seed)
    a = np.round(rng.lognormal(size=(rows, cols)), int(rng.integers(0, 4)))  # ties too
    a[rng.random((rows, cols)) < rng.choice([0.0, 0.1, 1.0])] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        np.testing.assert_array_equal(nan_percentile_by_column(a, p), np.nanpercentile(a, p, axis=0))
        several = [50, 90, 99, p]  # in one call: one partition for all of them, the same values
        np.testing.assert_array_equal(nan_percentile_by_column(a, several), np.nanpercentile(a, several, axis=0))
        np.testing.assert_array_equal(np.percentile(a, several, axis=0)[1], np.percentile(a, 90, axis=0))
