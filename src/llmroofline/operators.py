"""The LLMRoofline article's method 2: a forward pass as a list of named operators with FLOPs and bytes.

Every quantity is per device (after tensor/expert parallel sharding) and per instance; an
operator's `count` says how many times it runs in one forward pass (layers that have it). All
arrays broadcast over the workload grid (batch × length × ...). FLOPs, not MACs: a multiply-add
is 2 FLOPs.

Names are hierarchical (`attn/q_proj`, `mlp/down_proj`, `moe/experts_up`), so a total over a
prefix is a sum over names that start with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import hybrid
from .errors import InputError, show
from .model import ModelSpec, expected_experts_touched
from .moe_balance import check_imbalance
from .precision import GROUPS, LINEAR_GROUPS, RATES, WeightPrecision, bytes_per_element, normalize
from .precision import gemm_precision as rate_for

ACT_BYTES = 2.0  # activations stay in 16 bit (fp8 GEMMs quantize their inputs on the fly)
SMALL_WEIGHT_BYTES = 2.0  # norms and biases are kept in 16 bit

GEMM, ATTN_PREFILL, ATTN_DECODE, ELEMENTWISE, COMM = "gemm", "attn_prefill", "attn_decode", "elementwise", "comm"


# Fields that do not apply to an operator hold this 0-d zero (broadcast on use); read-only, so
# that every operator can share it.
ZERO = np.zeros(())
ZERO.flags.writeable = False
ONE = np.ones(())  # the GEMM rows of an operator that is not a GEMM
ONE.flags.writeable = False


@dataclass(frozen=True)
class Operator:
    """One kernel of the forward pass. Byte and FLOP counts are arrays over the workload grid."""

    name: str
    kind: str  # gemm | attn_prefill | attn_decode | elementwise | comm
    precision: str  # compute precision of its FLOPs
    count: int  # instances per forward pass
    flops: np.ndarray
    weight_bytes: np.ndarray
    act_read_bytes: np.ndarray
    act_write_bytes: np.ndarray
    kv_read_bytes: np.ndarray
    kv_write_bytes: np.ndarray
    gemm_rows: np.ndarray = field(default_factory=lambda: ONE)  # M of a GEMM (tokens per weight)
    comm_bytes: np.ndarray = field(default_factory=lambda: ZERO)  # all-reduce message per device
    comm_devices: int = 1
    comm_pattern: str = "all_reduce"  # or "all_to_all"
    window: float = math.inf  # sliding window of the layers it belongs to, in tokens
    kv_group: float = 1.0  # query heads served by each cached KV head (GQA group size)

    @property
    def bytes(self) -> np.ndarray:
        """All memory traffic: weights, activations and KV cache, read and written."""
        total = self.weight_bytes
        for part in (self.act_read_bytes, self.act_write_bytes, self.kv_read_bytes, self.kv_write_bytes):
            if part is not ZERO:  # a field that does not apply adds nothing: skip a pass over the grid
                total = total + part
        return np.asarray(total, dtype=float)

    @property
    def intensity(self) -> np.ndarray:
        """Arithmetic intensity, FLOPs per byte of memory traffic."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.bytes > 0, self.flops / np.where(self.bytes > 0, self.bytes, 1), np.inf)



@dataclass(frozen=True)
class AttentionGroup:
    """Sequences that attend alike in one forward pass: `batch` sequences, each adding `new`
    tokens after `past` cached ones. Decode: new = 1; prefill: past = 0, new = prompt length."""

    batch: np.ndarray | float
    new: np.ndarray | float
    past: np.ndarray | float
    label: str = ""  # suffix for op names when one pass holds several groups


@dataclass(frozen=True)
class Sharding:
    tp: int = 1  # tensor parallel: heads, MLP width, vocab split over tp devices
    ep: int = 1  # expert parallel: routed experts spread over ep devices
    # The busiest expert-parallel device's routed rows over the mean (moe_balance.py); 1: balanced.
    moe_imbalance: float = 1.0
    redundant_experts: int = 0  # extra expert copies (EPLB), spread over the ep devices

    @property
    def dp(self) -> int:
        """Attention replicas that share one set of experts: ep > tp runs attention data-parallel
        over ep / tp groups of tp devices (each with its own sequences) while the experts spread
        over all ep devices. (A deployment may hold several such expert groups: Deployment.dp.)"""
        return self.ep // self.tp if self.ep > self.tp else 1


DISPATCH_FP8_BYTES = 1.0 + 4.0 / 128  # fp8 value plus its share of a 4-byte scale per 128


