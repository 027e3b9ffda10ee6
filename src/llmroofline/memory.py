"""Memory on each device: weights, KV cache and activation workspace against capacity.

Capacity is what a runtime can allocate: HBM sizes on datasheets are binary (an "80 GB" H100 or
A100 holds 80 GiB = 85.9e9 bytes; nvidia-smi reports 81,559-81,920 MiB), GDDR boards expose about
the decimal figure with ECC on (an L40S "48 GB" reports 46,068 MiB = 48.3e9 bytes); less 1 GiB
for the CUDA context, library workspaces and allocator slack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .device_stack import DeviceStack, per_member
from .errors import InputError
from .hardware import Hardware
from .hybrid import indexer_key_bytes, indexer_params, linear_in_proj_width, mamba_in_proj_width
from .model import ModelSpec
from .operators import ACT_BYTES, SMALL_WEIGHT_BYTES
from .precision import bytes_per_element

GB = 1e9
GIB = 2.0**30
RESERVED_BYTES = 1.0 * GIB  # CUDA context, cuBLAS/NCCL workspaces, allocator slack


def usable_memory(hw: Hardware) -> float:
    """Bytes a runtime can allocate on the device (see the module docstring); per member of a device stack."""
    if isinstance(hw, DeviceStack):
        return per_member(hw, usable_memory)
    unit = GIB if hw.memory_type.upper().startswith("HBM") else GB
    return hw.memory_bytes / GB * unit - RESERVED_BYTES
PREFILL_CHUNK_TOKENS = 16384  # tokens in one prefill pass for workspace sizing (chunked prefill)
LOGIT_BYTES = 4.0  # logits are kept in fp32 for sampling


@dataclass(frozen=True)
class MemoryUse:
    """Bytes per device; arrays over the workload grid."""

    weights: np.ndarray
    kv_cache: np.ndarray
    activations: np.ndarray
    capacity: float

    @property
    def total(self) -> np.ndarray:
        return self.weights + self.kv_cache + self.activations

    @property
    def fits(self) -> np.ndarray:
        return self.total <= self.capacity

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights_gb": self.weights / GB,
            "kv_cache_gb": self.kv_cache / GB,
            "activations_gb": self.activations / GB,
            "total_gb": self.total / GB,
            "capacity_gb": self.capacity / GB,
            "fits": self.fits,
        }


def weights_per_device(model: ModelSpec, weight_dtype: Any = None, tp: int = 1, pp: int = 1, ep: int = 1,
                       redundant_experts: int = 0) -> float:
    """Weight bytes held by the busiest device.

    weight_dtype: None (as the checkpoint stores them), a precision name for the linear layers,
    or a WeightPrecision. Each module group counts at its own bytes per element.
    Layers split over pp stages (ceil) and their matrices over tp; KV projections are
    replicated when tp exceeds the KV heads; MLA's down-projections are replicated; the
    embedding and lm_head (vocab-parallel) sit on the first and last stage. Routed experts are
    spread over max(tp, ep) devices (ep > tp: attention is data-parallel, experts are not), with
    `redundant_experts` extra copies (EPLB) on top of the model's routed experts. A vision tower
    counts whole (over tp) on the busiest device.
    """
    m = model
    wp = m.weight_precision(weight_dtype)
    # Kept by identity of the model and its formats: an estimate asks once, a search hundreds of times.
    key = (id(m), id(wp), tp, pp, ep, redundant_experts, type(tp), type(pp), type(ep), type(redundant_experts))
    hit = _WEIGHTS.get(key)
    if hit is not None and hit[0] is m and hit[1] is wp:
        return hit[2]
    if len(_WEIGHTS) >= 4096:
        _WEIGHTS.clear()
    out = _weights_per_device(m, wp, tp, pp, ep, redundant_experts)
    _WEIGHTS[key] = (m, wp, out)  # the objects are kept, so that their ids stay their own
    return out


_WEIGHTS: dict[tuple, tuple[ModelSpec, Any, float]] = {}


def _weights_per_device(m: ModelSpec, wp: Any, tp: int, pp: int, ep: int, redundant_experts: int) -> float:
    by_group = m.weight_bytes_by_group(wp)
    wa = wp.bytes("attention")
    emb = by_group["embeddings"] + m.hidden_size * SMALL_WEIGHT_BYTES  # tables and the final norm
    vision = by_group["vision"]  # a vision tower: sharded over tp, held by the first stage
    layers = sum(by_group.values()) - emb - vision
    experts = by_group["experts"]
    copies = (m.num_experts + redundant_experts) / m.num_experts if m.is_moe else 1.0
    per_layer = ((layers - experts) / tp + experts * copies / max(tp, ep)) / m.num_layers
    attention_share = m.num_attention_layers / m.num_layers  # 1 unless linear-attention/Mamba layers replace some
    if m.is_mla:
        replicated = m.hidden_size * (m.kv_lora_rank + m.qk_rope_head_dim + m.q_lora_rank) * wa
        replicated += indexer_params(m)[0] * wa  # the sparse-attention indexer runs replicated
        per_layer += replicated * (1 - 1 / tp) * attention_share
    else:
        extra_heads = math.ceil(m.num_kv_heads / tp) - m.num_kv_heads / tp
        per_layer += 2 * m.hidden_size * m.head_dim * extra_heads * wa * attention_share
    stage_layers = math.ceil(m.num_layers / pp)
    emb_share = emb / tp / (2 if pp > 1 and not m.tie_word_embeddings else 1)
    return per_layer * stage_layers + emb_share + vision / tp


def kv_bytes_per_sequence(model: ModelSpec, length, kv_dtype: str, tp: int = 1, pp: int = 1):
    """KV-cache bytes per sequence of `length` tokens on one device (window layers keep at most
    the window), plus the fixed recurrent state of linear-attention and Mamba layers (heads split
    over tp) and the sparse-attention indexer's keys."""
    m = model
    length = np.asarray(length, dtype=float)
    if m.is_mla:
        per_layer_token = m.kv_elements_per_token_per_layer  # replicated latent
    else:
        per_layer_token = 2 * math.ceil(m.num_kv_heads / tp) * m.head_dim
    frac = math.ceil(m.num_layers / pp) / m.num_layers
    tokens = m.num_global_layers * length + m.num_sliding_layers * np.minimum(length, m.sliding_window or np.inf)
    kv = tokens * frac * per_layer_token * bytes_per_element(kv_dtype)
    if m.is_sparse_attention:
        kv = kv + tokens * frac * indexer_key_bytes(m)
    if m.num_linear_layers or m.num_mamba_layers:
        kv = kv + frac * m.state_bytes_per_sequence() / tp
    return kv


