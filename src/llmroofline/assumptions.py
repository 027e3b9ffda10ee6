"""What an estimate assumed on the user's behalf, and where it leaves the ground it stands on.

`estimate_warnings` returns one-line strings (SPEC: the `warnings` list of every estimate's
JSON): a context longer than the model was trained for, tensor parallelism wider than one
scale-up domain, workloads that do not fit in memory, a precision the device lacks, and how
the serving mode turns a batch into TTFT and TPOT. The shells only show the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .estimate import Deployment
    from .memory import MemoryUse


def _count(n: int, total: int, what: str) -> str:
    return f"{what}" if total == 1 else f"{n} of {total} {what}s"


def estimate_warnings(dep: Deployment, *, mode: str, batch, input_len, output_len, memory: MemoryUse,
                      requested_mode: str | None = None, kv_dtype_given: bool = True,
                      max_batch_size: int | None = None) -> list[str]:
    """One-line warnings for an estimate of `dep` (arrays broadcast over the workload grid).

    requested_mode: the mode the caller asked for when `batch="max"` overrode it;
    kv_dtype_given: False when the KV-cache precision was left to its default.
    """
    out: list[str] = []
    m, hw = dep.model, dep.hardware
    In, Out = np.asarray(input_len, dtype=float), np.asarray(output_len, dtype=float)
    B = np.asarray(batch, dtype=float)
    context = np.broadcast_to(In + Out, np.broadcast_shapes(In.shape, Out.shape, np.shape(memory.fits)))
    if m.max_context and (context > m.max_context).any():
        n, total = int((context > m.max_context).sum()), context.size
        out.append(f"context of {context.max():.0f} tokens (input + output) is longer than the {m.max_context:,} "
                   f"tokens {m.id} was trained for (max_position_embeddings)"
                   + (f" in {n} of {total} workloads" if total > 1 else "")
                   + ": the model would need RoPE scaling or truncation there; the times are extrapolated")
    if dep.tp > hw.max_devices:
        out.append(f"tp = {dep.tp} crosses the scale-up domain of {hw.id} ({hw.max_devices} devices on "
                   f"{hw.interconnect_kind}); the all-reduces are costed at {hw.interconnect_kind} speed, but a "
                   "real deployment would cross the slower scale-out network")
    fits = np.asarray(memory.fits, dtype=bool)
    if not fits.all():
        n = int((~fits).sum())
        need = float(np.max(memory.total)) / 1e9
        out.append(f"{_count(n, fits.size, 'workload')} do{'es' if fits.size == 1 else ''} not fit in memory "
                   f"(up to {need:,.1f} GB per device against {memory.capacity / 1e9:,.0f} GB): the times are not "
                   "achievable there")
    if dep.gemm_precision != dep.weight_dtype and dep.weight_dtype in ("fp8", "fp4"):
        out.append(f"{hw.id} has no {dep.weight_dtype} tensor rate: {dep.weight_dtype} weights are read as stored "
                   f"and multiplied at {dep.gemm_precision} (weight-only quantization)")
    if not kv_dtype_given:
        out.append(f"KV cache assumed {dep.kv_dtype} (no KV-cache precision given)")
    if requested_mode and requested_mode != "max":
        out.append(f"batch 'max' runs mode max (continuous batching at the largest batch that fits); the requested "
                   f"mode {requested_mode} was not used")
    if mode == "max":
        largest = int(B.max()) if B.size else 0
        capped = max_batch_size is not None and largest >= max_batch_size
        out.append(f"batch chosen: the largest that fits{' up to --max-batch' if capped else ''} "
                   f"({largest:,} sequences{' at most' if B.size > 1 else ''})")
    if mode in ("continuous", "max"):
        per_step = float(np.max(B / np.maximum(Out, 1)))
        out.append(f"continuous batching with chunked prefill: each step decodes all requests and prefills about "
                   f"{per_step:.3g} arriving prompt{'s' if per_step != 1 else ''}, so a request's first token comes "
                   "after one step (TTFT = TPOT when that step holds a whole prompt); queueing is not included")
    return out