def _linear(name: str, tokens, n_in: float, n_out: float, wbytes: float, precision: str, count: int,
            cache_bytes: float = 0.0) -> Operator:
    """y = x W: 2·tokens·in·out FLOPs; reads W and x, writes y. With cache_bytes > 0 the output
    goes straight into the KV cache at that many bytes per element (K/V projections)."""
    t = np.asarray(tokens, dtype=float)
    return Operator(
        name=name, kind=GEMM, precision=precision, count=count,
        flops=t * (2.0 * n_in * n_out),
        weight_bytes=np.asarray(n_in * n_out * wbytes, dtype=float),
        act_read_bytes=t * (n_in * ACT_BYTES),
        act_write_bytes=ZERO if cache_bytes else t * (n_out * ACT_BYTES),
        kv_read_bytes=ZERO,
        kv_write_bytes=t * (n_out * cache_bytes) if cache_bytes else ZERO,
        gemm_rows=t,
    )


def _masked(op: Operator, mask) -> Operator:
    """The operator where mask is 1 and nothing where it is 0 (per grid point)."""
    fields = ("flops", "weight_bytes", "act_read_bytes", "act_write_bytes", "kv_read_bytes", "kv_write_bytes")
    return Operator(**{**op.__dict__, **{f: getattr(op, f) * mask for f in fields}})


def _elementwise(name: str, tokens, width: float, flops_per_elem: float, reads: float, writes: float,
                 count: int, weight_elems: float = 0.0) -> Operator:
    """A memory-bound pointwise op over tokens × width elements (reads/writes: tensors of that size)."""
    t = np.asarray(tokens, dtype=float)
    return Operator(
        name=name, kind=ELEMENTWISE, precision="fp16", count=count,
        flops=t * (flops_per_elem * width), weight_bytes=np.asarray(weight_elems * SMALL_WEIGHT_BYTES, dtype=float),
        act_read_bytes=t * (reads * width * ACT_BYTES), act_write_bytes=t * (writes * width * ACT_BYTES),
        kv_read_bytes=ZERO, kv_write_bytes=ZERO,
    )


def _all_reduce(name: str, tokens, width: float, devices: int, count: int) -> Operator:
    t = np.asarray(tokens, dtype=float)
    return Operator(
        name=name, kind=COMM, precision="fp16", count=count, flops=ZERO, weight_bytes=ZERO,
        act_read_bytes=ZERO, act_write_bytes=ZERO, kv_read_bytes=ZERO, kv_write_bytes=ZERO,
        comm_bytes=t * (width * ACT_BYTES), comm_devices=devices,
    )


def attended_pairs(new, past, window: float):
    """Σ over the new tokens of the positions each attends to (causal, within the window).

    Token i (1..new) sees min(past + i, window) positions. Closed form: the first
    n = clip(window - past, 0, new) tokens see past + i, the rest see the window.
    """
    new = np.asarray(new, dtype=float)
    past = np.asarray(past, dtype=float)
    if math.isinf(window):
        return new * past + new * (new + 1) / 2
    n = np.clip(window - past, 0, new)
    return n * past + n * (n + 1) / 2 + (new - n) * window


def cached_positions(new, past, window: float):
    """KV positions read per sequence: the cached ones inside the window plus the new ones.

    min(past + new, window + new - 1): a decode step (new = 1) reads min(past + 1, window).
    """
    new = np.asarray(new, dtype=float)
    return np.minimum(np.asarray(past, dtype=float) + new, window + new - 1)


MLA_LATENT_MAX_NEW = 8  # new tokens per sequence still decoded in the latent space (a verify pass)


def _absorbed(model: ModelSpec, new) -> np.ndarray:
    """1 where MLA runs in the latent space (weights absorbed, MQA mode), 0 where it decompresses K
    and V per head: decode passes absorb, including the verify pass of speculative decoding (up to
    MLA_LATENT_MAX_NEW tokens per sequence: FlashMLA takes several query tokens per sequence for
    multi-token prediction, and serving stacks verify drafts in the latent space); prefill
    decompresses, except under sparse attention, which DeepSeek-V3.2 runs in MQA mode for prefill
    and decode alike (its top-k keys are gathered from the latent cache)."""
    new = np.asarray(new, dtype=float)
    if model.is_sparse_attention:
        return np.ones_like(new)
    return (new <= MLA_LATENT_MAX_NEW).astype(float)