def activation_bytes(model: ModelSpec, tokens, seqs, tp: int = 1):
    """Peak workspace of one forward pass: the widest live tensors of a layer for `tokens`
    tokens, plus fp32 logits for `seqs` sequences."""
    m = model
    tokens = np.asarray(tokens, dtype=float)
    qkv = (m.num_heads + 2 * m.num_kv_heads) * m.q_head_dim / tp
    if m.num_linear_layers:
        qkv = max(qkv, linear_in_proj_width(m) / tp)
    if m.num_mamba_layers:
        qkv = max(qkv, mamba_in_proj_width(m) / tp)
    mlp = 2 * m.intermediate_size / tp
    if m.is_moe:
        mlp = max(mlp, 2 * m.moe_intermediate_size * m.experts_per_token / tp)
    per_token = (2 * m.hidden_size + max(qkv, mlp)) * ACT_BYTES
    return tokens * per_token + np.asarray(seqs, dtype=float) * m.vocab_size / tp * LOGIT_BYTES


def _check_parallel(model: ModelSpec, tp: int, pp: int) -> None:
    for name, v in (("tp", tp), ("pp", pp)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 1024:
            raise InputError(f"{name} must be a whole number from 1 to 1024, got {v!r}")
    if pp > model.num_layers:
        raise InputError(f"pp = {pp} exceeds the {model.num_layers} layers of {model.id}")


def _non_negative(name: str, value) -> np.ndarray:
    if type(value) in (float, np.float64) and 0 <= value < math.inf:  # the usual cases, checked at once
        return np.asarray(value)
    if type(value) is np.ndarray and value.dtype == np.float64 and ((value >= 0) & (value < math.inf)).all():
        return value
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InputError(f"{name} must be finite and non-negative, got {value!r}")
    return a


def memory_use(model: ModelSpec, hw: Hardware, *, batch, context, prefill_tokens, weight_dtype: Any,
               kv_dtype: str, tp: int = 1, pp: int = 1, ep: int = 1, redundant_experts: int = 0) -> MemoryUse:
    """Memory of one device holding `batch` sequences of `context` tokens each, prefilling
    `prefill_tokens` at once."""
    _check_parallel(model, tp, pp)
    batch = _non_negative("batch", batch)
    context = _non_negative("context", context)
    prefill_tokens = _non_negative("prefill_tokens", prefill_tokens)
    chunk = np.minimum(np.asarray(prefill_tokens, dtype=float), PREFILL_CHUNK_TOKENS)
    return MemoryUse(
        weights=np.asarray(weights_per_device(model, weight_dtype, tp, pp, ep, redundant_experts)) + 0 * batch,
        kv_cache=batch * kv_bytes_per_sequence(model, context, kv_dtype, tp, pp),
        activations=activation_bytes(model, np.maximum(chunk, batch), batch, tp),
        capacity=usable_memory(hw),
    )


def max_batch(model: ModelSpec, hw: Hardware, *, context, weight_dtype: Any, kv_dtype: str,
              tp: int = 1, pp: int = 1, ep: int = 1, kv_fraction: float = 0.9, limit: int = 2048,
              rule: str = "free", redundant_experts: int = 0):
    """Largest batch per device (per attention replica) whose KV cache (`context` tokens per
    sequence) fits, as a runtime sizes it: a fraction of the memory left after weights and a full
    prefill chunk's workspace. 0 if none."""
    _check_parallel(model, tp, pp)
    context = _non_negative("context", context)
    if isinstance(kv_fraction, bool) or not isinstance(kv_fraction, (int, float)) or not 0 < kv_fraction <= 1:
        raise InputError(f"kv_fraction must be a fraction in (0, 1], got {kv_fraction!r}")
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise InputError(f"limit must be a whole number >= 1, got {limit!r}")
    footprint = serving_footprint(model, context, weight_dtype=weight_dtype, kv_dtype=kv_dtype, tp=tp, pp=pp, ep=ep,
                                  redundant_experts=redundant_experts)
    return batch_in_memory(hw, footprint, kv_fraction=kv_fraction, limit=limit, rule=rule)


def batch_in_memory(hw: Hardware, footprint: tuple, *, kv_fraction: float, limit: int, rule: str):
    """`max_batch` from a `serving_footprint` (weights, workspace, bytes per sequence), which does
    not depend on the device: a search over many devices computes it once per layout."""
    weights, workspace, per_seq = footprint
    if rule == "free":  # the KV pool takes a fraction of what weights and workspace leave (TensorRT-LLM)
        free = (usable_memory(hw) - weights - workspace) * kv_fraction
    elif rule == "total":  # weights, workspace and KV pool together take a fraction of it all (vLLM, SGLang)
        free = usable_memory(hw) * kv_fraction - weights - workspace
    else:
        raise InputError(f"rule must be free or total, got {rule!r}")
    b = np.floor(np.maximum(free, 0) / per_seq)
    return np.minimum(b, limit)


def serving_footprint(model: ModelSpec, context, *, weight_dtype: Any, kv_dtype: str, tp: int = 1, pp: int = 1,
                      ep: int = 1, redundant_experts: int = 0):
    """How a runtime sizes memory per device: (weights, workspace of a full prefill chunk, bytes
    per sequence of `context` tokens: its KV cache and logits), in bytes."""
    weights = weights_per_device(model, weight_dtype, tp, pp, ep, redundant_experts)
    workspace = activation_bytes(model, PREFILL_CHUNK_TOKENS, 0, tp)
    per_seq = kv_bytes_per_sequence(model, context, kv_dtype, tp, pp) + activation_bytes(model, 0, 1, tp)
    return weights, workspace, per_seq
