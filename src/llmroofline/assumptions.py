"""What an estimate assumed on the user's behalf, and where it leaves the ground it stands on.

`estimate_warnings` returns one-line strings (SPEC: the `warnings` list of every estimate's
JSON): a context longer than the model was trained for, tensor, expert or pipeline parallelism
wider than one scale-up domain (naming the network it crosses), workloads that do not fit in
memory, a precision the device lacks, and how the serving mode turns a batch into TTFT and TPOT. `row_warnings` gives the same lines for each
element of a vectorized estimate (one CSV row each). The shells only show the lists.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .moe_balance import FINE_GRAINED_EXPERTS

if TYPE_CHECKING:
    from .estimate import Deployment
    from .hardware import Hardware
    from .memory import MemoryUse


def _context_note(context: float, dep: Deployment, some: str = "") -> str:
    return (f"context of {context:,.0f} tokens (input + output) is longer than the {dep.model.max_context:,} tokens "
            f"{dep.model.id} was trained for (max_position_embeddings){some}: the model would need RoPE scaling or "
            "truncation there; the times are extrapolated")


def _fit_note(n: int, total: int, need_gb: float, capacity_gb: float) -> str:
    what = "the workload does" if total == 1 else f"{n} of {total} workloads do"
    return (f"{what} not fit in memory (up to {need_gb:,.1f} GB per device against {capacity_gb:,.0f} GB): the times "
            "are not achievable there")


def _max_note(largest: int, capped: bool, several: bool) -> str:
    return (f"batch chosen: the largest that fits{' up to --max-batch' if capped else ''} "
            f"({largest:,} sequences{' at most' if several else ''})")


def _continuous_note(per_step: float, mode: str) -> str:
    wait = (" plus half a step of waiting for the step under way" if mode == "continuous" else "")
    if per_step >= 1:
        return (f"continuous batching with chunked prefill: each step decodes all requests and prefills about "
                f"{per_step:.3g} arriving prompts, so a request's first token comes after one step"
                f"{wait or ': TTFT = TPOT'}; "
                "queueing is not included (--mode rate models it)")
    return (f"continuous batching with chunked prefill: about {per_step:.3g} prompts arrive per step, so TTFT is the "
            f"longer of one step and the prompt's own prefill{wait}; queueing is not included (--mode rate models it)")


def _network(hw: Hardware) -> str:
    """The link between scale-up domains, as a warning names it."""
    if hw.scale_out_default:
        return (f"the network between domains, assumed {hw.scale_out_bandwidth * 8 / 1e9:g} Gb/s Ethernet per "
                f"device ({hw.id} states no scale-out network)")
    return f"{hw.scale_out_kind} at {hw.scale_out_bandwidth * 8 / 1e9:g} Gb/s per device"


def _domain_notes(dep: Deployment) -> list[str]:
    """Where tensor, expert or pipeline parallelism leaves one scale-up domain, and the link it takes."""
    hw = dep.hardware
    d, ic = hw.max_devices, hw.interconnect_kind
    out = []
    if dep.tp > d:
        k = math.ceil(dep.tp / d)
        out.append(f"tp = {dep.tp} spans {k} scale-up domains of {hw.id} ({d} devices on {ic} each): each all-reduce "
                   f"reduces and gathers on {ic} and crosses domains on {_network(hw)}")
    if dep.ep > d and dep.ep > dep.tp:
        k = math.ceil(dep.ep / d)
        m = dep.ep / k
        out.append(f"the expert all-to-all over ep = {dep.ep} devices spans {k} scale-up domains of {hw.id}: "
                   f"{(dep.ep - m) / dep.ep:.3g} of its bytes cross {_network(hw)}")
    across = dep.pipeline_boundaries_across
    if across:
        out.append(f"pp = {dep.pp} stages of {dep.tp * dep.dp} devices span {math.ceil(dep.gpus / d)} scale-up domains "
                   f"of {hw.id}: {across} of {dep.pp - 1} stage hand-overs cross {_network(hw)}")
    return out


def _fixed_notes(dep: Deployment, *, kv_dtype_given: bool, requested_mode: str | None) -> list[str]:
    """The lines that depend on the deployment only, not on the workload."""
    out: list[str] = []
    hw = dep.hardware
    out += _domain_notes(dep)
    if dep.dp > 1 and dep.sharding.dp == 1:
        out.append(f"dp = {dep.dp}: {dep.dp} independent replicas of {dep.tp * dep.pp} device(s) each sharing the batch "
                   "(no expert parallelism across them): throughput scales with dp, latency does not")
    if dep.model.is_moe and dep.ep > 1 and dep.model.num_experts < FINE_GRAINED_EXPERTS and dep.moe_imbalance == 1.0:
        out.append(f"expert parallelism over {dep.ep} devices: routing assumed balanced (no published per-device "
                   f"routing statistics for models with fewer than {FINE_GRAINED_EXPERTS} routed experts; "
                   "--moe-imbalance sets the factor measured on your traffic)")
    elif dep.model.is_moe and dep.ep > 1:
        out.append(f"expert parallelism over {dep.ep} devices: the busiest device computes {dep.moe_imbalance:.3g}x the "
                   f"mean routed-expert rows"
                   + (f" ({dep.redundant_experts} redundant experts included)" if dep.redundant_experts else "")
                   + " (--moe-imbalance sets the factor measured on your traffic; the default follows published DeepSeek-R1 "
                   "routing statistics)")
    slower: dict[tuple[str, str], list[str]] = {}
    for group, rate in dep.gemm_precisions.items():
        stored = dep.weights.format(group).precision
        if group in dep.weights.groups and stored in ("fp8", "fp4", "mxfp4", "nvfp4") and rate != stored:
            slower.setdefault((stored, rate), []).append(group)
    for (stored, rate), groups in slower.items():
        out.append(f"{hw.id} has no {stored} tensor rate: {stored} weights ({', '.join(groups)}) are read as stored "
                   f"and multiplied at {rate} (weight-only quantization)")
    if not kv_dtype_given:
        out.append(f"KV cache assumed {dep.kv_dtype} (no KV-cache precision given)")
    out += _architecture_notes(dep)
    if requested_mode and requested_mode != "max":
        out.append(f"batch 'max' runs mode max (continuous batching at the largest batch that fits); the requested "
                   f"mode {requested_mode} was not used")
    return out


def _architecture_notes(dep: Deployment) -> list[str]:
    """What the model of a hybrid or sparse-attention layer assumes."""
    m, out = dep.model, []
    recurrent = m.num_linear_layers + m.num_mamba_layers
    if recurrent:
        out.append(f"{recurrent} of {m.num_layers} layers keep a fixed recurrent state "
                   f"({m.state_bytes_per_sequence() / 1e6:,.1f} MB per sequence, 16 bit whatever the KV-cache "
                   "precision) instead of a KV cache; their chunked prefill is costed at the per-token recurrence "
                   "FLOPs (docs/architectures.md)")
    if m.is_sparse_attention:
        out.append(f"sparse attention: each query attends to at most {m.index_topk:,} cached tokens picked by an "
                   "indexer that scores every cached token (docs/architectures.md)")
    return out


def estimate_warnings(dep: Deployment, *, mode: str, batch, input_len, output_len, memory: MemoryUse,
                      requested_mode: str | None = None, kv_dtype_given: bool = True,
                      max_batch_size: int | None = None) -> list[str]:
    """One-line warnings for an estimate of `dep` (arrays broadcast over the workload grid).

    requested_mode: the mode the caller asked for when `batch="max"` overrode it;
    kv_dtype_given: False when the KV-cache precision was left to its default.
    """
    out: list[str] = []
    In, Out = np.asarray(input_len, dtype=float), np.asarray(output_len, dtype=float)
    B = np.asarray(batch, dtype=float)
    context = np.broadcast_to(In + Out, np.broadcast_shapes(In.shape, Out.shape, np.shape(memory.fits)))
    if dep.model.max_context and (context > dep.model.max_context).any():
        n = int((context > dep.model.max_context).sum())
        out.append(_context_note(float(context.max()), dep, f" in {n} of {context.size} workloads" if context.size > 1
                                 else ""))
    fits = np.asarray(memory.fits, dtype=bool)
    if not fits.all():
        out.append(_fit_note(int((~fits).sum()), fits.size, float(np.max(memory.total)) / 1e9, memory.capacity / 1e9))
    out += _fixed_notes(dep, kv_dtype_given=kv_dtype_given, requested_mode=requested_mode)
    if mode == "max":
        largest = int(B.max()) if B.size else 0
        out.append(_max_note(largest, max_batch_size is not None and largest >= max_batch_size, B.size > 1))
    if mode in ("continuous", "max"):
        out.append(_continuous_note(float(np.max(B / np.maximum(Out, 1))), mode))
    return out


def row_warnings(dep: Deployment, *, mode: str, batch, input_len, output_len, memory: MemoryUse,
                 kv_dtype_given: bool = True, max_batch_size: int | None = None) -> list[list[str]]:
    """`estimate_warnings` of each element of 1-D workload arrays, as if each were estimated alone."""
    fixed = _fixed_notes(dep, kv_dtype_given=kv_dtype_given, requested_mode=None)
    window = dep.model.max_context
    cap = memory.capacity
    rows: list[list[str]] = []
    for b, i, o, total in zip(np.ravel(batch).tolist(), np.ravel(input_len).tolist(), np.ravel(output_len).tolist(),
                              np.ravel(memory.total).tolist(), strict=True):
        notes = []
        if window and i + o > window:
            notes.append(_context_note(i + o, dep))
        if total > cap:
            notes.append(_fit_note(1, 1, total / 1e9, cap / 1e9))
        notes += fixed
        if mode == "max":
            notes.append(_max_note(int(b), max_batch_size is not None and b >= max_batch_size, False))
        if mode in ("continuous", "max"):
            notes.append(_continuous_note(b / max(o, 1), mode))
        rows.append(notes)
    return rows
