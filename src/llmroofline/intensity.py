"""The LLMRoofline article's method 1: the whole model as one kernel.

AI = FLOPs / (weight bytes + KV-cache bytes) of a forward pass; attainable FLOP/s =
min(peak, AI × bandwidth). As in the article, embeddings, lm_head and activations are left out,
an MoE reads the weights of all its experts and computes top-k of them per token, and GQA
shrinks the KV cache but not the attention FLOPs. Tensor parallelism divides FLOPs and bytes
alike, so the intensity is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .hybrid import indexer_key_bytes, recurrent_flops_per_token
from .model import ModelSpec
from .operators import attended_pairs, cached_positions
from .precision import bytes_per_element


@dataclass(frozen=True)
class WholeModel:
    """FLOPs and bytes of one forward pass of all decoder layers (per device), arrays."""

    flops: np.ndarray
    weight_bytes: np.ndarray
    kv_bytes: np.ndarray

    @property
    def bytes(self) -> np.ndarray:
        return self.weight_bytes + self.kv_bytes

    @property
    def intensity(self) -> np.ndarray:
        return self.flops / self.bytes


def decoder_params(model: ModelSpec) -> tuple[int, int]:
    """(stored, active per token) parameters of all decoder layers, without embeddings."""
    m = model
    stored = m.mixer_params() + m.norm_params() + m.num_dense_layers * m.dense_mlp_params()
    active = stored
    if m.is_moe:
        stored += m.num_moe_layers * m.moe_layer_params(active=False)
        active += m.num_moe_layers * m.moe_layer_params(active=True)
    return stored, active


def whole_model(model: ModelSpec, batch, new, past, *, weight_dtype: Any = None, kv_dtype: str = "fp16",
                tp: int = 1) -> WholeModel:
    """Method 1 for `batch` sequences adding `new` tokens after `past` cached ones.

    Decode: new = 1, past = KV length - 1. Prefill: past = 0, new = prompt length. Weights of
    the decoder layers at each module group's precision (weight_dtype: None = as the checkpoint
    stores them, a precision name for the linear layers, or a WeightPrecision).
    """
    m = model
    b = np.asarray(batch, dtype=float)
    new = np.asarray(new, dtype=float)
    _, active = decoder_params(m)
    heads_dims = m.num_heads * (m.q_head_dim + m.attn_v_head_dim)
    if m.is_mla:  # attention in the latent space: QK over kv_lora+rope, SV over kv_lora
        heads_dims = m.num_heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    span = m.attention_span  # sparse attention: each query sees at most index_topk positions
    pairs = m.num_global_layers * attended_pairs(new, past, span)
    positions = m.num_global_layers * cached_positions(new, past, span)
    if m.num_sliding_layers:
        w = float(m.sliding_window)
        pairs = pairs + m.num_sliding_layers * attended_pairs(new, past, w)
        positions = positions + m.num_sliding_layers * cached_positions(new, past, w)
    flops = 2.0 * b * new * active + 2.0 * b * pairs * heads_dims
    kv = b * positions * m.kv_elements_per_token_per_layer * bytes_per_element(kv_dtype)
    if m.is_sparse_attention:  # the indexer scores every cached position, reading its fp8 key
        flops = flops + 2.0 * b * m.num_attention_layers * attended_pairs(new, past, np.inf) * (
            m.index_n_heads * m.index_head_dim)
        kv = kv + b * m.num_attention_layers * cached_positions(new, past, np.inf) * indexer_key_bytes(m)
    if m.num_linear_layers or m.num_mamba_layers:  # per token a fixed recurrence; the state read and written once
        flops = flops + b * new * recurrent_flops_per_token(m)
        kv = kv + b * 2.0 * m.state_bytes_per_sequence()
    by_group = m.weight_bytes_by_group(weight_dtype)
    # The decoder layers alone: not the tables, the final norm or a vision tower.
    decoder = sum(by_group.values()) - by_group["embeddings"] - m.hidden_size * 2.0 - by_group["vision"]
    weights = np.asarray(decoder, dtype=float)
    return WholeModel(flops=flops / tp, weight_bytes=weights / tp + 0 * flops, kv_bytes=kv / tp)
