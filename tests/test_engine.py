"""Numbers derived by hand: KV bytes, FLOPs per token, roofline times, sums over decode steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.efficiency import Efficiency
from llmroofline.estimate import decode_steps_time, pass_time, sum_max_affine
from llmroofline.model import expected_experts_touched
from llmroofline.operators import AttentionGroup, op_totals

from .conftest import round_device


def test_kv_bytes_per_token_llama2_7b():
    # 2 (K and V) x 32 layers x 32 heads x 128 dims x 2 bytes = 524,288
    assert lr.load_model("llama2-7b").kv_cache_bytes_per_token("fp16") == 2 * 32 * 4096 * 2 == 524_288


def test_kv_bytes_gqa_mqa_mla_window():
    # GQA: Llama-2-70B, 80 layers x 2 x 8 KV heads x 128 x 2 bytes = 327,680
    assert lr.load_model("meta-llama/Llama-2-70b-hf").kv_cache_bytes_per_token() == 80 * 2 * 8 * 128 * 2
    # MQA: Falcon-7B, 32 layers x 2 x 1 KV head x 64 x 2 bytes = 8,192
    assert lr.load_model("tiiuae/falcon-7b").kv_cache_bytes_per_token() == 32 * 2 * 1 * 64 * 2
    # MLA: DeepSeek-V3 caches kv_lora_rank 512 + rope 64 per layer: 61 x 576 x 2 bytes = 70,272
    assert lr.load_model("deepseek-ai/DeepSeek-V3").kv_cache_bytes_per_token() == 61 * 576 * 2
    # fp8 KV halves it
    assert lr.load_model("llama2-7b").kv_cache_bytes_per_token("fp8") == 262_144


def test_sliding_window_caps_the_cache():
    from llmroofline.memory import kv_bytes_per_sequence

    m = lr.load_model("mistralai/Mistral-7B-v0.1")  # window 4096 on all 32 layers, 8 KV heads x 128
    per_token = 32 * 2 * 8 * 128 * 2
    assert kv_bytes_per_sequence(m, 1000, "fp16") == 1000 * per_token
    assert kv_bytes_per_sequence(m, 100_000, "fp16") == 4096 * per_token


def test_decode_flops_are_two_per_parameter_plus_attention():
    m = lr.load_model("llama2-7b")
    ops = lr.forward_ops(m, groups=[AttentionGroup(1, 1, 0)])
    t = op_totals(ops)
    # Matrix FLOPs: 2 per weight that multiplies (all but the input embedding and norms).
    matmul_params = m.params_total - m.vocab_size * m.hidden_size - (2 * m.num_layers + 1) * m.hidden_size
    attention = 2 * 2 * m.num_heads * m.head_dim * 1 * m.num_layers  # QK and SV over 1 position
    elementwise = float(t["flops"]) - 2 * matmul_params - attention
    assert 0 <= elementwise < 0.001 * float(t["flops"])  # norms, softmax, SiLU: a rounding error
    # The attention term grows by 4·H·d per layer per extra KV position.
    t2 = op_totals(lr.forward_ops(m, groups=[AttentionGroup(1, 1, 999)]))
    assert float(t2["flops"] - t["flops"]) == pytest.approx(999 * (4 * 4096 + 5 * 32) * 32)


def test_flops_linear_in_batch():
    m = lr.load_model("llama2-13b")
    one = op_totals(lr.forward_ops(m, groups=[AttentionGroup(1, 1, 511)]))["flops"]
    many = op_totals(lr.forward_ops(m, groups=[AttentionGroup(37, 1, 511)]))["flops"]
    assert float(many) == pytest.approx(37 * float(one))


def test_roofline_time_round_numbers(round_hw):
    # 1 TFLOP on 100 TFLOPS: 10 ms compute; 1 GB at 1000 GB/s: 1 ms memory -> compute-bound 10 ms
    assert lr.roofline_time(1e12, 1e9, 100e12, 1000e9) == pytest.approx(0.010)
    assert lr.roofline_time(1e9, 1e10, 100e12, 1000e9) == pytest.approx(0.010)
    # Ridge: 100 TFLOPS / 1000 GB/s = 100 FLOP/byte
    assert round_hw.ridge_intensity("fp16") == pytest.approx(100)
    assert lr.attainable_flops(50, 100e12, 1000e9) == pytest.approx(50e12)


def test_decode_step_of_a_small_model_on_round_device(round_hw):
    # Batch 1 decode is memory-bound: time ≈ weight bytes / bandwidth for Llama-2-7B fp16.
    m = lr.load_model("llama2-7b")
    t = float(pass_time(lr.make_deployment(m, round_hw), Efficiency.plain(), [AttentionGroup(1, 1, 0)]))
    weights = m.params_total * 2  # every weight read once (embedding: one row, but lm_head reads V·h)
    expected = (weights - m.vocab_size * m.hidden_size * 2) / 1000e9
    assert t == pytest.approx(expected, rel=0.01)


def test_sum_over_steps_equals_explicit_loop(round_hw):
    m = lr.load_model("mistralai/Mistral-7B-v0.1")  # has a sliding window: piecewise sums
    dep = lr.make_deployment(m, round_hw)
    eff = Efficiency(gemm_compute=0.7, gemm_tile_rows=64, memory=0.8, attn_decode_memory=0.6, overlap_loss=0.3,
                     gqa_kv_reuse=0.5, step_overhead_s=1e-4)
    for batch, lo, hi in [(1, 1, 50), (64, 4000, 4200), (300, 100, 130), (8, 9000, 9003)]:
        closed = float(decode_steps_time(dep, eff, batch, lo, hi))
        steps = np.arange(lo, hi + 1)
        loop = float(pass_time(dep, eff, [AttentionGroup(batch, 1, steps - 1)]).sum())
        assert closed == pytest.approx(loop, rel=1e-9)


def test_sum_max_affine_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(500):
        a0, a1, b0, b1 = rng.normal(size=4)
        lo = int(rng.integers(1, 40))
        hi = lo + int(rng.integers(-2, 50))
        w = float(rng.choice([math.inf, float(rng.integers(1, 70))]))
        L = np.arange(lo, hi + 1)
        m = np.minimum(L, w)
        ref = np.maximum(a0 + a1 * m, b0 + b1 * m).sum()
        assert sum_max_affine(a0, a1, b0, b1, lo, hi, w) == pytest.approx(ref, abs=1e-9)


def test_static_workload_composition(round_hw):
    r = lr.estimate("llama2-7b", round_hw, batch=8, input_len=100, output_len=10, calibration="none")
    # e2e = TTFT + 9 decode steps; throughput = batch x output / e2e
    assert float(r.e2e_s) == pytest.approx(float(r.ttft_s + 9 * r.tpot_s))
    assert float(r.throughput_tok_s) == pytest.approx(8 * 10 / float(r.e2e_s))
    one = lr.estimate("llama2-7b", round_hw, batch=8, input_len=100, output_len=1, calibration="none")
    assert float(one.tpot_s) == 0 and float(one.e2e_s) == pytest.approx(float(one.ttft_s))


def test_grid_equals_pointwise(round_hw):
    b = np.array([1, 4, 64])[:, None]
    i = np.array([128, 2048])[None, :]
    grid = lr.estimate("llama2-7b", round_hw, batch=b, input_len=i, output_len=64, calibration="none")
    for bi in range(3):
        for ii in range(2):
            p = lr.estimate("llama2-7b", round_hw, batch=int(b[bi, 0]), input_len=int(i[0, ii]), output_len=64,
                            calibration="none")
            assert float(grid.e2e_s[bi, ii]) == pytest.approx(float(p.e2e_s), rel=1e-12)
            assert bool(grid.memory.fits[bi, ii]) == bool(p.memory.fits)


def test_tensor_parallel_shards_and_communicates(round_hw):
    m = lr.load_model("llama2-13b")
    one = {op.name: op for op in lr.forward_ops(m, groups=[AttentionGroup(4, 1, 99)])}
    two = {op.name: op for op in lr.forward_ops(m, groups=[AttentionGroup(4, 1, 99)], sharding=lr.operators.Sharding(tp=2))}
    assert float(two["attn/q_proj"].weight_bytes) == float(one["attn/q_proj"].weight_bytes) / 2
    assert float(two["mlp/down_proj"].flops) == float(one["mlp/down_proj"].flops) / 2
    assert "attn/all_reduce" not in one and two["attn/all_reduce"].count == m.num_layers
    # Message: 4 tokens x 5120 hidden x 2 bytes; ring over 2 devices sends 2(n-1)/n = 1 of it at 200 GB/s
    t = lr.time_ops([two["attn/all_reduce"]], round_hw, Efficiency.plain())
    assert float(t.comm_s[0]) == pytest.approx(4 * 5120 * 2 / 200e9)


def test_kv_heads_replicate_beyond_tp():
    m = lr.load_model("tiiuae/falcon-7b")  # MQA: one KV head
    ops = {op.name: op for op in lr.forward_ops(m, groups=[AttentionGroup(1, 1, 0)], sharding=lr.operators.Sharding(tp=1))}
    ops8 = {op.name: op for op in lr.forward_ops(m, groups=[AttentionGroup(1, 1, 0)], sharding=lr.operators.Sharding(tp=71))}
    assert float(ops8["attn/k_proj"].weight_bytes) == float(ops["attn/k_proj"].weight_bytes)


def test_expected_experts_touched():
    assert expected_experts_touched(8, 2, 1) == pytest.approx(2)
    assert expected_experts_touched(8, 2, 10_000) == pytest.approx(8)
    # Two tokens: each expert missed by both with probability (6/8)^2
    assert expected_experts_touched(8, 2, 2) == pytest.approx(8 * (1 - 0.75**2))


def test_moe_reads_touched_experts_only(round_hw):
    m = lr.load_model("mistralai/Mixtral-8x7B-v0.1")
    small = op_totals(lr.forward_ops(m, groups=[AttentionGroup(1, 1, 0)]), "moe/experts")
    large = op_totals(lr.forward_ops(m, groups=[AttentionGroup(4096, 1, 0)]), "moe/experts")
    per_expert = 3 * m.hidden_size * m.moe_intermediate_size * 2 * m.num_moe_layers
    assert float(small["weight_bytes"]) == pytest.approx(2 * per_expert)
    assert float(large["weight_bytes"]) == pytest.approx(8 * per_expert)


def test_method1_intensity_of_the_llmroofline_article():
    # Batch 1, one position: 2 FLOPs per active parameter over 2 bytes per stored parameter.
    m = lr.load_model("llama2-13b")
    w = lr.whole_model(m, 1, 1, 0)
    assert float(w.intensity) == pytest.approx(1.0, rel=0.01)
    mix = lr.load_model("mistralai/Mixtral-8x7B-v0.1")
    wm = lr.whole_model(mix, 1, 1, 0)
    from llmroofline.intensity import decoder_params

    stored, active = decoder_params(mix)
    assert float(wm.intensity) == pytest.approx(active / stored, rel=0.01)  # MoE: FLOPs x top-k, weights x experts
    # Intensity grows with batch and falls with sequence length (KV bytes).
    assert float(lr.whole_model(m, 64, 1, 127).intensity) > float(lr.whole_model(m, 8, 1, 127).intensity)
    assert float(lr.whole_model(m, 64, 1, 8191).intensity) < float(lr.whole_model(m, 64, 1, 127).intensity)


def test_memory_fits_and_max_batch(round_hw):
    r = lr.estimate("meta-llama/Llama-2-70b-hf", round_hw, batch=1, input_len=128, output_len=128, calibration="none")
    assert not bool(r.memory.fits)  # 138 GB of fp16 weights on a 100 GB device
    r2 = lr.estimate("meta-llama/Llama-2-70b-hf", round_hw, batch=1, input_len=128, output_len=128, tp=2,
                     calibration="none")
    assert bool(r2.memory.fits)
    m = lr.estimate("llama2-7b", round_hw, batch="max", input_len=1000, output_len=1000, calibration="none")
    b = float(m.batch)
    assert bool(m.memory.fits)
    bigger = lr.estimate("llama2-7b", round_hw, batch=int(b * 1.2), input_len=1000, output_len=1000,
                         mode="continuous", calibration="none")
    assert not bool(bigger.memory.fits)


def test_fp8_gemm_uses_fp8_peak_and_int4_is_weight_only(round_hw):
    assert lr.make_deployment("llama2-7b", round_hw, weight_dtype="fp8").gemm_precision == "fp8"
    assert lr.make_deployment("llama2-7b", round_hw, weight_dtype="int4").gemm_precision == "fp16"
    no_fp8 = round_device(peak_tflops={"fp16": 100})
    assert lr.make_deployment("llama2-7b", no_fp8, weight_dtype="fp8").gemm_precision == "fp16"


@pytest.mark.parametrize("bad", [dict(tp=3), dict(tp=0), dict(weight_dtype="fp7"), dict(batch=0),
                                 dict(input_len=-5), dict(batch=1e12), dict(mode="turbo"), dict(batch="many")])
def test_bad_input_is_a_clear_error(round_hw, bad):
    kwargs = dict(batch=1, input_len=10, output_len=10)
    kwargs.update(bad)
    with pytest.raises(lr.InputError):
        lr.estimate("llama2-7b", round_hw, **kwargs)


def test_unknown_names_suggest():
    with pytest.raises(lr.InputError, match="did you mean"):
        lr.load_model("llama2-7")


def test_expert_parallel_with_data_parallel_attention(round_hw):
    # Mixtral on 2 devices with tp=1, ep=2: attention runs data-parallel (each device its own
    # sequences), the 8 experts spread 4 per device, tokens reach them by all-to-all. Routing taken
    # as balanced (moe_imbalance 1): the busiest device computes the mean share.
    m = lr.load_model("mistralai/Mixtral-8x7B-v0.1")
    dep = lr.make_deployment(m, round_hw, tp=1, ep=2, moe_imbalance=1.0)
    assert dep.dp == 2 and dep.gpus == 2
    ops = {op.name: op for op in dep.ops([AttentionGroup(16, 1, 99)])}  # 16 sequences on this device
    assert "mlp/all_reduce" not in ops and "attn/all_reduce" not in ops
    a2a = ops["moe/all_to_all"]
    # Dispatch and combine: 16 tokens x 2 experts x 4096 x 2 bytes, twice; half of it leaves the device.
    assert float(a2a.comm_bytes) == 2 * 16 * 2 * 4096 * 2
    t = lr.time_ops([a2a], round_hw, Efficiency.plain())
    assert float(t.comm_s[0]) == pytest.approx(0.5 * 2 * 16 * 2 * 4096 * 2 / 200e9)
    # Both devices' 32 tokens route to the experts: 32 x 2 / 2 expert rows per device.
    per_expert_flops = 2 * 4096 * 14336
    assert float(ops["moe/experts_up"].flops) == pytest.approx(32 * 2 / 2 * per_expert_flops)
    # Memory: every device holds all non-expert weights and half the experts.
    from llmroofline.memory import weights_per_device

    experts = m.num_moe_layers * 8 * m.expert_params() * 2
    assert weights_per_device(m, "fp16", tp=1, ep=2) == pytest.approx(weights_per_device(m, "fp16") - experts / 2)
    # The instance serves twice the sequences of one device; its batch is split between the replicas.
    r = lr.estimate(m, round_hw, batch=32, input_len=128, output_len=64, tp=1, ep=2, mode="continuous",
                    calibration="none", moe_imbalance=1.0)
    assert r.gpus == 2
    # KV per device: 16 sequences x (128 + 64 / 2) tokens (a paged cache holds input + half the output
    # on average) x 131,072 bytes per token (32 layers x 2 x 8 x 128 x 2)
    assert float(r.memory.kv_cache) == 16 * 160 * 131_072
    with pytest.raises(lr.InputError):
        lr.make_deployment(m, round_hw, tp=2, ep=3)


@pytest.mark.filterwarnings("ignore:.*brand_new_arch")
def test_config_file_with_unknown_model_type_loads_with_a_warning(tmp_path):
    import json
    import warnings

    cfg = {"model_type": "brand_new_arch", "hidden_size": 2048, "num_hidden_layers": 16,
           "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 5632, "vocab_size": 32000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lr.load_model(str(tmp_path))  # a folder holding config.json
    assert any("brand_new_arch" in str(w.message) for w in caught)
    # 16 layers x (attention 2048 x (16 + 2 x 4) x 128 + 2048^2, gated MLP 3 x 2048 x 5632, 2 norms)
    # + embeddings and lm_head 2 x 32000 x 2048 + final norm
    per_layer = 2048 * 24 * 128 + 2048 * 2048 + 3 * 2048 * 5632 + 2 * 2048
    assert m.params_total == 16 * per_layer + 2 * 32000 * 2048 + 2048
    del cfg["num_attention_heads"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(lr.InputError, match="num_attention_heads"):
        lr.load_model(str(tmp_path / "config.json"))


def test_mla_verify_pass_stays_in_the_latent_space(round_hw):
    # A speculative verify pass (k + 1 = 2 tokens per sequence) decodes in the latent space like a
    # one-token step: per new token, q_absorb is qk_nope x (kv_lora x heads) = 128 x 512·128 and no
    # per-head K/V is decompressed. A 9-token pass is a prefill chunk: it decompresses every cached
    # position (kv_b_proj over past + new = 1000 + 9 positions per sequence).
    dep = lr.make_deployment("deepseek-v3", round_hw, tp=8)
    heads = 128 / 8
    verify = {op.name: op for op in dep.ops([AttentionGroup(4, 2, 1000)])}
    assert "attn/kv_b_proj" not in verify
    assert float(verify["attn/q_absorb"].flops) == pytest.approx(4 * 2 * 2 * 128 * 512 * heads)
    chunk = {op.name: op for op in dep.ops([AttentionGroup(4, 9, 1000)])}
    assert float(chunk["attn/kv_b_proj"].flops) == pytest.approx(4 * 1009 * 2 * 512 * heads * (128 + 128))
    assert "attn/q_absorb" not in chunk