def _attention_ops(model: ModelSpec, g: AttentionGroup, sh: Sharding, kv_bytes: float,
                   fused: bool, window: float, count: int, suffix: str) -> list[Operator]:
    """QK, softmax and SV of one layer kind. Fused (flash-style): scores never touch memory."""
    b = np.asarray(g.batch, dtype=float)
    q = np.asarray(g.new, dtype=float)
    heads = model.num_heads / sh.tp
    pairs = b * attended_pairs(q, g.past, window)  # (query, key) pairs per head
    positions = b * cached_positions(q, g.past, window)
    tokens = b * q
    # A label for tables; the roofline decides decode- or prefill-like kernels per grid point.
    kind = ATTN_DECODE if np.all(q == 1) else ATTN_PREFILL
    if model.is_mla:
        # Decode runs in the latent space (weight absorption): QK over kv_lora+rope dims, SV over
        # kv_lora dims, one latent vector per position shared by all heads and replicated per device.
        # Prefill decompresses K and V per head (kv_b_proj) and attends over qk_nope+rope / v dims.
        # Decided per grid point: a grid may mix one-token and longer passes.
        absorbed = _absorbed(model, q)
        d_qk = absorbed * (model.kv_lora_rank + model.qk_rope_head_dim) + (1 - absorbed) * model.q_head_dim
        d_v = absorbed * model.kv_lora_rank + (1 - absorbed) * model.v_head_dim
        k_read = positions * (model.kv_lora_rank + model.qk_rope_head_dim) * kv_bytes
        k_read = k_read + (1 - absorbed) * positions * heads * model.q_head_dim * ACT_BYTES
        v_read = (1 - absorbed) * positions * heads * model.v_head_dim * ACT_BYTES
    else:
        kv_heads = math.ceil(model.num_kv_heads / sh.tp)  # KV heads are replicated when tp > kv_heads
        d_qk = d_v = model.head_dim
        k_read = positions * kv_heads * d_qk * kv_bytes
        v_read = positions * kv_heads * d_v * kv_bytes
    # Bytes of the score matrix, written and read only when attention is not fused.
    scores = pairs * (heads * ACT_BYTES) if not fused else ZERO
    z = ZERO
    group = 1.0 if model.is_mla else model.num_heads / model.num_kv_heads
    common: dict[str, Any] = dict(kind=kind, precision="fp16", count=count, weight_bytes=z, window=window, kv_group=group)
    return [
        Operator(name=f"attn/qk{suffix}", flops=pairs * (2.0 * heads * d_qk),
                 act_read_bytes=tokens * (heads * d_qk * ACT_BYTES), act_write_bytes=scores,
                 kv_read_bytes=k_read, kv_write_bytes=z, gemm_rows=q, **common),
        # max, subtract, exp, sum, divide: 5 FLOPs per score
        Operator(name=f"attn/softmax{suffix}", flops=pairs * (5.0 * heads),
                 act_read_bytes=scores, act_write_bytes=scores,
                 kv_read_bytes=z, kv_write_bytes=z, **common),
        Operator(name=f"attn/sv{suffix}", flops=pairs * (2.0 * heads * d_v),
                 act_read_bytes=scores, act_write_bytes=tokens * (heads * d_v * ACT_BYTES),
                 kv_read_bytes=v_read, kv_write_bytes=z, gemm_rows=q, **common),
    ]


MAX_GROUP_SIZE = 1e12  # sequences or tokens in one group: far beyond any real pass, far below overflow


