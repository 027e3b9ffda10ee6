"""Laws that hold for every model, device and workload (hypothesis property tests).

Models are random but valid Hugging Face configs (dense MHA, GQA, MQA, MoE with and without shared
experts, sliding windows, alternating local/global layers, MLA) built by `model_from_config`;
devices are made-up specs built by `hardware_from_dict`; workloads are random batches and
lengths. The "ci" profile (tests/conftest.py) tries a fixed set of examples per test;
HYPOTHESIS_PROFILE=long tries a thousand random ones.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import llmroofline as lr  # noqa: E402
from llmroofline.efficiency import Calibration, Efficiency  # noqa: E402
from llmroofline.estimate import pass_time  # noqa: E402
from llmroofline.hardware import Hardware  # noqa: E402
from llmroofline.memory import usable_memory, weights_per_device  # noqa: E402
from llmroofline.model import ModelSpec, model_from_config  # noqa: E402
from llmroofline.operators import AttentionGroup, op_totals  # noqa: E402
from llmroofline.precision import GROUPS, WeightFormat, WeightPrecision  # noqa: E402

from .conftest import round_device  # noqa: E402

REL = 1e-9  # float64 round-off allowance for laws that hold exactly on paper
KINDS = ("dense", "gqa", "mqa", "moe", "moe_shared", "sliding", "alternating", "mla", "linear", "mamba", "sparse", "jamba")


# ---- strategies ----------------------------------------------------------------------------

@st.composite
def configs(draw, kinds=KINDS) -> dict:
    """A config.json mapping of a random, valid decoder-only model of one of `kinds`."""
    kind = draw(st.sampled_from(kinds))
    heads = draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64] if kind != "mqa" else [2, 4, 8, 16, 32, 64]))
    head_dim = draw(st.sampled_from([16, 32, 64, 128]))
    hidden = heads * head_dim
    cfg: dict = {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": draw(st.integers(1, 40)),
        "num_attention_heads": heads,
        "intermediate_size": draw(st.integers(8, 8 * hidden)),
        "vocab_size": draw(st.integers(64, 160_000)),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):  # explicit head_dim, not hidden / heads (as Gemma and Qwen3 do)
        cfg["head_dim"] = draw(st.sampled_from([16, 32, 64, 128, 256]))
    kv_choices = [k for k in (1, 2, 4, 8, 16, 32, 64) if heads % k == 0]
    cfg["num_key_value_heads"] = {"dense": heads, "mqa": 1}.get(kind, draw(st.sampled_from(kv_choices)))
    if kind in ("moe", "moe_shared"):
        experts = draw(st.integers(2, 64))
        cfg.update(model_type="mixtral" if kind == "moe" else "qwen2_moe", num_local_experts=experts,
                   num_experts_per_tok=draw(st.integers(1, min(8, experts))))
        if kind == "moe_shared":
            cfg.update(moe_intermediate_size=draw(st.integers(8, 4 * hidden)),
                       shared_expert_intermediate_size=draw(st.integers(8, 8 * hidden)))
    elif kind == "sliding":
        window = draw(st.integers(8, 8192))
        cfg.update(model_type="mistral", sliding_window=window, max_position_embeddings=window * 4)
    elif kind == "alternating":
        cfg.update(model_type="gemma2", sliding_window=draw(st.integers(8, 4096)), max_position_embeddings=1 << 20)
    elif kind == "mla":
        experts = draw(st.integers(2, 64))
        cfg.update(model_type="deepseek_v3", kv_lora_rank=draw(st.sampled_from([32, 64, 128, 512])),
                   q_lora_rank=draw(st.sampled_from([None, 0, 64, 1536])),
                   qk_rope_head_dim=draw(st.sampled_from([16, 32, 64])),
                   qk_nope_head_dim=draw(st.sampled_from([16, 64, 128])),
                   v_head_dim=draw(st.sampled_from([16, 64, 128])), n_routed_experts=experts,
                   num_experts_per_tok=draw(st.integers(1, min(8, experts))),
                   moe_intermediate_size=draw(st.integers(8, 2 * hidden)), n_shared_experts=draw(st.integers(0, 2)),
                   first_k_dense_replace=draw(st.integers(0, cfg["num_hidden_layers"])))
    elif kind == "linear":  # Gated DeltaNet layers with every interval-th layer attending (Qwen3-Next)
        key_heads = draw(st.sampled_from([1, 2, 4, 16]))
        cfg.update(model_type="qwen3_next", full_attention_interval=draw(st.integers(1, min(4, cfg["num_hidden_layers"]))),
                   linear_num_key_heads=key_heads, linear_num_value_heads=key_heads * draw(st.sampled_from([1, 2])),
                   linear_key_head_dim=draw(st.sampled_from([32, 128])),
                   linear_value_head_dim=draw(st.sampled_from([32, 128])), linear_conv_kernel_dim=4)
    elif kind == "mamba":  # Nemotron-H blocks: Mamba-2, attention or MLP (one part each)
        layers = cfg["num_hidden_layers"]
        groups = draw(st.sampled_from([1, 2, 8]))
        cfg.update(model_type="nemotron_h", mlp_hidden_act="relu2",
                   hybrid_override_pattern="".join(draw(st.lists(st.sampled_from("M*-"), min_size=layers,
                                                                 max_size=layers))),
                   mamba_num_heads=groups * draw(st.integers(1, 16)), mamba_head_dim=draw(st.sampled_from([32, 64])),
                   ssm_state_size=draw(st.sampled_from([16, 128])), n_groups=groups, conv_kernel=4,
                   chunk_size=draw(st.sampled_from([64, 128, 256])))
    elif kind == "jamba":  # Mamba-1 layers with attention every period-th layer, MoE every other one
        layers = cfg["num_hidden_layers"]
        period = draw(st.integers(1, min(8, layers)))
        experts = draw(st.integers(2, 16))
        cfg.update(model_type="jamba", attn_layer_period=period, attn_layer_offset=draw(st.integers(0, period - 1)),
                   mamba_d_state=draw(st.sampled_from([8, 16])), mamba_expand=2, mamba_d_conv=4,
                   mamba_dt_rank=draw(st.sampled_from([16, 256])), num_experts=experts,
                   num_experts_per_tok=draw(st.integers(1, min(2, experts))),
                   expert_layer_period=min(2, layers), expert_layer_offset=min(1, layers - 1))
    elif kind == "sparse":  # MLA with a lightning indexer keeping the top k (DeepSeek-V3.2)
        cfg.update(model_type="deepseek_v32", kv_lora_rank=512, q_lora_rank=draw(st.sampled_from([0, 1536])),
                   qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128,
                   index_topk=draw(st.integers(1, 4096)), index_n_heads=draw(st.sampled_from([8, 64])),
                   index_head_dim=draw(st.sampled_from([64, 128])))
    return cfg


def build(cfg: dict) -> ModelSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model_from_config(cfg, model_id=f"random-{cfg['model_type']}")


models = configs().map(build)


@st.composite
def devices(draw) -> Hardware:
    """A made-up accelerator: peaks, bandwidths and capacity anywhere from an edge chip to a rack."""
    fp16 = draw(st.floats(1, 5000))
    peaks = {"fp16": fp16, "bf16": fp16}
    if draw(st.booleans()):
        peaks["fp8"] = fp16 * draw(st.sampled_from([1, 2]))
    return round_device(
        memory_gb=draw(st.floats(4, 2000)), memory_bandwidth_gbps=draw(st.floats(50, 20_000)), peak_tflops=peaks,
        interconnect={"kind": "NVLink", "bandwidth_gbps": draw(st.floats(16, 3600)), "max_devices": 8})


@st.composite
def efficiencies(draw) -> Efficiency:
    """Achieved fractions below 1, tile quantization and fixed overheads (seconds)."""
    frac = st.floats(0.05, 1.0)
    return Efficiency(
        gemm_compute=draw(frac), gemm_tile_rows=draw(st.floats(0, 256)), memory=draw(frac),
        attn_prefill_compute=draw(frac), attn_decode_memory=draw(frac), attn_decode_compute=draw(frac),
        gqa_kv_reuse=draw(st.floats(0, 1)), comm_bandwidth=draw(frac), comm_latency_s=draw(st.floats(0, 1e-4)),
        layer_overhead_s=draw(st.floats(0, 1e-4)), step_overhead_s=draw(st.floats(0, 1e-2)))


def calibrations():
    """Plain roofline ("none") or a random Efficiency with overheads."""
    return st.one_of(st.just("none"), efficiencies().map(
        lambda e: Calibration(default=e, families={}, error_bands={}, source="random test efficiency")))


batches = st.integers(1, 4096)
prompts = st.integers(1, 32_768)
outputs = st.integers(1, 4096)
modes = st.sampled_from(["static", "continuous"])


def tp_for(model: ModelSpec, draw) -> int:
    return draw(st.sampled_from([t for t in (1, 2, 4, 8) if model.num_heads % t == 0]))


def fields_of(r) -> dict[str, np.ndarray]:
    return {"ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "e2e_s": r.e2e_s, "throughput_tok_s": r.throughput_tok_s}


def not_less(a, b, what: str) -> None:
    """a >= b up to float round-off."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.all(a >= b * (1 - REL) - 1e-300), f"{what}: {a} < {b}"


