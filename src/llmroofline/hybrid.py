"""Sizes of the token mixers that are not softmax attention over a growing KV cache.

- Gated DeltaNet linear attention (Qwen3-Next; Yang, Kautz & Hatamizadeh, "Gated Delta Networks",
  arXiv:2412.06464): per value head a d_k x d_v state S, per token
  S <- a·S + b·k (v - S^T k)^T, output S^T q.
- Mamba-2 (Dao & Gu, "Transformers are SSMs", arXiv:2405.21060), as in Nemotron-H: per head a
  head_dim x d_state state h, per token h <- exp(dt·A)·h + dt·x B^T, output h C + D·x. Mamba-1
  (Gu & Dao, arXiv:2312.00752), as in Jamba, is the same with one head per channel (head_dim 1),
  a decay per state element and dt, B, C from a separate x_proj.
- DeepSeek sparse attention (DeepSeek-V3.2-Exp, github.com/deepseek-ai/DeepSeek-V3.2-Exp): a small
  fp8 "lightning indexer" scores every cached token for each query and MLA attends to the top k.

Each recurrent layer keeps a fixed state per sequence (recurrent state plus the last K-1 inputs of
its short causal convolution) instead of K and V per token, so its cost per token does not depend
on the context length. Pure functions of a ModelSpec; element counts unless a name says bytes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import ModelSpec

# Recurrent and convolution states are kept in the model's 16-bit dtype (vLLM's default
# mamba_ssm_cache_dtype "auto"); an fp8 KV cache does not shrink them.
STATE_BYTES = 2.0
# Tokens per chunk of Gated DeltaNet's chunked prefill kernel (flash-linear-attention's
# chunk_gated_delta_rule works on 64-token chunks); the state is read and written once per chunk.
GDN_CHUNK_TOKENS = 64
# FLOPs per state element per token. Gated DeltaNet, per value head (d_k x d_v state S):
# decay a·S (1), retrieval S^T k (2), rank-one update S += k·u^T (2), readout S^T q (2) = 7.
# Mamba-2, per head (head_dim x d_state state h): decay (1), input dt·x B^T added (2), readout h C (2) = 5.
# Mamba-1 (Jamba) has a decay per state element, exp(dt·A) with A per channel and state: 1 multiply
# and 1 exp more than Mamba-2's scalar decay per head = 7.
GDN_FLOPS_PER_STATE_ELEMENT = 7.0
MAMBA_FLOPS_PER_STATE_ELEMENT = 5.0
MAMBA1_FLOPS_PER_STATE_ELEMENT = 7.0
# Mamba-1's selective-scan kernel walks a sequence in chunks of 2048 tokens (mamba-ssm
# selective_scan: kChunkSize = 128 threads x 16 items), keeping the state on chip within one.
MAMBA1_CHUNK_TOKENS = 2048
# The sparse-attention indexer caches one fp8 key per token and layer with one fp32 scale per
# 128 elements (DeepSeek-V3.2-Exp inference code, kernel.py act_quant block 128): 128 + 4 bytes.
INDEX_KEY_BYTES_PER_ELEMENT = 1.0
INDEX_SCALE_BLOCK = 128
INDEX_SCALE_BYTES = 4.0


# ---- Gated DeltaNet (linear attention) -------------------------------------------------------

def linear_key_dim(m: ModelSpec) -> int:
    return m.linear_num_key_heads * m.linear_key_head_dim


def linear_value_dim(m: ModelSpec) -> int:
    return m.linear_num_value_heads * m.linear_value_head_dim


def linear_conv_dim(m: ModelSpec) -> int:
    """Channels of the short convolution: q, k (key_dim each) and v (value_dim)."""
    return 2 * linear_key_dim(m) + linear_value_dim(m)


def linear_in_proj_width(m: ModelSpec) -> int:
    """in_proj_qkvz: q, k, v and the output gate z."""
    return 2 * linear_key_dim(m) + 2 * linear_value_dim(m)


def linear_layer_params(m: ModelSpec) -> tuple[int, int]:
    """(matrix, vector) elements of one Gated DeltaNet layer: in_proj_qkvz, in_proj_ba (one beta
    and one decay per value head) and out_proj; conv weights, A_log, dt_bias and the gated norm."""
    h, nv = m.hidden_size, m.linear_num_value_heads
    matrix = h * linear_in_proj_width(m) + h * 2 * nv + linear_value_dim(m) * h
    vectors = linear_conv_dim(m) * m.linear_conv_kernel + 2 * nv + m.linear_value_head_dim
    return matrix, vectors


def linear_state_elements(m: ModelSpec) -> int:
    """Recurrent state of one layer per sequence: a d_k x d_v matrix per value head."""
    return m.linear_num_value_heads * m.linear_key_head_dim * m.linear_value_head_dim


def linear_conv_state_elements(m: ModelSpec) -> int:
    return linear_conv_dim(m) * max(m.linear_conv_kernel - 1, 0)


# ---- Mamba-2 ---------------------------------------------------------------------------------

def mamba_inner(m: ModelSpec) -> int:
    return m.mamba_num_heads * m.mamba_head_dim


def mamba_conv_dim(m: ModelSpec) -> int:
    """Channels of the short convolution: x (inner width) and, in Mamba-2, B and C (groups x
    d_state each)."""
    if m.mamba_dt_rank:
        return mamba_inner(m)
    return mamba_inner(m) + 2 * m.mamba_groups * m.ssm_state_size


def mamba_in_proj_width(m: ModelSpec) -> int:
    """in_proj: the gate z and x, and in Mamba-2 also B, C and one dt per head."""
    if m.mamba_dt_rank:
        return 2 * mamba_inner(m)
    return 2 * mamba_inner(m) + 2 * m.mamba_groups * m.ssm_state_size + m.mamba_num_heads


def mamba1_x_proj_width(m: ModelSpec) -> int:
    """Mamba-1's x_proj: dt (low rank), B and C from x."""
    return m.mamba_dt_rank + 2 * m.ssm_state_size