def _check_pass(model: ModelSpec, groups: list[AttentionGroup], sh: Sharding) -> None:
    """InputError unless the groups hold finite, non-negative sizes of shapes that broadcast
    together and the sharding is possible."""
    if not isinstance(model, ModelSpec):
        raise InputError(f"model must be a ModelSpec, got {type(model).__name__}")
    if not isinstance(groups, (list, tuple)) or not groups or not all(isinstance(g, AttentionGroup) for g in groups):
        raise InputError(f"groups must be a non-empty list of AttentionGroup, got {show(groups)}")
    shapes = []
    for g in groups:
        for name in ("batch", "new", "past"):
            v = getattr(g, name)
            a: np.ndarray | None
            if isinstance(v, float) or type(v) is np.ndarray and v.dtype == np.float64:  # the usual case, quickly
                a = np.asarray(v)
            else:
                try:
                    a = None if isinstance(v, (str, bytes)) or np.asarray(v).dtype == bool else np.asarray(v, dtype=float)
                except (TypeError, ValueError, OverflowError):  # OverflowError: 10**400
                    a = None
            if a is None or a.size == 0:
                raise InputError(f"AttentionGroup.{name} must be a number or an array of numbers, got {show(v)}")
            if not ((a >= 0) & (a <= MAX_GROUP_SIZE)).all():  # NaN fails both comparisons, inf the second
                raise InputError(f"AttentionGroup.{name} must be from 0 to {MAX_GROUP_SIZE:g}, got {show(v)}")
            shapes.append(a.shape)
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise InputError(f"AttentionGroup sizes have shapes {shapes} that do not broadcast together") from None
    tokens = sum(np.asarray(g.batch, dtype=float) * np.asarray(g.new, dtype=float) for g in groups)
    if np.any(tokens <= 0):  # batch = 0 or new = 0 everywhere: a pass that computes nothing
        raise InputError("AttentionGroup: the pass has no tokens (a group needs batch >= 1 and new >= 1), got "
                         + show([(g.batch, g.new) for g in groups]))
    for name in ("tp", "ep"):
        v = getattr(sh, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"sharding {name} must be a whole number >= 1, got {show(v)}")
    v = sh.redundant_experts
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise InputError(f"sharding redundant_experts must be a whole number >= 0, got {show(v)}")
    check_imbalance(sh.moe_imbalance)


def gemm_precisions(weights: WeightPrecision, gemm_precision: Any = None) -> dict[str, str]:
    """The rate each module group's GEMMs run at. A name: every linear group at it, router and
    lm_head at fp16; a mapping: per group (missing groups as None does); None: each group at its
    own format's native rate (precision.gemm_precision on a device that has every rate)."""
    def native(g: str) -> str:
        return rate_for(weights.format(g).precision, set(RATES))

    if gemm_precision is None:
        return {g: native(g) for g in GROUPS}
    if isinstance(gemm_precision, str):
        p = normalize(gemm_precision, field="gemm_precision")
        return {g: p if g in LINEAR_GROUPS else "fp16" for g in GROUPS}
    if isinstance(gemm_precision, Mapping):
        return {g: normalize(gemm_precision[g], field=f"gemm_precision[{g}]") if g in gemm_precision else native(g)
                for g in GROUPS}
    raise InputError(f"gemm_precision must be a precision name or a mapping of groups to names, got {show(gemm_precision)}")