# ---- monotonicity --------------------------------------------------------------------------

@given(m=models, hw=devices(), cal=calibrations(), mode=modes, b=batches, b2=batches, i=prompts, o=outputs,
       data=st.data())
def test_more_batch_never_lowers_time_per_step(m, hw, cal, mode, b, b2, i, o, data):
    lo, hi = sorted((b, b2))
    tp = tp_for(m, data.draw)
    r_lo, r_hi = (lr.estimate(m, hw, batch=x, input_len=i, output_len=o, tp=tp, mode=mode, calibration=cal)
                  for x in (lo, hi))
    not_less(r_hi.ttft_s, r_lo.ttft_s, "TTFT")
    not_less(r_hi.tpot_s, r_lo.tpot_s, "TPOT")
    not_less(r_hi.e2e_s, r_lo.e2e_s, "end-to-end time")


@given(m=models, hw=devices(), cal=calibrations(), mode=modes, b=batches, i=prompts, i2=prompts, o=outputs)
def test_longer_prompt_never_lowers_time_per_step(m, hw, cal, mode, b, i, i2, o):
    lo, hi = sorted((i, i2))
    r_lo, r_hi = (lr.estimate(m, hw, batch=b, input_len=x, output_len=o, mode=mode, calibration=cal)
                  for x in (lo, hi))
    not_less(r_hi.ttft_s, r_lo.ttft_s, "TTFT")
    not_less(r_hi.tpot_s, r_lo.tpot_s, "TPOT")
    not_less(r_hi.e2e_s, r_lo.e2e_s, "end-to-end time")


