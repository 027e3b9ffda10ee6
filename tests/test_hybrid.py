"""Hybrid and sparse attention, checked against numbers derived by hand from the bundled configs.

Qwen3-Next-80B-A3B (Gated DeltaNet 3 : 1 gated attention), Nemotron-H-8B (Mamba-2 + attention + MLP
blocks), DeepSeek-V3.2 (MLA with a lightning indexer and top-2048 sparse attention), gpt-oss
(attention sinks, alternating 128-token windows).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.efficiency import Efficiency
from llmroofline.errors import InputError
from llmroofline.estimate import decode_steps_time, pass_time
from llmroofline.intensity import whole_model
from llmroofline.memory import kv_bytes_per_sequence, max_batch
from llmroofline.model import model_from_config
from llmroofline.operators import AttentionGroup, Sharding, op_totals

QWEN_NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
DSV32 = "deepseek-ai/DeepSeek-V3.2-Exp"


def decode_ops(model, past, batch=1, **kw):
    return lr.forward_ops(model, groups=[AttentionGroup(batch, 1, past)], **kw)


# ---- layer kinds and cache sizes ---------------------------------------------------------------

def test_qwen3_next_layers_kv_and_state_by_hand():
    m = lr.load_model(QWEN_NEXT)
    # 48 layers, full_attention_interval 4: layers 3, 7, ..., 47 attend, the other 36 are Gated DeltaNet.
    assert (m.num_layers, m.num_attention_layers, m.num_linear_layers) == (48, 12, 36)
    # KV only in the 12 attention layers: 2 KV heads x 256 x (K, V) x 2 bytes x 12 = 24,576 bytes per token.
    assert m.kv_cache_bytes_per_token("fp16") == 2 * 256 * 2 * 2 * 12 == 24_576
    # State per GDN layer: 32 value heads x 128 x 128 (d_k x d_v) = 524,288 elements, plus the conv
    # state: (2 x 16 x 128 + 32 x 128) channels x (kernel 4 - 1) = 24,576; x 36 layers x 2 bytes.
    assert m.state_bytes_per_sequence() == (32 * 128 * 128 + 8192 * 3) * 36 * 2 == 39_518_208
    assert lr.load_model("qwen3-next").summary()["kv_cache_bytes_per_token"] == 24_576


def test_nemotron_h_blocks_kv_and_state_by_hand():
    m = lr.load_model(NEMOTRON_H)
    # Pattern of 52 blocks: 24 M (Mamba-2), 4 * (attention), 24 - (MLP); each block holds one part.
    assert (m.num_mamba_layers, m.num_attention_layers, m.num_mlp_only_layers) == (24, 4, 24)
    assert (m.num_mixer_layers, m.num_mlp_layers, m.num_dense_layers) == (28, 24, 24)
    assert not m.gated_mlp  # relu^2 MLP: two matrices
    assert m.kv_cache_bytes_per_token("fp16") == 8 * 128 * 2 * 2 * 4 == 16_384
    # Mamba-2 state: 128 heads x 64 x 128 (head_dim x d_state); conv state: (8192 + 2 x 8 x 128) x 3.
    assert m.state_bytes_per_sequence() == (128 * 64 * 128 + 10240 * 3) * 24 * 2 == 51_806_208


def test_deepseek_v32_counts_the_indexer_key_cache():
    m = lr.load_model(DSV32)
    assert m.is_sparse_attention and m.index_topk == 2048
    # Per layer and token: MLA latent 512 + rope key 64 at 2 bytes, plus the indexer's fp8 key
    # (128 bytes) and its fp32 scale (4 bytes); 61 layers.
    assert m.kv_cache_bytes_per_token("fp16") == 61 * ((512 + 64) * 2 + 128 + 4) == 78_324
    # An fp8 KV cache halves the latent, not the (already fp8) indexer key.
    assert m.kv_cache_bytes_per_token("fp8") == 61 * ((512 + 64) * 1 + 132)
    assert m.state_bytes_per_sequence() == 0


@pytest.mark.parametrize("name,entry", [
    ("deepseek-ai/DeepSeek-V3.2", DSV32), ("deepseek-ai/DeepSeek-V3.2-Speciale", DSV32),
    ("deepseek-ai/DeepSeek-V3.2-Exp-Base", DSV32), ("Qwen/Qwen3-Next-80B-A3B-Thinking", QWEN_NEXT),
    ("Qwen/Qwen3-Next-80B-A3B-Base", QWEN_NEXT), ("nvidia/Nemotron-H-8B-Base-8K", NEMOTRON_H)])
def test_ids_resolve(name, entry):
    m = lr.load_model(name)
    assert (m.id, m.catalog_entry) == (name, entry)
    assert m.num_layers == lr.load_model(entry).num_layers
    assert lr.load_model("deepseek-v3.2").id == "deepseek-ai/DeepSeek-V3.2"
    assert lr.load_model("qwen3-next").id == QWEN_NEXT


# ---- parameter counts ---------------------------------------------------------------------------

def test_gated_deltanet_and_mamba_layer_params_by_hand():
    from llmroofline import hybrid

    q = lr.load_model(QWEN_NEXT)
    # in_proj_qkvz: 2048 x (2 x 2048 + 2 x 4096); in_proj_ba: 2048 x 64; out_proj: 4096 x 2048.
    assert hybrid.linear_layer_params(q) == (2048 * 12288 + 2048 * 64 + 4096 * 2048, 8192 * 4 + 64 + 128)
    n = lr.load_model(NEMOTRON_H)
    # in_proj: 4096 x (2 x 8192 + 2 x 8 x 128 + 128); out_proj: 8192 x 4096; conv 10240 x (4 + bias).
    assert hybrid.mamba_layer_params(n) == (4096 * 18560 + 8192 * 4096, 10240 * 5 + 3 * 128 + 8192)


def test_published_totals_and_active_parameters():
    q = lr.load_model(QWEN_NEXT)
    assert q.params_total == pytest.approx(80e9, rel=0.01)  # model card: 80B
    # Model card: 3B activated, a rounded label (the blog: 3.7% of 80B = 2.96B). Per token: 36 GDN
    # layers (33.7M each), 12 attention layers (27.3M), 48 x (10 routed + 1 shared experts of
    # 3 x 2048 x 512, router 2048 x 512) = 3.25B without either embedding table.
    assert q.params_active_counting("none") == pytest.approx(3.25e9, rel=0.005)
    assert q.params_active_counting("none") == pytest.approx(3e9, rel=0.09)
    assert lr.load_model(NEMOTRON_H).params_total == pytest.approx(8e9, rel=0.02)  # label '8B'
    d, v3 = lr.load_model(DSV32), lr.load_model("deepseek-v3")
    # The indexer adds 61 x (1536 x 64 x 128 + 7168 x 128 + 7168 x 64 + LayerNorm 2 x 128) to V3.
    assert d.params_total - v3.params_total == 61 * (1536 * 8192 + 7168 * 128 + 7168 * 64 + 256)


# ---- per-token cost flat in the context --------------------------------------------------------

@pytest.mark.parametrize("name,prefix", [(QWEN_NEXT, "linear/"), (NEMOTRON_H, "mamba/")])
def test_recurrent_decode_cost_is_flat_in_the_context(name, prefix):
    m = lr.load_model(name)
    short, long = (op_totals(decode_ops(m, past), prefix) for past in (1_000, 200_000))
    for key in ("flops", "bytes", "kv_read_bytes", "kv_write_bytes"):
        assert float(short[key]) == float(long[key]) > 0
    # Softmax attention grows with the context meanwhile.
    assert float(op_totals(decode_ops(m, 200_000), "attn/qk")["flops"]) > 100 * float(
        op_totals(decode_ops(m, 1_000), "attn/qk")["flops"])


def test_gated_deltanet_recurrence_by_hand():
    m = lr.load_model(QWEN_NEXT)
    (rec,) = [op for op in decode_ops(m, 5_000, batch=4) if op.name == "linear/recurrence"]
    assert rec.count == 36
    # 7 FLOPs per state element per token (decay 1, retrieval 2, update 2, readout 2) x 524,288 x 4 tokens.
    assert float(rec.flops) == 7 * 524_288 * 4
    # One decode step reads and writes each sequence's state once: 524,288 x 2 bytes x 4 sequences.
    assert float(rec.kv_read_bytes) == float(rec.kv_write_bytes) == 524_288 * 2 * 4
    # A 4096-token prefill runs 64 chunks of 64 tokens: the state goes through memory 64 times.
    (pre,) = [op for op in lr.forward_ops(m, groups=[AttentionGroup(1, 4096, 0)]) if op.name == "linear/recurrence"]
    assert float(pre.kv_read_bytes) == 64 * 524_288 * 2
    assert float(pre.flops) == 7 * 524_288 * 4096


def test_mamba_scan_by_hand():
    m = lr.load_model(NEMOTRON_H)
    (scan,) = [op for op in decode_ops(m, 100, batch=2, sharding=Sharding(tp=2)) if op.name == "mamba/scan"]
    # 5 FLOPs per state element (decay 1, input 2, readout 2); 128 x 64 x 128 elements, half per device.
    assert float(scan.flops) == 5 * 128 * 64 * 128 / 2 * 2
    assert float(scan.kv_read_bytes) == 128 * 64 * 128 / 2 * 2 * 2


# ---- sparse attention -------------------------------------------------------------------------

def test_sparse_decode_caps_the_main_attention_at_top_k_plus_a_linear_indexer():
    m = lr.load_model(DSV32)
    at_k, at_100k, at_50k = (decode_ops(m, past) for past in (2047, 100_000, 50_000))  # past 2047: 2048 positions
    for prefix in ("attn/qk", "attn/softmax", "attn/sv"):
        assert float(op_totals(at_100k, prefix)["flops"]) == float(op_totals(at_k, prefix)["flops"]) > 0
        assert float(op_totals(at_100k, prefix)["kv_read_bytes"]) == float(op_totals(at_k, prefix)["kv_read_bytes"])
    # Absorbed MLA decode: QK over 512 + 64 dims for 128 heads and 2048 positions, 61 layers.
    assert float(op_totals(at_100k, "attn/qk")["flops"]) == 61 * 2 * 128 * 576 * 2048
    # The indexer scores all 100,001 positions: 64 heads x (2 x 128 + 3) FLOPs each, reading 132 bytes each.
    score = op_totals(at_100k, "attn/indexer_score")
    assert float(score["flops"]) == 61 * 100_001 * 64 * 259
    assert float(score["kv_read_bytes"]) == 61 * 100_001 * 132
    # ... linear in the context: doubling the past (almost) doubles it.
    half = float(op_totals(at_50k, "attn/indexer_score")["flops"])
    assert float(score["flops"]) / half == pytest.approx(100_001 / 50_001)


def test_sparse_prefill_caps_pairs_at_top_k_per_query():
    m = lr.load_model(DSV32)
    ops = lr.forward_ops(m, groups=[AttentionGroup(1, 8192, 0)])
    # Query i sees min(i, 2048) positions: 2048 x 2049 / 2 + (8192 - 2048) x 2048 = 14,681,088 pairs;
    # sparse MLA runs in MQA mode in prefill too: QK over the 512 + 64 latent dims for 128 heads,
    # and no per-head decompression of the cache (no kv_b_proj).
    pairs = 2048 * 2049 // 2 + (8192 - 2048) * 2048
    assert float(op_totals(ops, "attn/qk")["flops"]) == 61 * 2 * 128 * 576 * pairs
    assert float(op_totals(ops, "attn/sv")["flops"]) == 61 * 2 * 128 * 512 * pairs
    assert not [op for op in ops if op.name.startswith("attn/kv_b_proj")]
    # The absorbed projections run for each of the 8192 new tokens: 128 heads x 128 x 512 MACs.
    assert float(op_totals(ops, "attn/q_absorb")["flops"]) == 61 * 8192 * 2 * 128 * 128 * 512
    # The indexer still sees every causal pair: 8192 x 8193 / 2.
    assert float(op_totals(ops, "attn/indexer_score")["flops"]) == 61 * 8192 * 8193 / 2 * 64 * 259


def test_closed_form_decode_sum_matches_the_loop_across_top_k(round_hw):
    for name in (DSV32, QWEN_NEXT):
        dep = lr.make_deployment(lr.load_model(name), round_hw, tp=8 if name == DSV32 else 1)
        eff = Efficiency(gemm_compute=0.7, memory=0.8, attn_decode_memory=0.6, overlap_loss=0.3, step_overhead_s=1e-4)
        for batch, lo, hi in [(1, 2000, 2100), (16, 1, 40), (3, 5000, 5004)]:
            closed = float(decode_steps_time(dep, eff, batch, lo, hi))
            steps = np.arange(lo, hi + 1)
            loop = float(pass_time(dep, eff, [AttentionGroup(batch, 1, steps - 1)]).sum())
            assert closed == pytest.approx(loop, rel=1e-9), (name, batch, lo, hi)


# ---- memory and method 1 --------------------------------------------------------------------

def test_memory_counts_state_per_sequence_and_kv_per_token():
    m = lr.load_model(QWEN_NEXT)
    state = m.state_bytes_per_sequence()
    assert float(kv_bytes_per_sequence(m, 0, "fp16")) == state
    assert float(kv_bytes_per_sequence(m, 10_000, "fp16")) == 24_576 * 10_000 + state
    # fp8 halves the KV cache, not the 16-bit state; tp = 2 halves both (heads split).
    assert float(kv_bytes_per_sequence(m, 10_000, "fp8")) == 12_288 * 10_000 + state
    assert float(kv_bytes_per_sequence(m, 10_000, "fp16", tp=2)) == (24_576 * 10_000 + state) / 2
    # Far more long sequences fit than for an all-attention model with the same 2-KV-head layers.
    h200 = lr.load_hardware("H200-SXM-141GB")
    b = float(max_batch(m, h200, context=131_072, weight_dtype="fp8", kv_dtype="fp16"))
    per_seq = 24_576 * 131_072 + state  # 3.26 GB: tens of sequences beside 80 GB of fp8 weights
    assert 0 < b <= (141e9 / per_seq)
    assert b >= 10


def test_method_one_adds_the_recurrence_and_the_indexer():
    q = lr.load_model(QWEN_NEXT)
    a, b = (whole_model(q, 1, 1, past) for past in (1_000, 2_000))
    # Only the 12 attention layers grow: 1000 more pairs x 16 heads x (256 + 256) x 2 FLOPs each.
    assert float(b.flops - a.flops) == 12 * 1000 * 16 * 512 * 2
    assert float(b.kv_bytes - a.kv_bytes) == 1000 * 24_576
    d = lr.load_model(DSV32)
    x, y = (whole_model(d, 1, 1, past) for past in (10_000, 20_000))
    # Beyond top-k only the indexer grows: 10,000 more positions x 64 x 128 x 2 FLOPs, 132 bytes each.
    assert float(y.flops - x.flops) == 61 * 10_000 * 64 * 128 * 2
    assert float(y.kv_bytes - x.kv_bytes) == 61 * 10_000 * 132


def test_long_context_decode_grows_slowly_for_hybrids():
    """Batch-1 TPOT added by going from 4k to 128k context: reading 124k more cached tokens, at
    24,576 bytes each for the hybrid and 64 x 8 x 128 x 2 x 2 = 262,144 for Qwen3-32B (10.7x),
    so the hybrid's increase is about a tenth of the dense model's."""
    def added(name):
        t = [float(lr.estimate(name, "H200-SXM-141GB", batch=1, input_len=n, output_len=64, calibration="none").tpot_s)
             for n in (4096, 131_072)]
        return t[1] - t[0]
    assert lr.load_model("Qwen/Qwen3-32B").kv_cache_bytes_per_token() == 262_144
    assert added(QWEN_NEXT) / added("Qwen/Qwen3-32B") == pytest.approx(24_576 / 262_144, rel=0.25)


# ---- attention sinks and alternating windows (gpt-oss) ---------------------------------------

def test_gpt_oss_sinks_and_alternating_128_token_windows():
    m = lr.load_model("gpt-oss-120b")
    assert (m.num_sliding_layers, m.num_global_layers, m.sliding_window) == (18, 18, 128)
    assert m.attention_sinks
    # One learned sink logit per query head per layer.
    sinks = m.num_layers * m.num_heads
    assert m.weight_elements()["attention"][1] == m.num_layers * ((64 + 2 * 8) * 64 + 64)  # qkv bias + sinks
    assert sinks == 36 * 64
    # A sliding layer reads at most 128 positions at any context; a global layer all of them.
    ops = decode_ops(m, 100_000)
    local = [op for op in ops if op.name == "attn/qk_local"][0]
    glob = [op for op in ops if op.name == "attn/qk"][0]
    assert float(local.flops) * 100_001 == pytest.approx(float(glob.flops) * 128)
    # The sink adds one exp and one add per head to each softmax denominator: 2 x 64 x 36 = 4,608
    # FLOPs per token, below a millionth of the forward pass; the model leaves it out on purpose.
    per_token = float(op_totals(decode_ops(m, 0))["flops"])
    assert 2 * sinks / per_token < 1e-6


# ---- config parsing ----------------------------------------------------------------------------

def _tiny_hybrid(**extra):
    cfg = {"model_type": "nemotron_h", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
           "num_key_value_heads": 2, "vocab_size": 100, "intermediate_size": 128, "mlp_hidden_act": "relu2",
           "hybrid_override_pattern": "M-*-", "mamba_num_heads": 4, "mamba_head_dim": 32, "ssm_state_size": 16,
           "n_groups": 2, "conv_kernel": 4}
    cfg.update(extra)
    return cfg


def test_tiny_hybrid_configs_parse():
    m = model_from_config(_tiny_hybrid(), model_id="tiny")
    assert (m.num_mamba_layers, m.num_attention_layers, m.num_mlp_only_layers, m.mamba_chunk_size) == (1, 1, 2, 256)
    q = model_from_config({"model_type": "qwen3_next", "hidden_size": 64, "num_hidden_layers": 8,
                           "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
                           "full_attention_interval": 4, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                           "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_conv_kernel_dim": 4,
                           "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                           "intermediate_size": 64}, model_id="tiny-next")
    assert (q.num_attention_layers, q.num_linear_layers, q.attn_output_gate, q.num_moe_layers) == (2, 6, True, 8)
    # The gate doubles q_proj: 64 x (2 x 4 + 2 x 2) x 16 + 4 x 16 x 64 (o_proj), + q/k norms.
    assert q.attention_params() == 64 * (8 + 4) * 16 + 4 * 16 * 64 + 2 * 16


@pytest.mark.parametrize("extra,words", [
    ({"hybrid_override_pattern": "M-E-"}, "hybrid_override_pattern"),
    ({"hybrid_override_pattern": "M-*"}, "one character per layer"),
    ({"ssm_state_size": None}, "ssm_state_size"),
    ({"mamba_num_heads": 3}, "n_groups"),
])
def test_bad_hybrid_configs_are_clear_errors(extra, words):
    with pytest.raises(InputError, match=words):
        model_from_config(_tiny_hybrid(**extra), model_id="tiny")


def test_recurrent_layers_never_exceed_the_model():
    with pytest.raises(InputError, match="exceed"):
        lr.ModelSpec(id="x", model_type="x", num_layers=2, hidden_size=8, num_heads=1, num_kv_heads=1, head_dim=8,
                     intermediate_size=8, vocab_size=8, num_linear_layers=3, linear_num_key_heads=1,
                     linear_num_value_heads=1, linear_key_head_dim=8, linear_value_head_dim=8, linear_conv_kernel=4)
    assert math.isinf(lr.load_model("llama2-7b").attention_span)


def test_falcon_h1_runs_mamba_beside_attention_in_every_layer():
    # Falcon-H1-7B's sizes as its config states them (44 layers, 12 query / 2 KV heads of 128,
    # Mamba-2 24 heads of 128 with state 256 in one group); intermediate and vocabulary sizes are
    # placeholders for this check.
    cfg = {"model_type": "falcon_h1", "hidden_size": 3072, "num_hidden_layers": 44, "num_attention_heads": 12,
           "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 8192, "vocab_size": 1000,
           "mamba_d_ssm": 3072, "mamba_n_heads": 24, "mamba_d_head": "auto", "mamba_n_groups": 1,
           "mamba_d_state": 256, "mamba_d_conv": 4}
    m = model_from_config(cfg, model_id="falcon-h1-like")
    assert (m.num_attention_layers, m.num_mamba_layers, m.num_dense_layers, m.mamba_head_dim) == (44, 44, 44, 128)
    # Both caches: KV 2 x 128 x 2 x 2 bytes x 44 per token, and 24 x 128 x 256 state + conv
    # (3072 + 2 x 256) x 3 per layer and sequence.
    assert m.kv_cache_bytes_per_token() == 2 * 128 * 2 * 2 * 44
    assert m.state_bytes_per_sequence() == (24 * 128 * 256 + 3584 * 3) * 44 * 2
    ops = decode_ops(m, 1000)
    assert {op.name: op.count for op in ops}["mamba/scan"] == 44 == {op.name: op.count for op in ops}["attn/qk"]
    with pytest.raises(InputError, match="mamba_d_ssm"):
        model_from_config({**cfg, "mamba_d_ssm": 3001}, model_id="bad")


def test_estimates_say_what_the_hybrid_model_assumes():
    q = lr.estimate(QWEN_NEXT, "H200-SXM-141GB", tp=2, batch=1, input_len=1024, output_len=16)
    assert any("36 of 48 layers keep a fixed recurrent state (39.5 MB per sequence" in w for w in q.warnings)
    d = lr.estimate(DSV32, "H200-SXM-141GB", tp=8, batch=1, input_len=1024, output_len=16)
    assert any("at most 2,048 cached tokens" in w for w in d.warnings)
    plain = lr.estimate("llama3.1-8b", "H200-SXM-141GB", batch=1, input_len=1024, output_len=16)
    assert not any("recurrent" in w or "sparse" in w for w in plain.warnings)


def test_jamba_mamba1_layers_by_hand():
    from llmroofline import hybrid

    m = lr.load_model("ai21labs/Jamba-v0.1")
    # attn_layer_period 8, offset 4: layers 4, 12, 20, 28 attend, the other 28 are Mamba-1;
    # expert_layer_period 2, offset 1: the 16 odd layers are MoE, the 16 even ones dense.
    assert (m.num_attention_layers, m.num_mamba_layers, m.num_moe_layers, m.num_dense_layers) == (4, 28, 16, 16)
    # Mamba-1 with d_inner = 2 x 4096 = 8192 channels: in_proj 4096 x 16384, out_proj 8192 x 4096,
    # x_proj 8192 x (256 + 2 x 16), dt_proj 256 x 8192; conv 8192 x (4 + bias), A_log 8192 x 16,
    # D and the dt bias 8192 each.
    assert hybrid.mamba_layer_params(m) == (4096 * 16384 + 8192 * 4096 + 8192 * 288 + 256 * 8192,
                                            8192 * 5 + 8192 * 16 + 2 * 8192)
    assert m.kv_cache_bytes_per_token() == 4 * 8 * 128 * 2 * 2 == 16_384
    # State per layer: 8192 channels x d_state 16, plus the conv's last 3 inputs of 8192.
    assert m.state_bytes_per_sequence() == 28 * (8192 * 16 + 8192 * 3) * 2 == 8_716_288
    (scan,) = [op for op in decode_ops(m, 10_000) if op.name == "mamba/scan"]
    assert float(scan.flops) == 7 * 8192 * 16  # decay exp(dt A) per element (3), input (2), readout (2)
    assert lr.load_model("ai21labs/AI21-Jamba-1.5-Mini").catalog_entry == "ai21labs/Jamba-v0.1"
