"""The roofline, written once: time = max(FLOPs / achieved peak, bytes / achieved bandwidth).

Calibrated, a kernel also pays a share of the shorter bound (`overlap_loss`): near the ridge real
kernels neither hide memory behind compute nor compute behind memory completely.

Each operator is timed over the whole grid at once; `time_ops` stacks the times to (n_ops, *grid)
for tables and figures, `pass_seconds` adds them up operator by operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .collectives import collective_time, links
from .efficiency import Efficiency
from .hardware import Hardware
from .operators import ATTN_DECODE, ATTN_PREFILL, COMM, GEMM, Operator


def attainable_flops(intensity, peak: float, bandwidth: float):
    """Attainable FLOP/s at an arithmetic intensity (FLOPs/byte): min(peak, intensity × bandwidth)."""
    return np.minimum(peak, np.asarray(intensity, dtype=float) * bandwidth)


def roofline_time(flops, nbytes, peak: float, bandwidth: float):
    """Seconds for work bounded by compute or memory, whichever is slower."""
    return np.maximum(np.asarray(flops, dtype=float) / peak, np.asarray(nbytes, dtype=float) / bandwidth)


def device_peak(hw: Hardware, precision: str) -> float:
    """Dense FLOP/s for a precision; fp16 and bf16 stand in for each other (same rate on
    every device that has both)."""
    if precision in hw.peak_flops:
        return hw.peak_flops[precision]
    twin = {"fp16": "bf16", "bf16": "fp16"}.get(precision)
    if twin and twin in hw.peak_flops:
        return hw.peak_flops[twin]
    return hw.peak(precision)  # raises a clear error


@dataclass(frozen=True)
class OpTimes:
    """Per-operator compute-bound and memory-bound times (seconds per instance), shape (n_ops, *grid)."""

    names: list[str]
    counts: np.ndarray  # (n_ops,)
    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    windows: np.ndarray  # (n_ops,) sliding window of each op (inf: none)

    overlap_loss: float = 0.0  # share of the shorter of compute and memory time not hidden by the longer

    @property
    def time_s(self) -> np.ndarray:
        return step_seconds(self.compute_s, self.memory_s, self.comm_s, self.overlap_loss)

    def total(self) -> np.ndarray:
        """Seconds for one forward pass (all instances of all operators)."""
        c = self.counts.reshape((-1,) + (1,) * (self.time_s.ndim - 1))
        return (c * self.time_s).sum(axis=0)

    def bound(self) -> np.ndarray:
        return np.where(self.comm_s > 0, "comm", np.where(self.compute_s >= self.memory_s, "compute", "memory"))


def padded_rows(rows, eff: Efficiency):
    """Token rows a GEMM really computes: whole tiles of the token dimension.

    Up to gemv_rows a GEMV kernel streams the weights once (no tile). Up to gemm_tile_rows the
    tokens sit on the narrow side of the MMA (swap-AB), in steps of gemm_min_rows; above, kernels
    tile them in steps of half a large tile (64-row and 128-row tiles both exist, and the heuristic
    picks the one that wastes less). The plain roofline pads nothing.
    """
    rows = np.asarray(rows, dtype=float)
    if eff.gemm_min_rows <= 1 and eff.gemm_tile_rows <= 1:
        return rows
    step = np.where(rows <= eff.gemm_tile_rows, eff.gemm_min_rows, max(eff.gemm_tile_rows / 2, eff.gemm_min_rows))
    tiled = np.ceil(np.maximum(rows, eff.gemm_min_rows) / step) * step
    return np.where(rows <= eff.gemv_rows, rows, tiled)


NO_COMM = np.zeros(())  # the communication time of an operator that does not communicate
NO_COMM.flags.writeable = False

_LOWP_FACTOR = {"fp8": "fp8_gemm_factor", "int8": "fp8_gemm_factor", "fp4": "fp4_gemm_factor"}
_LOWP_MEMORY = {"fp8": "fp8_memory_factor", "int8": "fp8_memory_factor", "fp4": "fp4_memory_factor"}


def operator_times(op: Operator, hw: Hardware, eff: Efficiency,
                   memo: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One operator's compute-bound, memory-bound and communication seconds per instance, over its grid.

    The branches are on the operator's kind (a label), never on values: values decide only where
    an attention kernel is a decode kernel (one new token per sequence), per grid point. `memo`
    keeps the tile padding of GEMM rows shared by the operators of one pass (the same array).
    """
    if op.kind == COMM:
        # Inside one scale-up domain the flat ring (all-reduce: 2(n-1)/n of the message per
        # device); beyond it, the part that crosses domains rides the NICs (collectives.py).
        comm_s = collective_time(op.comm_pattern, op.comm_bytes, op.comm_devices, links(hw, eff))
    else:
        comm_s = NO_COMM
    peak = device_peak(hw, op.precision)
    nbytes = op.bytes
    if op.kind == GEMM:
        frac = eff.gemm_compute * getattr(eff, _LOWP_FACTOR[op.precision]) if op.precision in _LOWP_FACTOR \
            else eff.gemm_compute
        compute_s = op.flops * _padding(op.gemm_rows, eff, memo) / (peak * frac)
        # fp8/fp4 weights stream with their scales and dequantization: a share of 16-bit bandwidth
        stream = getattr(eff, _LOWP_MEMORY[op.precision]) if op.precision in _LOWP_MEMORY else 1.0
        memory_s = nbytes / (hw.memory_bandwidth * eff.memory * stream)
    elif op.kind in (ATTN_PREFILL, ATTN_DECODE):
        # An attention kernel is a decode kernel where each sequence adds one token (rows = new
        # tokens per sequence), decided per grid point: a grid may mix one-token and longer prompts.
        decode_like = np.asarray(op.gemm_rows) <= 1
        compute_s = op.flops / (peak * np.where(decode_like, eff.attn_decode_compute, eff.attn_prefill_compute))
        # Decode kernels that do not share K/V across a query group re-read it group^(1-reuse) times.
        reread = np.where(decode_like, float(op.kv_group) ** (1.0 - eff.gqa_kv_reuse), 1.0)
        memory_s = ((nbytes + (reread - 1.0) * op.kv_read_bytes)
                    / (hw.memory_bandwidth * np.where(decode_like, eff.attn_decode_memory, eff.memory)))
    else:
        compute_s = op.flops / (peak * 1.0)
        memory_s = nbytes / (hw.memory_bandwidth * eff.memory)
    return np.asarray(compute_s, dtype=float), np.asarray(memory_s, dtype=float), comm_s