@given(m=models, hw=devices(), cal=calibrations(), b=batches, i=prompts, o=outputs, o2=outputs)
def test_longer_output_never_lowers_static_step_time(m, hw, cal, b, i, o, o2):
    # Static batch: each extra decode step attends a longer KV cache, so the mean step is no shorter.
    lo, hi = sorted((o, o2))
    r_lo, r_hi = (lr.estimate(m, hw, batch=b, input_len=i, output_len=x, calibration=cal) for x in (lo, hi))
    if lo > 1:
        not_less(r_hi.tpot_s, r_lo.tpot_s, "TPOT")
    not_less(r_hi.e2e_s, r_lo.e2e_s, "end-to-end time")
    assert float(r_hi.ttft_s) == pytest.approx(float(r_lo.ttft_s), rel=REL)


@given(m=models, hw=devices(), cal=calibrations(), b=batches, kv=st.integers(1, 200_000), kv2=st.integers(1, 200_000))
def test_longer_kv_never_lowers_decode_step(m, hw, cal, b, kv, kv2):
    lo, hi = sorted((kv, kv2))
    dep = lr.make_deployment(m, hw)
    eff = lr.load_calibration(cal).for_device(hw)
    t_lo, t_hi = (pass_time(dep, eff, [AttentionGroup(b, 1, x - 1)]) for x in (lo, hi))
    not_less(t_hi, t_lo, "decode step")


@given(m=models, hw=devices(), cal=calibrations(), b=batches, kv=st.integers(1, 100_000), data=st.data())
def test_more_bytes_per_weight_never_shrinks_memory_or_speeds_a_step(m, hw, cal, b, kv, data):
    """Each module group at its own bytes per weight (a weight-only format: the GEMM rate stays
    16 bit); raising any group's bytes never lowers the weights held nor the decode time."""
    assert sum(e + v for e, v in m.weight_elements().values()) == m.params_total
    lo = {g: data.draw(st.floats(0.25, 2.0)) for g in GROUPS}
    hi = {g: lo[g] * data.draw(st.floats(1.0, 4.0)) for g in GROUPS}
    small, large = (WeightPrecision(*(WeightFormat("int8", x[g]) for g in GROUPS)) for x in (lo, hi))
    tp = tp_for(m, data.draw)
    not_less(weights_per_device(m, large, tp), weights_per_device(m, small, tp), "weights per device")
    eff = lr.load_calibration(cal).for_device(hw)
    t_small, t_large = (pass_time(lr.make_deployment(m, hw, tp=tp, weight_dtype=w), eff,
                                  [AttentionGroup(b, 1, kv - 1)]) for w in (small, large))
    not_less(t_large, t_small, "decode step")