def mamba_layer_params(m: ModelSpec) -> tuple[int, int]:
    """(matrix, vector) elements of one Mamba layer. Mamba-2: in_proj and out_proj; conv weights
    and bias, A_log, D, dt_bias and the gated norm. Mamba-1: in_proj, x_proj, dt_proj and out_proj;
    conv weights and bias, A_log (one per channel and state), D and the dt_proj bias."""
    h, di = m.hidden_size, mamba_inner(m)
    matrix = h * mamba_in_proj_width(m) + di * h
    if m.mamba_dt_rank:
        matrix += di * mamba1_x_proj_width(m) + m.mamba_dt_rank * di
        vectors = mamba_conv_dim(m) * (m.mamba_conv_kernel + 1) + di * m.ssm_state_size + 2 * di
        return matrix, vectors
    vectors = mamba_conv_dim(m) * (m.mamba_conv_kernel + 1) + 3 * m.mamba_num_heads + di
    return matrix, vectors


def mamba_flops_per_state_element(m: ModelSpec) -> float:
    return MAMBA1_FLOPS_PER_STATE_ELEMENT if m.mamba_dt_rank else MAMBA_FLOPS_PER_STATE_ELEMENT


def mamba_state_elements(m: ModelSpec) -> int:
    """SSM state of one layer per sequence: head_dim x d_state per head."""
    return m.mamba_num_heads * m.mamba_head_dim * m.ssm_state_size


def mamba_conv_state_elements(m: ModelSpec) -> int:
    return mamba_conv_dim(m) * max(m.mamba_conv_kernel - 1, 0)


# ---- both ------------------------------------------------------------------------------------

def recurrent_layer_params(m: ModelSpec) -> tuple[int, int]:
    """(matrix, vector) elements of all linear-attention and Mamba layers together."""
    lm, lv = linear_layer_params(m) if m.num_linear_layers else (0, 0)
    mm, mv = mamba_layer_params(m) if m.num_mamba_layers else (0, 0)
    return (m.num_linear_layers * lm + m.num_mamba_layers * mm,
            m.num_linear_layers * lv + m.num_mamba_layers * mv)


def state_bytes_per_sequence(m: ModelSpec) -> float:
    """Bytes of recurrent and convolution state per sequence over all recurrent layers."""
    lin = linear_state_elements(m) + linear_conv_state_elements(m) if m.num_linear_layers else 0
    mam = mamba_state_elements(m) + mamba_conv_state_elements(m) if m.num_mamba_layers else 0
    return (m.num_linear_layers * lin + m.num_mamba_layers * mam) * STATE_BYTES


def recurrent_flops_per_token(m: ModelSpec) -> float:
    """FLOPs of the recurrences (state update and readout) of all layers for one token."""
    return (m.num_linear_layers * GDN_FLOPS_PER_STATE_ELEMENT * linear_state_elements(m)
            + m.num_mamba_layers * mamba_flops_per_state_element(m) * mamba_state_elements(m))


# ---- DeepSeek sparse attention ------------------------------------------------------------------

def indexer_key_bytes(m: ModelSpec) -> float:
    """Bytes the indexer caches per token per attention layer (0 without sparse attention)."""
    if not m.index_topk:
        return 0.0
    scales = math.ceil(m.index_head_dim / INDEX_SCALE_BLOCK)
    return m.index_head_dim * INDEX_KEY_BYTES_PER_ELEMENT + scales * INDEX_SCALE_BYTES


def indexer_params(m: ModelSpec) -> tuple[int, int]:
    """(matrix, vector) elements of one layer's indexer: query from the q latent (wq_b), one
    shared key (wk), per-head weights (weights_proj); the key's LayerNorm."""
    if not m.index_topk:
        return 0, 0
    q_in = m.q_lora_rank or m.hidden_size
    n, d, h = m.index_n_heads, m.index_head_dim, m.hidden_size
    return q_in * n * d + h * d + h * n, 2 * d