def _padding(rows, eff: Efficiency, memo: dict[int, tuple[np.ndarray, np.ndarray]] | None) -> np.ndarray:
    """Rows a GEMM computes per useful row (padded_rows / rows); 0 where there are no rows."""
    key = id(rows)
    if memo is not None and key in memo and memo[key][0] is rows:
        return memo[key][1]
    r = np.asarray(rows, dtype=float)
    scale = padded_rows(r, eff) / np.maximum(r, 1e-30)
    if memo is not None:
        memo[key] = (rows, scale)  # the array is kept so that its id stays its own
    return scale


def step_seconds(compute_s, memory_s, comm_s, overlap_loss: float):
    """Seconds of one instance: the longer bound, the unhidden share of the shorter, and communication."""
    t = np.maximum(compute_s, memory_s)
    if overlap_loss:
        t = t + overlap_loss * np.minimum(compute_s, memory_s)
    return t if comm_s is NO_COMM or isinstance(comm_s, float) and comm_s == 0.0 else t + comm_s


def pass_seconds(ops: list[Operator], hw: Hardware, eff: Efficiency) -> np.ndarray:
    """Seconds of all instances of all operators, accumulated operator by operator (no (n_ops, *grid) stack)."""
    total = np.zeros(())
    memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for op in ops:
        t = op.count * step_seconds(*operator_times(op, hw, eff, memo), eff.overlap_loss)
        if total.shape == t.shape:
            total += t
        else:
            total = total + t
    return total


def time_ops(ops: list[Operator], hw: Hardware, eff: Efficiency) -> OpTimes:
    """Time every operator on a device under given efficiencies (arrays stacked to (n_ops, *grid))."""
    times = [operator_times(op, hw, eff) for op in ops]
    shape = np.broadcast_shapes(*(np.shape(x) for t in times for x in t))

    def stack(i: int) -> np.ndarray:
        out = np.empty((len(ops),) + shape)
        for j, t in enumerate(times):
            out[j] = t[i]
        return out

    return OpTimes(names=[op.name for op in ops], counts=np.array([op.count for op in ops], dtype=float),
                   compute_s=stack(0), memory_s=stack(1), comm_s=stack(2),
                   windows=np.array([op.window for op in ops], dtype=float), overlap_loss=eff.overlap_loss)


def pass_overhead_s(num_layers: int, eff: Efficiency, moe_layers: int = 0) -> float:
    """Fixed cost of one forward pass: per-layer launches, MoE routing and permutation per MoE
    layer, and per-step host work."""
    return num_layers * eff.layer_overhead_s + moe_layers * eff.moe_layer_overhead_s + eff.step_overhead_s