def scaled(hw: Hardware, *, bandwidth: float = 1.0, compute: float = 1.0, link: float = 1.0) -> Hardware:
    return dataclasses.replace(hw, memory_bandwidth=hw.memory_bandwidth * bandwidth,
                               peak_flops={p: v * compute for p, v in hw.peak_flops.items()},
                               interconnect_bandwidth=hw.interconnect_bandwidth * link)


@given(m=models, hw=devices(), cal=calibrations(), mode=modes, b=batches, i=prompts, o=outputs,
       factors=st.tuples(*[st.sampled_from([1.0, 1.01, 1.5, 2.0, 10.0])] * 3), data=st.data())
def test_more_bandwidth_or_compute_never_slows_a_step(m, hw, cal, mode, b, i, o, factors, data):
    tp = tp_for(m, data.draw)
    faster = scaled(hw, bandwidth=factors[0], compute=factors[1], link=factors[2])
    base, fast = (lr.estimate(m, d, batch=b, input_len=i, output_len=o, tp=tp, mode=mode, calibration=cal)
                  for d in (hw, faster))
    not_less(base.ttft_s, fast.ttft_s, "TTFT")
    not_less(base.tpot_s, fast.tpot_s, "TPOT")
    not_less(base.e2e_s, fast.e2e_s, "end-to-end time")
    not_less(fast.throughput_tok_s, base.throughput_tok_s, "throughput")


# ---- FLOPs and the roofline ----------------------------------------------------------------

@given(m=models, b=st.integers(1, 512), k=st.integers(2, 64), new=st.integers(1, 2048), past=st.integers(0, 100_000),
       data=st.data())
def test_flops_and_bytes_per_sequence_are_linear_in_batch(m, b, k, new, past, data):
    # Every operator's FLOPs scale with the sequences in the pass (MoE: top-k rows per token,
    # attention: pairs per sequence, lm_head: one row per sequence).
    tp = tp_for(m, data.draw)
    sh = lr.operators.Sharding(tp=tp)
    one = op_totals(lr.forward_ops(m, groups=[AttentionGroup(b, new, past)], sharding=sh))
    many = op_totals(lr.forward_ops(m, groups=[AttentionGroup(k * b, new, past)], sharding=sh))
    assert float(many["flops"]) == pytest.approx(k * float(one["flops"]), rel=REL)
    for key in ("act_read_bytes", "act_write_bytes", "kv_read_bytes", "kv_write_bytes"):
        assert float(many[key]) == pytest.approx(k * float(one[key]), rel=REL)


LINEAR_LAYERS = ("attn/q_proj", "attn/q_a_proj", "attn/q_b_proj", "attn/k_proj", "attn/v_proj", "attn/kv_a_proj",
                 "attn/o_proj", "mlp/", "moe/")


@given(m=models, b=st.integers(1, 64), new=st.integers(1, 4096), k=st.integers(2, 16))
def test_flops_of_linear_layers_are_linear_in_tokens(m, b, new, k):
    def linear_flops(n):
        ops = lr.forward_ops(m, groups=[AttentionGroup(b, n, 0)])
        return sum(float(op.count * op.flops) for op in ops if op.name.startswith(LINEAR_LAYERS))

    assert linear_flops(k * new) == pytest.approx(k * linear_flops(new), rel=REL)