def forward_ops(model: ModelSpec, *, groups: list[AttentionGroup], weight_dtype: Any = None,
                kv_dtype: str = "fp16", gemm_precision: Any = None, sharding: Sharding | None = None,
                fused_attention: bool = True, include_lm_head: bool = True) -> list[Operator]:
    """Operators of one forward pass over all layers, per device.

    `groups` lists the sequences in the pass; linear layers see all their tokens at once (one
    GEMM), attention runs per group. Decode of B sequences with L cached tokens:
    [AttentionGroup(B, 1, L)]; prefill of B prompts of length S: [AttentionGroup(B, S, 0)].
    weight_dtype: None (as the checkpoint stores the weights), a precision name for the linear
    layers, or a WeightPrecision; each module group's matrices count at its bytes per element.
    gemm_precision: see gemm_precisions.
    """
    sh = sharding or Sharding()
    _check_pass(model, groups, sh)
    tp = sh.tp
    m = model
    weights = m.weight_precision(weight_dtype)
    rates = gemm_precisions(weights, gemm_precision)
    wb, gp = weights.bytes("attention"), rates["attention"]
    kvb = bytes_per_element(kv_dtype)
    tokens = sum(np.asarray(g.batch, dtype=float) * np.asarray(g.new, dtype=float) for g in groups)
    seqs = sum(np.asarray(g.batch, dtype=float) for g in groups)
    h = m.hidden_size
    ops: list[Operator] = [
        # Embedding lookup: gather one 16-bit row per token.
        _elementwise("embed", tokens, h, 0.0, 1.0, 1.0, 1),
        # Fused residual add + norm: reads residual and input, writes both.
        _elementwise("attn/norm", tokens, h, 5.0, 2.0, 2.0, m.num_mixer_layers, weight_elems=h),
    ]

    La = m.num_attention_layers
    heads = m.num_heads / tp
    if m.is_mla:
        cache_width = m.kv_lora_rank + m.qk_rope_head_dim
        if m.q_lora_rank:
            ops.append(_linear("attn/q_a_proj", tokens, h, m.q_lora_rank, wb, gp, La))
            ops.append(_linear("attn/q_b_proj", tokens, m.q_lora_rank, heads * m.q_head_dim, wb, gp, La))
        else:
            ops.append(_linear("attn/q_proj", tokens, h, heads * m.q_head_dim, wb, gp, La))
        # The compressed latent (+ decoupled rope key) is what the cache stores.
        ops.append(_linear("attn/kv_a_proj", tokens, h, cache_width, wb, gp, La, cache_bytes=kvb))
    else:
        kv_heads = math.ceil(m.num_kv_heads / tp)
        kv_width = kv_heads * m.head_dim
        gate = 2 if m.attn_output_gate else 1  # the output gate comes out of q_proj beside the query
        ops.append(_linear("attn/q_proj", tokens, h, gate * heads * m.head_dim, wb, gp, La))
        ops.append(_linear("attn/k_proj", tokens, h, kv_width, wb, gp, La, cache_bytes=kvb))
        ops.append(_linear("attn/v_proj", tokens, h, kv_width, wb, gp, La, cache_bytes=kvb))

    for g in groups:
        suffix = f"_{g.label}" if g.label else ""
        if m.is_mla:
            batch = np.asarray(g.batch, dtype=float)
            absorbed = _absorbed(m, g.new)
            if np.any(absorbed):
                # Absorbed W_UK into the query and W_UV after attention (per head, kv_lora wide), per new token.
                new_tokens = batch * np.asarray(g.new, dtype=float)
                mla_decode = [
                    _linear(f"attn/q_absorb{suffix}", new_tokens, m.qk_nope_head_dim, m.kv_lora_rank * heads, wb, gp, La),
                    _linear(f"attn/v_absorb{suffix}", new_tokens, m.kv_lora_rank * heads, m.v_head_dim, wb, gp, La),
                ]
                ops += [_masked(op, absorbed) for op in mla_decode]
            if not np.all(absorbed):
                past_and_new = batch * cached_positions(g.new, g.past, math.inf)
                op = _linear(f"attn/kv_b_proj{suffix}", past_and_new, m.kv_lora_rank,
                             heads * (m.qk_nope_head_dim + m.v_head_dim), wb, gp, La)
                ops.append(_masked(op, 1 - absorbed))
        if m.num_global_layers:
            ops += _attention_ops(m, g, sh, kvb, fused_attention, m.attention_span, m.num_global_layers, suffix)
        if m.is_sparse_attention:
            ops += _indexer_attention_ops(m, g, La, suffix, gp)
        if m.num_linear_layers or m.num_mamba_layers:
            ops += recurrent_scan_ops(m, g, sh, suffix)
        if m.num_sliding_layers:
            ops += _attention_ops(m, g, sh, kvb, fused_attention, float(m.sliding_window),
                                  m.num_sliding_layers, f"_local{suffix}")

    if m.attn_output_gate:  # o · sigmoid(gate) before o_proj
        ops.append(_elementwise("attn/output_gate", tokens, heads * m.head_dim, 5.0, 2.0, 1.0, La))
    ops.append(_linear("attn/o_proj", tokens, heads * m.attn_v_head_dim, h, wb, gp, La))
    if m.is_sparse_attention:
        ops += _indexer_projection_ops(m, tokens, wb, gp, La)
    if m.num_linear_layers or m.num_mamba_layers:
        ops += recurrent_projection_ops(m, tokens, seqs, sh, wb, gp)
    if tp > 1:
        ops.append(_all_reduce("attn/all_reduce", tokens, h, tp, m.num_mixer_layers))
    ops.append(_elementwise("mlp/norm", tokens, h, 5.0, 2.0, 2.0, m.num_mlp_layers, weight_elems=h))

    if m.num_dense_layers:
        ops += _mlp_ops(m.hidden_size, m.gated_mlp, "mlp", tokens, m.intermediate_size / tp, weights.bytes("mlp"),
                        rates["mlp"], m.num_dense_layers)
    if m.num_moe_layers:
        ops += _moe_ops(m, tokens, sh, weights, rates)
    if tp > 1:
        # With data-parallel attention the MoE layers combine by all-to-all (moe/all_to_all) instead.
        ops.append(_all_reduce("mlp/all_reduce", tokens, h, tp, m.num_mlp_layers if sh.dp == 1 else m.num_dense_layers))

    if include_lm_head:
        # Only the last position of each sequence needs logits.
        ops.append(_elementwise("final_norm", seqs, h, 5.0, 1.0, 1.0, 1, weight_elems=h))
        ops.append(_linear("lm_head", seqs, h, m.vocab_size / tp, weights.bytes("embeddings"), rates["embeddings"], 1))
    return ops


