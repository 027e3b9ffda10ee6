"""Parallelism from every interface: tp x dp x pp devices, expert parallelism (also wide, beyond one
scale-up domain), MoE load imbalance and redundant experts. Numbers derived by hand."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.efficiency import load_calibration
from llmroofline.estimate import pass_time, resolve_parallelism
from llmroofline.memory import weights_per_device
from llmroofline.moe_balance import hottest_device_factor, routing_skew
from llmroofline.operators import AttentionGroup

V3 = "deepseek-v3"  # 256 routed experts, top-8, hidden 7168, expert width 2048, 58 MoE layers of 61


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the load-imbalance rule (moe_balance.py) --------------------------------------------------

def test_the_default_imbalance_reproduces_the_published_figures():
    # TensorRT-LLM's wide-EP guide, DeepSeek-R1 on EP 32: the hottest rank gets 1.56x more than the mean.
    assert routing_skew(256, 32) == pytest.approx(2.56, abs=1e-12)
    # EP 8 of 256: spread = (8/256 · ln 8) / (32/256 · ln 32) = (3/32) / (5/8) = 3/20 (ln 8 = 3 ln 2,
    # ln 32 = 5 ln 2), so the excess is 1.56 · sqrt(0.15) = 0.6042.
    assert routing_skew(256, 8) == pytest.approx(1 + 1.56 * math.sqrt(0.15), rel=1e-12)
    # With 32 redundant experts on EP 36 the guide measures an excess of 0.115; the rule gives
    # 1.56 · sqrt(36/32 · ln 36 / ln 32) · exp(-3 · 32/36) = 1.6825 · 0.06948 = 0.1169.
    assert hottest_device_factor(256, 36, redundant_experts=32) - 1 == pytest.approx(0.115, rel=0.03)
    assert routing_skew(256, 1) == 1.0 and hottest_device_factor(256, 1) == 1.0


@given(experts=st.sampled_from([8, 64, 128, 160, 256, 384]), ep=st.sampled_from([2, 4, 8, 16, 32, 64, 128, 256]),
       redundant=st.integers(0, 256))
def test_imbalance_laws(experts, ep, redundant):
    skew = routing_skew(experts, ep)
    hot = hottest_device_factor(experts, ep, redundant)
    assert 1.0 <= hot <= skew <= ep  # at least balanced, at most every row on one device
    assert hot <= hottest_device_factor(experts, ep, max(redundant - 1, 0))  # redundancy never hurts
    assert routing_skew(experts, min(2 * ep, 4096)) >= skew  # fewer experts per device: more skew


# ---- layouts ---------------------------------------------------------------------------------------

def test_parallel_degrees_and_their_defaults():
    v3, dense = lr.load_model(V3), lr.load_model("llama2-7b")
    assert resolve_parallelism(v3, 1, 1, None, 32) == (32, 32)  # MoE with dp: experts over every device
    assert resolve_parallelism(v3, 2, 1, 8, None) == (8, 4)  # ep > tp alone: dp = ep / tp, as before dp existed
    assert resolve_parallelism(v3, 8, 1, 8, 2) == (8, 2)  # experts inside each tp group, two replicas
    assert resolve_parallelism(v3, 1, 1, 4, 8) == (4, 8)  # two groups of 4 expert-parallel devices
    assert resolve_parallelism(dense, 2, 1, None, 4) == (1, 4)  # dense: plain replicas
    assert lr.make_deployment(dense, "a100", tp=2, pp=2, dp=3).gpus == 12  # tp x dp x pp


@pytest.mark.parametrize("kw, constraint", [
    (dict(tp=1, dp=4, ep=8), r"ep = 8 must divide tp x dp = 1 x 4 = 4"),
    (dict(tp=2, ep=3), r"ep = 3 must divide tp = 2 .* or be a multiple of it"),
    (dict(tp=1, ep=3, dp=3), r"ep = 3 must divide the 256 routed experts"),
    (dict(tp=1, dp=32, redundant_experts=8), r"ep = 32 must divide the 256 routed experts \+ 8 redundant = 264"),
    (dict(tp=8, redundant_experts=8), r"redundant_experts = 8 needs expert parallelism"),
    (dict(tp=8, dp=64, pp=16), r"tp x dp x pp = 8 x 64 x 16 = 8192 devices; at most 4096"),
    (dict(dp=0), r"dp must be a whole number from 1 to 1024"),
    (dict(tp=1, dp=8, moe_imbalance=0.5), r"moe_imbalance .* must be a number from 1"),
])
def test_impossible_layouts_name_the_constraint(kw, constraint):
    with pytest.raises(lr.InputError, match=constraint):
        lr.make_deployment(V3, "h200", **kw)


def test_expert_parallelism_needs_experts():
    with pytest.raises(lr.InputError, match="needs a mixture-of-experts model; .* is dense"):
        lr.make_deployment("llama2-7b", "a100", tp=1, ep=2, dp=2)


# ---- wide expert parallelism, by hand ------------------------------------------------------------

def test_deepseek_v3_on_32_devices_with_data_parallel_attention(round_hw):
    dep = lr.make_deployment(V3, round_hw, tp=1, dp=32)
    assert (dep.tp, dep.dp, dep.ep, dep.gpus) == (1, 32, 32, 32)
    assert dep.moe_imbalance == pytest.approx(2.56)  # the published default at ep 32 of 256
    ops = {op.name: op for op in dep.ops([AttentionGroup(4, 1, 999)])}  # 4 sequences per replica, decoding
    # Every replica's 4 tokens reach the experts: 4 x 32 = 128 tokens x top-8 = 1024 expert rows over
    # 32 devices = 32 rows on the mean device, 32 x 2.56 = 81.92 on the busiest.
    rows = 4 * 32 * 8 / 32 * 2.56
    assert float(ops["moe/experts_up"].flops) == pytest.approx(rows * 2 * 7168 * 2048)
    assert float(ops["moe/experts_down"].act_read_bytes) == pytest.approx(rows * 2048 * 2)
    # 256 / 32 = 8 experts per device; the busiest sees 327.68 tokens, missing an expert with
    # probability (1 - 8/256)^327.68 = 3.0e-5: all 8 are read (fp8 with a 128x128-block scale each).
    touched = 8 * (1 - (1 - 8 / 256) ** (128 * 2.56))
    assert touched == pytest.approx(8, rel=1e-4)
    assert float(ops["moe/experts_up"].weight_bytes) == pytest.approx(touched * 7168 * 2048 * (1 + 4 / 128**2))
    # Dispatch and combine: the busiest device receives 4 tokens x 8 experts x 7168 x 2.56 values,
    # dispatched in fp8 (1 byte + a 4-byte scale per 128 values: the experts run fp8 GEMMs) and
    # combined back in 16 bit (2 bytes), over the 32 expert-parallel devices.
    a2a = ops["moe/all_to_all"]
    assert a2a.comm_pattern == "all_to_all" and a2a.comm_devices == 32
    assert float(a2a.comm_bytes) == pytest.approx(4 * 8 * 7168 * 2.56 * ((1 + 4 / 128) + 2))
    assert "mlp/all_reduce" not in ops and "attn/all_reduce" not in ops  # tp = 1


def test_redundant_experts_cost_memory_and_ease_the_hot_device(round_hw):
    m = lr.load_model(V3)
    base = lr.make_deployment(m, round_hw, tp=1, dp=32)
    eplb = lr.make_deployment(m, round_hw, tp=1, dp=32, redundant_experts=32)
    # One extra expert per device in each of the 58 MoE layers: 3 matrices of 7168 x 2048 in fp8
    # with one fp32 scale per 128 x 128 block.
    extra = 58 * 3 * 7168 * 2048 * (1 + 4 / 128**2)
    assert weights_per_device(m, None, tp=1, ep=32, redundant_experts=32) - weights_per_device(m, None, tp=1, ep=32) \
        == pytest.approx(extra)
    assert eplb.moe_imbalance == pytest.approx(1 + 1.56 * math.exp(-3))  # R / ep = 1
    group = [AttentionGroup(4, 1, 999)]
    up_base, up_eplb = (next(op for op in d.ops(group) if op.name == "moe/experts_up") for d in (base, eplb))
    assert float(up_eplb.flops) / float(up_base.flops) == pytest.approx((1 + 1.56 * math.exp(-3)) / 2.56)
    # Nine slots per device (288 / 32); the busiest device now sees 128 x 1.0777 = 137.9 tokens and
    # touches each slot with probability 1 - (31/32)^137.9 = 0.9875 (0.99997 before, at 327.7 tokens).
    hot = 1 + 1.56 * math.exp(-3)
    touched = 9 * (1 - (31 / 32) ** (128 * hot)), 8 * (1 - (31 / 32) ** (128 * 2.56))
    assert touched[0] == pytest.approx(9 * 0.9875, rel=1e-3)
    assert float(up_eplb.weight_bytes) / float(up_base.weight_bytes) == pytest.approx(touched[0] / touched[1])


def test_a_measured_imbalance_is_used_as_given(round_hw):
    dep = lr.make_deployment(V3, round_hw, tp=1, dp=32, redundant_experts=32, moe_imbalance=1.3)
    assert dep.moe_imbalance == 1.3
    assert lr.make_deployment(V3, round_hw, tp=8, moe_imbalance=3.0).moe_imbalance == 1.0  # ep 1: no spread
    balanced = lr.estimate(V3, "h200", batch=1024, input_len=1024, output_len=256, tp=1, dp=32, mode="continuous",
                           moe_imbalance=1.0)
    skewed = lr.estimate(V3, "h200", batch=1024, input_len=1024, output_len=256, tp=1, dp=32, mode="continuous")
    assert float(skewed.tpot_s) > float(balanced.tpot_s)  # the step waits for the busiest device


def test_dense_replicas_scale_throughput_not_latency():
    one = lr.estimate("llama2-7b", "a100", batch=16, input_len=512, output_len=128)
    four = lr.estimate("llama2-7b", "a100", batch=64, input_len=512, output_len=128, dp=4)
    assert four.gpus == 4
    assert float(four.tpot_s) == pytest.approx(float(one.tpot_s))
    assert float(four.throughput_tok_s) == pytest.approx(4 * float(one.throughput_tok_s))
    assert any("throughput scales with dp, latency does not" in w for w in four.warnings)


def test_max_mode_fills_each_attention_replica():
    one = lr.estimate(V3, "h200", batch="max", input_len=1024, output_len=1024, tp=1, dp=8, max_batch_size=256)
    assert float(one.batch) == 8 * 256  # the runtime's batch limit holds per replica (each its own scheduler)


# ---- the command line ------------------------------------------------------------------------------

def test_estimate_takes_ep_and_dp_and_echoes_them(capsys):
    code, out, _ = run(capsys, "estimate", "--model", V3, "--hardware", "h200", "--tp", 1, "--dp", 32,
                       "--redundant-experts", 32, "--batch", 2048, "--json")
    d = json.loads(out)
    assert code == 0 and (d["tp"], d["dp"], d["ep"], d["gpus"], d["redundant_experts"]) == (1, 32, 32, 32, 32)
    assert d["moe_imbalance"] == pytest.approx(1 + 1.56 * math.exp(-3))
    code, out, _ = run(capsys, "estimate", "--model", V3, "--hardware", "h200", "--tp", 2, "--ep", 8,
                       "--moe-imbalance", 1.5, "--json")
    d = json.loads(out)
    assert (d["tp"], d["dp"], d["ep"], d["gpus"], d["moe_imbalance"]) == (2, 4, 8, 8, 1.5)
    code, out, _ = run(capsys, "estimate", "--model", V3, "--hardware", "h200", "--tp", 1, "--dp", 8,
                       "--rate", 2, "--json")
    assert code == 0 and (json.loads(out)["dp"], json.loads(out)["ep"]) == (8, 8)


@pytest.mark.parametrize("argv, constraint", [
    (("--dp", 4, "--ep", 8), "must divide tp x dp"),
    (("--ep", 3), "must divide the 256 routed experts"),
    (("--tp", 8, "--redundant-experts", 4), "needs expert parallelism"),
    (("--dp", 8, "--moe-imbalance", 0), "moe_imbalance"),
])
def test_estimate_refuses_impossible_layouts(capsys, argv, constraint):
    code, out, err = run(capsys, "estimate", "--model", V3, "--hardware", "h200", "--tp", 1, *argv)
    assert code == 2 and out == "" and constraint in err and "Traceback" not in err


def test_from_csv_reads_ep_dp_and_moe_columns(capsys, tmp_path):
    csv = tmp_path / "w.csv"
    csv.write_text("id,model,hardware,tp,dp,ep,moe_imbalance,redundant_experts,batch,input_len,output_len\n"
                   f"a,{V3},h200,1,32,,,32,1024,1024,256\n"
                   f"b,{V3},h200,2,,8,1.2,,64,1024,256\n"
                   f"c,{V3},h200,1,4,8,,,64,1024,256\n"
                   "d,llama2-7b,a100,1,4,,,,64,512,128\n")
    code, out, _ = run(capsys, "estimate", "--from-csv", csv, "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0
    assert (rows["a"]["dp"], rows["a"]["ep"], rows["a"]["redundant_experts"], rows["a"]["gpus"]) == (32, 32, 32, 32)
    assert (rows["b"]["dp"], rows["b"]["ep"], rows["b"]["moe_imbalance"]) == (4, 8, 1.2)
    assert "must divide tp x dp" in rows["c"]["error"]
    assert (rows["d"]["dp"], rows["d"]["ep"], rows["d"]["gpus"]) == (4, 1, 4)
    code, _, err = run(capsys, "estimate", "--from-csv", csv, "--dp", 2)
    assert code == 2 and "--dp" in err  # the rows carry the layout: an option would be ignored


def test_compare_takes_the_layout_for_both_devices(capsys):
    code, out, _ = run(capsys, "compare", "--model", V3, "--a", "h200", "--b", "h20", "--method", "ops",
                       "--batch", "64,512", "--seq", 1024, "--tp", 1, "--dp", 8, "--json")
    d = json.loads(out)
    assert code == 0 and d["layout_a"]["dp"] == d["layout_b"]["dp"] == 8 and d["layout_a"]["ep"] == 8
    # The batch axis is the whole instance's: 64 sequences are 8 replicas of 8, so the first cell is
    # 64 tokens per one replica's decode step of 8 sequences at KV length 1024 (plain roofline).
    dep = lr.make_deployment(V3, "h200", tp=1, dp=8)
    step = float(pass_time(dep, load_calibration("none").for_device(dep.hardware), [AttentionGroup(8, 1, 1023)]))
    assert d["perf_a"][0][0] == pytest.approx(64 / step)
    code, _, err = run(capsys, "compare", "--model", V3, "--a", "h200", "--b", "h20", "--dp", 8)
    assert code == 2 and "method ops" in err
    code, _, err = run(capsys, "compare", "--model", "llama2-13b", "--a", "a100", "--b", "h20", "--method", "ops",
                       "--ep", 2)
    assert code == 2 and "needs a mixture-of-experts model" in err


def test_recommend_fixed_degrees_and_wide_expert_parallelism(capsys):
    code, out, _ = run(capsys, "recommend", "--model", V3, "--input", 1024, "--output", 1024, "--devices", "h200",
                       "--dp", 32, "--max-gpus", 32, "--json")
    best = json.loads(out)["ranking"][0]
    assert code == 0 and (best["tp"], best["dp"], best["ep"], best["gpus"]) == (1, 32, 32, 32)
    # Beyond one scale-up domain the search tries ep 16, 32, 64 with data-parallel attention.
    rec = lr.recommend(V3, 1024, 1024, devices=["h20"], max_gpus=64, tpot_slo=None)
    layouts = {(int(t), int(e), int(d)) for t, e, d in zip(rec.searches[0].points.tp, rec.searches[0].points.ep,
                                                           rec.searches[0].points.dp, strict=True)}
    assert {(1, 16, 16), (1, 32, 32), (1, 64, 64)} <= layouts
    assert all(t * d <= 64 for t, _, d in layouts)
    code, _, err = run(capsys, "recommend", "--model", V3, "--input", 1024, "--output", 1024, "--devices", "h200",
                       "--dp", 32)
    assert code == 2 and "needs 32 GPUs; max_gpus is 8" in err
    code, _, err = run(capsys, "recommend", "--model", V3, "--input", 1024, "--output", 1024, "--devices", "h200",
                       "--ep", 8, "--rate", 2)
    assert code == 2 and "--ep cannot be combined with --rate" in err


def test_a_moe_model_that_does_not_fit_suggests_wide_expert_parallelism():
    rec = lr.recommend(V3, 1024, 1024, devices=["L40S"], tpot_slo=None, max_gpus=8)
    assert not rec.ranking and "raise --max-gpus" in rec.excluded[0].reason


def test_the_app_estimate_tab_takes_ep_and_dp():
    pytest.importorskip("dash", reason="the web app needs the extra llmroofline[app] (dash)")
    from llmroofline import app as A

    assert A.parse_optional_int("", "ep") is None and A.parse_optional_int(" 16 ", "dp") == 16
    with pytest.raises(lr.InputError, match="dp must be a whole number"):
        A.parse_optional_int("2.5", "dp")
    m, d = lr.load_model(V3), lr.load_hardware("h200")
    v = A.estimate_view(m, d, batch=512, input_len=1024, output_len=256, tp=1, dp=16)
    e = v.data["estimate"]
    assert (e["dp"], e["ep"], e["gpus"]) == (16, 16, 16)
    api = lr.estimate(m, d, batch=512, input_len=1024, output_len=256, tp=1, dp=16)
    assert e["tpot_s"] == pytest.approx(float(api.tpot_s))
    with pytest.raises(lr.InputError, match="must divide tp x dp"):
        A.estimate_view(m, d, tp=1, dp=4, ep=8)


def test_ops_shows_one_replica_of_a_wide_layout(capsys):
    code, out, _ = run(capsys, "ops", "--model", V3, "--hardware", "h200", "--batch", 4, "--seq", 1000, "--tp", 1,
                       "--dp", 32, "--json")
    d = json.loads(out)
    assert code == 0 and (d["tp"], d["dp"], d["ep"]) == (1, 32, 32)
    a2a = next(o for o in d["operators"] if o["name"] == "moe/all_to_all")
    assert a2a["count"] == 58  # one dispatch + combine per MoE layer
    up = next(o for o in d["operators"] if o["name"] == "moe/experts_up")
    assert up["flops"] == pytest.approx(58 * (4 * 32 * 8 / 32 * 2.56) * 2 * 7168 * 2048)  # as derived above
    code, _, err = run(capsys, "ops", "--model", V3, "--hardware", "h200", "--tp", 1, "--ep", 3)
    assert code == 2 and "must divide" in err


def test_coarse_experts_default_to_balanced_and_say_so(round_hw):
    # The published statistics come from 256 fine-grained experts; extrapolated to Mixtral's 8 at
    # ep 2 the rule would give 1 + 1.56·sqrt((2/8)·ln 2 / ((32/256)·ln 32)) = 1.99: nearly every
    # row on one of two devices. Below 64 routed experts the default is balanced, with a warning.
    assert routing_skew(8, 2) == 1.0 and routing_skew(64, 2) > 1.0
    r = lr.estimate("mixtral-8x7b", round_hw, batch=8, input_len=128, output_len=8, tp=1, ep=2, calibration="none")
    assert r.inputs["moe_imbalance"] == 1.0
    assert any("routing assumed balanced" in w for w in r.warnings)


def test_recommend_widens_expert_parallelism_when_the_model_needs_it():
    # Kimi-K2 in fp8 (about 1.03 TB of weights) fits in no 8 x 80 GB H100 node; a B200 node
    # (8 x 180 GB) holds it. With max_gpus not given, the H100 is searched again up to 64 GPUs
    # with wide expert parallelism (dp = ep / tp); the B200 keeps its 8-GPU search.
    from llmroofline.recommend import recommend

    rec = recommend("kimi-k2", 2048, 512, devices=["h100", "b200"], tpot_slo=0.05)
    by = {c.device: c for c in rec.ranking}
    h100, b200 = by["H100-SXM5-80GB"], by["B200"]
    assert 8 < h100.gpus <= 64 and h100.gpus == h100.tp * h100.pp * h100.dp and h100.ep > 8
    assert b200.gpus <= 8
    assert rec.workload.to_dict()["wide_ep_up_to"] == 64
    # An explicit limit is a hard one: the H100 is excluded, with the way out named.
    strict = recommend("kimi-k2", 2048, 512, devices=["h100"], max_gpus=8)
    assert not strict.ranking and "raise --max-gpus" in strict.excluded[0].reason
    # Dense models are never widened.
    assert recommend("llama3.1-405b", 1024, 256, devices=["l40s"]).workload.widen_to == 0