@given(m=models, hw=devices(), cal=calibrations(), b=batches, new=st.integers(1, 8192), past=st.integers(0, 65536))
def test_roofline_time_is_at_least_each_bound(m, hw, cal, b, new, past):
    eff = lr.load_calibration(cal).for_device(hw)
    dep = lr.make_deployment(m, hw)
    ops = dep.ops([AttentionGroup(b, new, past)])
    t = lr.time_ops(ops, hw, eff)
    assert np.all(t.time_s >= t.compute_s) and np.all(t.time_s >= t.memory_s)
    assert np.all(t.time_s >= 0) and np.all(np.isfinite(t.time_s))
    # The whole pass is at least its FLOPs at the fastest peak and its bytes at full bandwidth.
    totals = op_totals(ops)
    total = float(pass_time(dep, eff, [AttentionGroup(b, new, past)]))
    assert total >= float(totals["flops"]) / max(hw.peak_flops.values()) * (1 - REL)
    assert total >= float(totals["bytes"]) / hw.memory_bandwidth * (1 - REL)
    flops, nbytes = float(totals["flops"]), float(totals["bytes"])
    peak, bw = hw.peak("fp16"), hw.memory_bandwidth
    one = float(lr.roofline_time(flops, nbytes, peak, bw))
    assert one >= flops / peak and one >= nbytes / bw and one in (flops / peak, nbytes / bw)


@st.composite
def wide_models(draw) -> ModelSpec:
    """Dense, GQA, MQA or MoE models at least 1024 wide, with MLPs at least as wide."""
    cfg = draw(configs(kinds=("dense", "gqa", "mqa", "moe", "moe_shared")))
    heads = draw(st.sampled_from([16, 32, 64]))
    hidden = heads * draw(st.sampled_from([64, 128]))
    kv = cfg["num_key_value_heads"]
    cfg.update(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=heads if kv > heads else kv,
               intermediate_size=draw(st.integers(hidden, 4 * hidden)))
    cfg.pop("head_dim", None)
    if "moe_intermediate_size" in cfg:
        cfg["moe_intermediate_size"] = draw(st.integers(hidden, 2 * hidden))
    return build(cfg)


@given(m=wide_models(), b=st.integers(256, 4096), new=st.integers(16, 64))
def test_method1_and_method2_flops_agree_when_gemms_dominate(m, b, new):
    # A large-batch prefill of short prompts of a wide model: attention and elementwise work are
    # negligible, and both methods count 2 FLOPs per active weight per token.
    whole = float(lr.whole_model(m, b, new, 0).flops)
    ops = lr.forward_ops(m, groups=[AttentionGroup(b, new, 0)], include_lm_head=False)
    per_op = float(op_totals(ops)["flops"])
    assert per_op == pytest.approx(whole, rel=0.03)


# ---- comparison, grids, results ------------------------------------------------------------

@given(m=models, a=devices(), b=devices(), method=st.sampled_from(["whole", "ops"]),
       metric=st.sampled_from(["decode", "ttft", "e2e"]),
       batch=st.lists(st.integers(1, 2048), min_size=1, max_size=3, unique=True),
       seq=st.lists(st.integers(1, 65536), min_size=1, max_size=3, unique=True))
def test_ratio_a_over_b_times_b_over_a_is_one(m, a, b, method, metric, batch, seq):
    b = dataclasses.replace(b, id="ROUND-2")
    ab = lr.compare(m, a, b, batch=batch, seq=seq, method=method, metric=metric, output_len=16)
    ba = lr.compare(m, b, a, batch=batch, seq=seq, method=method, metric=metric, output_len=16)
    assert np.allclose(ab.ratio * ba.ratio, 1.0, rtol=1e-12)
    assert np.all(ab.ratio > 0) and np.all(np.isfinite(ab.ratio))
    assert np.array_equal(ab.fits_a, ba.fits_b) and np.array_equal(ab.fits_b, ba.fits_a)


def on_axis(values: list[int], axis: int | None) -> np.ndarray | int:
    """A scalar (axis None) or the values laid along one axis of a 3-d grid."""
    if axis is None:
        return values[0]
    shape = [1, 1, 1]
    shape[axis] = len(values)
    return np.array(values).reshape(shape)


axes = st.sampled_from([None, 0, 1, 2])


@given(m=models, hw=devices(), cal=calibrations(), mode=modes, bs=st.lists(batches, min_size=1, max_size=3),
       ins=st.lists(st.integers(1, 32_768), min_size=1, max_size=3), outs=st.lists(outputs, min_size=1, max_size=2),
       layout=st.tuples(axes, axes, axes))