def _mlp_ops(h: int, gated: bool, prefix: str, tokens, width: float, wb: float, gp: str,
             count: int) -> list[Operator]:
    """Dense MLP on h-wide rows: gated (gate, up, act·mul, down) or plain (up, GELU, down); width is
    per device."""
    if gated:
        return [
            _linear(f"{prefix}/gate_proj", tokens, h, width, wb, gp, count),
            _linear(f"{prefix}/up_proj", tokens, h, width, wb, gp, count),
            _elementwise(f"{prefix}/act", tokens, width, 5.0, 2.0, 1.0, count),  # silu(gate)·up
            _linear(f"{prefix}/down_proj", tokens, width, h, wb, gp, count),
        ]
    return [
        _linear(f"{prefix}/up_proj", tokens, h, width, wb, gp, count),
        _elementwise(f"{prefix}/act", tokens, width, 8.0, 1.0, 1.0, count),  # gelu
        _linear(f"{prefix}/down_proj", tokens, width, h, wb, gp, count),
    ]


def _moe_ops(m: ModelSpec, tokens, sh: Sharding, weights: WeightPrecision, rates: dict[str, str]) -> list[Operator]:
    """Router, routed experts (only the experts the batch touches are read), shared experts.

    Routed experts are sharded by width over tp/ep and spread over ep devices; the busiest
    device computes its share of the tokens × top-k expert rows times the load imbalance
    (`Sharding.moe_imbalance`, 1 when ep = 1) and holds (E + redundant) / ep expert slots.
    """
    h, E, k, n = m.hidden_size, m.num_experts, m.experts_per_token, m.num_moe_layers
    width_shards = max(sh.tp // sh.ep, 1)
    width = m.moe_intermediate_size / width_shards
    t = np.asarray(tokens, dtype=float)
    hot = sh.moe_imbalance if sh.ep > 1 else 1.0
    arriving = t * sh.dp  # with data-parallel attention every replica's tokens reach the experts
    routed = arriving * k / sh.ep * hot  # expert rows computed by the busiest device
    # Distinct experts it reads: each of its slots is touched with the probability a slot sees at
    # its token count, 1 - (1 - k/E)^(tokens), with the hot device's share of the tokens.
    slots = (E + sh.redundant_experts) / sh.ep
    touched = expected_experts_touched(E, k, arriving * hot) / E * slots
    rows_per_expert = routed / np.maximum(touched, 1e-12)
    wb, gp = weights.bytes("experts"), rates["experts"]
    ops = [_linear("moe/router", t, h, E, weights.bytes("router"), rates["router"], n)]
    for name, n_in, n_out in (("moe/experts_gate", h, width), ("moe/experts_up", h, width),
                              ("moe/experts_down", width, h)):
        op = _linear(name, routed, n_in, n_out, wb, gp, n)
        ops.append(Operator(**{**op.__dict__, "weight_bytes": touched * n_in * n_out * wb,
                               "gemm_rows": rows_per_expert}))
    ops.insert(3, _elementwise("moe/experts_act", routed, width, 5.0, 2.0, 1.0, n))
    if m.shared_expert_intermediate_size:
        ops += _mlp_ops(m.hidden_size, m.gated_mlp, "moe/shared", t, m.shared_expert_intermediate_size / sh.tp,
                        weights.bytes("shared_experts"), rates["shared_experts"], n)
    if sh.dp > 1:
        # Dispatch each local token's hidden state to its k experts and combine the results back:
        # two all-to-alls of tokens x k x hidden over the ep devices; the busiest device receives
        # and returns the imbalance times the mean, and the collective waits for it. Experts that
        # run 8-bit or 4-bit GEMMs take their input quantized before dispatch (fp8, one 4-byte
        # scale per 128 values, as DeepEP's low-latency dispatch sends it:
        # https://github.com/deepseek-ai/DeepEP); the combine returns 16-bit outputs.
        dispatch = DISPATCH_FP8_BYTES if rates["experts"] in ("fp8", "int8", "fp4") else ACT_BYTES
        op = _all_reduce("moe/all_to_all", t * k * hot * (dispatch + ACT_BYTES) / ACT_BYTES, h, sh.ep, n)
        ops.append(Operator(**{**op.__dict__, "comm_pattern": "all_to_all"}))
    return ops


# ---- recurrent mixers (Gated DeltaNet, Mamba-2) and the sparse-attention indexer -------------
# Sizes and their sources: hybrid.py.

def _attention_kind(new) -> str:
    """A table label: decode-like where every sequence adds one token (the roofline decides per point)."""
    return ATTN_DECODE if np.all(np.asarray(new) == 1) else ATTN_PREFILL


def _conv(name: str, tokens, seqs, channels: float, kernel: int, count: int) -> Operator:
    """Short causal depthwise convolution + SiLU over `channels` per token: 2·kernel + 4 FLOPs per
    element; reads and writes the activations once, and each sequence's last kernel-1 inputs
    (the conv state) once each way."""
    op = _elementwise(name, tokens, channels, 2.0 * kernel + 4.0, 1.0, 1.0, count, weight_elems=channels * kernel)
    state = np.asarray(seqs, dtype=float) * (channels * max(kernel - 1, 0) * hybrid.STATE_BYTES)
    return Operator(**{**op.__dict__, "kv_read_bytes": state, "kv_write_bytes": state})


def recurrent_projection_ops(m: ModelSpec, tokens, seqs, sh: Sharding, wb: float, gp: str) -> list[Operator]:
    """Projections, convolution and gated norm of the linear-attention and Mamba layers (heads
    split over tp); the recurrence itself runs per group (recurrent_scan_ops)."""
    h, tp = m.hidden_size, sh.tp
    ops: list[Operator] = []
    if m.num_linear_layers:
        n = m.num_linear_layers
        vd = hybrid.linear_value_dim(m) / tp
        ops += [
            _linear("linear/in_proj_qkvz", tokens, h, hybrid.linear_in_proj_width(m) / tp, wb, gp, n),
            _linear("linear/in_proj_ba", tokens, h, 2 * m.linear_num_value_heads / tp, wb, gp, n),
            _conv("linear/conv", tokens, seqs, hybrid.linear_conv_dim(m) / tp, m.linear_conv_kernel, n),
            # RMS norm of each head's output times SiLU(z): reads o and z, writes one.
            _elementwise("linear/norm_gate", tokens, vd, 8.0, 2.0, 1.0, n, weight_elems=m.linear_value_head_dim),
            _linear("linear/out_proj", tokens, vd, h, wb, gp, n),
        ]
    if m.num_mamba_layers:
        n = m.num_mamba_layers
        inner = hybrid.mamba_inner(m) / tp
        ops += [
            _linear("mamba/in_proj", tokens, h, hybrid.mamba_in_proj_width(m) / tp, wb, gp, n),
            _conv("mamba/conv", tokens, seqs, hybrid.mamba_conv_dim(m) / tp, m.mamba_conv_kernel, n),
        ]
        if m.mamba_dt_rank:  # Mamba-1: dt, B, C from x (x_proj), dt back to full width (dt_proj)
            ops += [_linear("mamba/x_proj", tokens, inner, hybrid.mamba1_x_proj_width(m), wb, gp, n),
                    _linear("mamba/dt_proj", tokens, m.mamba_dt_rank, inner, wb, gp, n)]
        ops += [
            # Mamba-2: gated RMS norm; Mamba-1: y·silu(z) only.
            _elementwise("mamba/norm_gate", tokens, inner, 8.0, 2.0, 1.0, n,
                         weight_elems=0 if m.mamba_dt_rank else inner),
            _linear("mamba/out_proj", tokens, inner, h, wb, gp, n),
        ]
    return ops


def recurrent_scan_ops(m: ModelSpec, g: AttentionGroup, sh: Sharding, suffix: str) -> list[Operator]:
    """The recurrence of the linear-attention and Mamba layers for one group of sequences.

    FLOPs per token: (FLOPs per state element) x state elements (hybrid.py derives 7 for Gated
    DeltaNet, 5 for Mamba-2); the same count stands for the chunked prefill form, whose
    intra-chunk products cost about what the per-token state update saves. The state is read
    and written once per chunk of each sequence: once per decode step, ceil(new / chunk) times
    in a prefill. Nothing here grows with the context length.
    """
    b = np.asarray(g.batch, dtype=float)
    new = np.asarray(g.new, dtype=float)
    t = b * new
    common: dict[str, Any] = dict(kind=_attention_kind(new), precision="fp16", weight_bytes=ZERO, gemm_rows=new)
    ops = []
    if m.num_linear_layers:
        state = hybrid.linear_state_elements(m) / sh.tp
        passes = b * np.ceil(new / hybrid.GDN_CHUNK_TOKENS)
        kd, vd, nv = hybrid.linear_key_dim(m), hybrid.linear_value_dim(m), m.linear_num_value_heads
        ops.append(Operator(
            name=f"linear/recurrence{suffix}", count=m.num_linear_layers,
            flops=t * (hybrid.GDN_FLOPS_PER_STATE_ELEMENT * state),
            act_read_bytes=t * ((2 * kd + vd + 2 * nv) / sh.tp * ACT_BYTES),  # q, k, v, beta, decay
            act_write_bytes=t * (vd / sh.tp * ACT_BYTES),
            kv_read_bytes=passes * (state * hybrid.STATE_BYTES), kv_write_bytes=passes * (state * hybrid.STATE_BYTES),
            **common))
    if m.num_mamba_layers:
        state = hybrid.mamba_state_elements(m) / sh.tp
        passes = b * np.ceil(new / m.mamba_chunk_size)
        inner, gs = hybrid.mamba_inner(m), m.mamba_groups * m.ssm_state_size
        ops.append(Operator(
            name=f"mamba/scan{suffix}", count=m.num_mamba_layers,
            flops=t * (hybrid.mamba_flops_per_state_element(m) * state),
            act_read_bytes=t * ((inner + 2 * gs + m.mamba_num_heads) / sh.tp * ACT_BYTES),  # x, B, C, dt
            act_write_bytes=t * (inner / sh.tp * ACT_BYTES),
            kv_read_bytes=passes * (state * hybrid.STATE_BYTES), kv_write_bytes=passes * (state * hybrid.STATE_BYTES),
            **common))
    return ops


def _indexer_projection_ops(m: ModelSpec, tokens, wb: float, gp: str, count: int) -> list[Operator]:
    """The lightning indexer's query (from the q latent), its one shared key (written to the
    indexer's fp8 cache) and per-head weights. Replicated on every tensor-parallel device, as
    vLLM and SGLang run it."""
    n, d, h = m.index_n_heads, m.index_head_dim, m.hidden_size
    return [
        _linear("attn/indexer_q", tokens, m.q_lora_rank or h, n * d, wb, gp, count),
        _linear("attn/indexer_k", tokens, h, d, wb, gp, count, cache_bytes=hybrid.indexer_key_bytes(m) / d),
        _linear("attn/indexer_weights", tokens, h, n, wb, gp, count),
    ]


def _indexer_attention_ops(m: ModelSpec, g: AttentionGroup, count: int, suffix: str, rate: str) -> list[Operator]:
    """The indexer scores every cached position for each new token, then picks the top k.

    Scores: per (query, key) pair n_heads · (2·d dot product + ReLU, weight, sum) at the attention
    projections' GEMM rate (fp8 where the device and checkpoint have it, as DeepSeek runs it), reading
    each position's cached index key; the fp32 scores are written and read back by the top-k
    selection, which writes k indices per token. Linear in the context, unlike the main attention,
    which sees at most index_topk positions (the attention ops' window).
    """
    b = np.asarray(g.batch, dtype=float)
    new = np.asarray(g.new, dtype=float)
    pairs = b * attended_pairs(new, g.past, math.inf)
    positions = b * cached_positions(new, g.past, math.inf)
    n, d = m.index_n_heads, m.index_head_dim
    t = b * new
    score = Operator(
        name=f"attn/indexer_score{suffix}", kind=_attention_kind(new), precision=rate, count=count,
        flops=pairs * (n * (2.0 * d + 3.0)), weight_bytes=ZERO,
        act_read_bytes=t * (n * d * 1.0), act_write_bytes=pairs * 4.0,
        kv_read_bytes=positions * hybrid.indexer_key_bytes(m), kv_write_bytes=ZERO, gemm_rows=new)
    topk = Operator(
        name=f"attn/indexer_topk{suffix}", kind=ELEMENTWISE, precision="fp16", count=count,
        flops=pairs * 1.0, weight_bytes=ZERO, act_read_bytes=pairs * 4.0, act_write_bytes=t * (m.index_topk * 4.0),
        kv_read_bytes=ZERO, kv_write_bytes=ZERO)
    return [score, topk]


def op_totals(ops: list[Operator], prefix: str = "") -> dict[str, np.ndarray]:
    """FLOPs and bytes by kind summed over the operators whose names start with `prefix`."""
    keys = ("flops", "weight_bytes", "act_read_bytes", "act_write_bytes", "kv_read_bytes", "kv_write_bytes", "bytes")
    out = {k: np.zeros(()) for k in keys}
    for op in ops:
        if op.name.startswith(prefix):
            for k in keys:
                out[k] = out[k] + op.count * getattr(op, k)
    return out
