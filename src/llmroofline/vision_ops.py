"""Operators of a vision encoder (vision.VisionSpec): the prefill cost of a request's images.

Per device after tensor parallelism; the number of images is an array that broadcasts over the
workload grid. FLOPs, not MACs: a multiply-add is 2 FLOPs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .operators import (
    ACT_BYTES,
    ATTN_PREFILL,
    ZERO,
    Operator,
    _all_reduce,
    _elementwise,
    _linear,
    _mlp_ops,
)
from .vision import VISION_BYTES, VisionSpec


def vision_ops(v: VisionSpec, images: Any, *, image_size: Any = None, tp: int = 1) -> list[Operator]:
    """Operators encoding `images` images (an array over the workload grid) on one device.

    Layers shard their heads and MLP width over tp devices (two all-reduces per layer); the
    patch embedding and the projector are replicated. Attention is bidirectional within an image
    (or tile, or window): per head, a layer computes pairs = Σ over sequences of their length²
    (query, key) scores, 2·pairs·head_dim FLOPs for QK and as many for SV.
    """
    lay = v.layout(image_size)
    n_img = np.asarray(images, dtype=float)
    sequences = n_img * lay.tiles
    tokens = sequences * lay.sequence  # encoder rows (patches, and a class token per tile)
    patches = sequences * (lay.sequence - int(v.class_token))
    merged = n_img * lay.tokens
    d, L = v.hidden_size, v.depth
    heads = v.num_heads / tp
    w = VISION_BYTES
    norm_elems = d * (2 if v.layernorm else 1)
    ops = [_linear("vision/patch_embed", patches, v.patch_inputs, d, w, "fp16", 1)]
    ops.append(_elementwise("vision/attn_norm", tokens, d, 5.0, 2.0, 2.0, L, weight_elems=norm_elems))
    ops.append(_linear("vision/qkv_proj", tokens, d, 3 * d / tp, w, "fp16", L))
    for suffix, pairs_per_seq, count in (("", lay.full_pairs, L - v.window_layers),
                                         ("_window", lay.window_pairs, v.window_layers)):
        if count:
            ops += _vision_attention(v, sequences * pairs_per_seq, tokens, heads, lay.sequence, count, suffix)
    ops.append(_linear("vision/o_proj", tokens, d / tp, d, w, "fp16", L))
    if tp > 1:
        ops.append(_all_reduce("vision/attn_all_reduce", tokens, d, tp, L))
    ops.append(_elementwise("vision/mlp_norm", tokens, d, 5.0, 2.0, 2.0, L, weight_elems=norm_elems))
    ops += _mlp_ops(d, v.gated_mlp, "vision/mlp", tokens, v.intermediate_size / tp, w, "fp16", L)
    if tp > 1:
        ops.append(_all_reduce("vision/mlp_all_reduce", tokens, d, tp, L))
    if v.post_norm:
        ops.append(_elementwise("vision/post_norm", tokens, d, 5.0, 1.0, 1.0, 1, weight_elems=norm_elems))
    if v.projector_norm:
        ops.append(_elementwise("vision/projector_norm", patches, d, 5.0, 1.0, 1.0, 1, weight_elems=v.projector_norm))
    for i, (n_in, n_out) in enumerate(v.projector):
        ops.append(_linear(f"vision/projector_{i}", merged, n_in, n_out, w, "fp16", 1))
    return ops


def _vision_attention(v: VisionSpec, pairs, tokens, heads: float, sequence: int, count: int,
                      suffix: str) -> list[Operator]:
    """Fused bidirectional attention: QK (2·pairs·head_dim per head), softmax (5 per score), SV
    (2·pairs·head_dim per head); reads Q, K and V once and writes the output (16 bit)."""
    dh = v.head_dim
    qkv_bytes = tokens * (heads * dh * ACT_BYTES)
    common: dict[str, Any] = dict(kind=ATTN_PREFILL, precision="fp16", count=count, weight_bytes=ZERO,
                                  kv_write_bytes=ZERO, gemm_rows=np.asarray(float(sequence)))
    return [
        Operator(name=f"vision/attn_qk{suffix}", flops=pairs * (2.0 * heads * dh), act_read_bytes=qkv_bytes,
                 act_write_bytes=ZERO, kv_read_bytes=qkv_bytes, **common),
        Operator(name=f"vision/attn_softmax{suffix}", flops=pairs * (5.0 * heads), act_read_bytes=ZERO,
                 act_write_bytes=ZERO, kv_read_bytes=ZERO, **common),
        Operator(name=f"vision/attn_sv{suffix}", flops=pairs * (2.0 * heads * dh), act_read_bytes=ZERO,
                 act_write_bytes=qkv_bytes, kv_read_bytes=qkv_bytes, **common),
    ]