def test_grid_evaluation_equals_pointwise(m, hw, cal, mode, bs, ins, outs, layout):
    # Any of batch, prompt and output may be a scalar or lie along any axis of the grid.
    assume(not (m.is_mla and 1 in ins and len(set(ins)) > 1))  # see test_one_token_prompt_mla_grid_equals_pointwise
    args = {"batch": on_axis(bs, layout[0]), "input_len": on_axis(ins, layout[1]),
            "output_len": on_axis(outs, layout[2])}
    try:
        shape = np.broadcast_shapes(*(np.shape(v) for v in args.values()))
    except ValueError:  # two inputs of different lengths on one axis: not a grid
        assume(False)
    grid = lr.estimate(m, hw, mode=mode, calibration=cal, **args)
    full = {k: np.broadcast_to(v, shape) for k, v in args.items()}
    for idx in np.ndindex(shape):
        point = {k: int(v[idx]) for k, v in full.items()}
        p = lr.estimate(m, hw, mode=mode, calibration=cal, **point)
        for name, value in fields_of(p).items():
            got = float(np.broadcast_to(fields_of(grid)[name], shape)[idx])
            assert got == pytest.approx(float(value), rel=1e-9), (name, point)
        assert bool(np.broadcast_to(grid.memory.fits, shape)[idx]) == bool(p.memory.fits)


def test_one_token_prompt_grid_equals_pointwise():
    hw = round_device()
    cal = Calibration(default=Efficiency(attn_prefill_compute=0.5, attn_decode_compute=0.2, attn_decode_memory=0.3),
                      families={}, error_bands={}, source="test")
    grid = lr.estimate("llama2-7b", hw, batch=64, input_len=[1, 1000], output_len=50, calibration=cal)
    point = lr.estimate("llama2-7b", hw, batch=64, input_len=1, output_len=50, calibration=cal)
    assert float(grid.ttft_s[0]) == pytest.approx(float(point.ttft_s), rel=1e-9)


def test_one_token_prompt_mla_grid_equals_pointwise():
    hw = round_device()
    grid = lr.estimate("deepseek-ai/DeepSeek-V2-Lite", hw, batch=64, input_len=[1, 1000], output_len=50,
                       calibration="none")
    point = lr.estimate("deepseek-ai/DeepSeek-V2-Lite", hw, batch=64, input_len=1, output_len=50, calibration="none")
    assert float(grid.ttft_s[0]) == pytest.approx(float(point.ttft_s), rel=1e-9)


@given(m=models, hw=devices(), cal=calibrations(), mode=st.sampled_from(["static", "continuous", "max"]), b=batches,
       i=st.integers(1, 32_768), o=outputs, data=st.data())
def test_results_are_finite_and_non_negative(m, hw, cal, mode, b, i, o, data):
    tp = tp_for(m, data.draw)
    r = lr.estimate(m, hw, batch=b, input_len=i, output_len=o, tp=tp, mode=mode, calibration=cal)
    for name, value in {**fields_of(r), **r.memory.to_dict(), "batch": r.batch}.items():
        a = np.asarray(value, dtype=float)
        assert np.all(np.isfinite(a)) and np.all(a >= 0), f"{name} = {a}"
    assert np.all(r.ttft_s > 0) and np.all(r.e2e_s > 0) and np.all(r.throughput_tok_s > 0)
    assert np.all(r.e2e_s >= r.ttft_s * (1 - REL))


@given(m=models, hw=devices(), mode=st.sampled_from(["static", "continuous", "max"]), b=batches,
       i=st.integers(1, 131_072), o=outputs, data=st.data())
def test_memory_fits_iff_total_within_capacity(m, hw, mode, b, i, o, data):
    tp = tp_for(m, data.draw)
    r = lr.estimate(m, hw, batch=b, input_len=i, output_len=o, tp=tp, mode=mode, calibration="none")
    mem = r.memory
    assert np.array_equal(mem.fits, mem.total <= usable_memory(hw))
    assert mem.capacity == usable_memory(hw)
    assert np.allclose(mem.total, mem.weights + mem.kv_cache + mem.activations, rtol=1e-12)
    d = mem.to_dict()
    assert np.array_equal(np.asarray(d["fits"]), np.asarray(d["total_gb"]) <= d["capacity_gb"] * (1 + 1e-15))
    if mode == "max":
        # The batch max mode picks leaves room for the KV cache of every sequence, or is 1 (nothing fits).
        chosen = lr.max_batch(m, hw, context=i + o, weight_dtype="fp16", kv_dtype="fp16", tp=tp)
        assert bool(mem.fits) or float(chosen) == 0
