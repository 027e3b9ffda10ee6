"""The roofline, written once: time = max(FLOPs / achieved peak, bytes / achieved bandwidth).

Calibrated, a kernel also pays a share of the shorter bound (`overlap_loss`): near the ridge real
kernels neither hide memory behind compute nor compute behind memory completely.

Operators are stacked into arrays of shape (n_ops, *grid) so one expression times them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        longer = np.maximum(self.compute_s, self.memory_s)
        shorter = np.minimum(self.compute_s, self.memory_s)
        return longer + self.overlap_loss * shorter + self.comm_s

    def total(self) -> np.ndarray:
        """Seconds for one forward pass (all instances of all operators)."""
        c = self.counts.reshape((-1,) + (1,) * (self.time_s.ndim - 1))
        return (c * self.time_s).sum(axis=0)

    def bound(self) -> np.ndarray:
        return np.where(self.comm_s > 0, "comm", np.where(self.compute_s >= self.memory_s, "compute", "memory"))


@dataclass(frozen=True)
class OpArrays:
    """The efficiency-free description of a pass: per-operator fields stacked to (n_ops, *grid)."""

    names: list[str]
    kinds: list[str]
    precisions: list[str]
    counts: np.ndarray  # (n_ops,)
    flops: np.ndarray
    nbytes: np.ndarray
    rows: np.ndarray
    kv_read: np.ndarray
    comm: np.ndarray
    comm_devices: np.ndarray  # (n_ops,)
    comm_share: np.ndarray  # (n_ops,) 2 for all-reduce, 1 for all-to-all
    kv_group: np.ndarray  # (n_ops,)
    windows: np.ndarray  # (n_ops,)


def op_arrays(ops: list[Operator]) -> OpArrays:
    """Stack the operators' FLOPs and bytes over the grid (one copy per field)."""
    shape = np.broadcast_shapes(*(np.shape(getattr(op, f)) for op in ops
                                  for f in ("flops", "weight_bytes", "act_read_bytes", "kv_read_bytes", "comm_bytes",
                                            "gemm_rows")))

    def stack(get) -> np.ndarray:
        out = np.empty((len(ops),) + shape)
        for i, op in enumerate(ops):
            out[i] = get(op)
        return out

    return OpArrays(
        names=[op.name for op in ops], kinds=[op.kind for op in ops], precisions=[op.precision for op in ops],
        counts=np.array([op.count for op in ops], dtype=float),
        flops=stack(lambda op: op.flops), nbytes=stack(lambda op: op.bytes), rows=stack(lambda op: op.gemm_rows),
        kv_read=stack(lambda op: op.kv_read_bytes), comm=stack(lambda op: op.comm_bytes),
        comm_devices=np.array([op.comm_devices for op in ops], dtype=float),
        comm_share=np.array([2.0 if op.comm_pattern == "all_reduce" else 1.0 for op in ops]),
        kv_group=np.array([op.kv_group for op in ops], dtype=float),
        windows=np.array([op.window for op in ops], dtype=float),
    )


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


_LOWP_FACTOR = {"fp8": "fp8_gemm_factor", "int8": "fp8_gemm_factor", "fp4": "fp4_gemm_factor"}
_LOWP_MEMORY = {"fp8": "fp8_memory_factor", "int8": "fp8_memory_factor", "fp4": "fp4_memory_factor"}


def time_ops(ops: list[Operator] | OpArrays, hw: Hardware, eff: Efficiency) -> OpTimes:
    """Time every operator on a device under given efficiencies."""
    a = ops if isinstance(ops, OpArrays) else op_arrays(ops)
    nd = a.flops.ndim - 1

    def per_op(values) -> np.ndarray:
        return np.asarray(values, dtype=float).reshape((-1,) + (1,) * nd)

    is_gemm = per_op([k == GEMM for k in a.kinds]) > 0
    is_attn = per_op([k in (ATTN_PREFILL, ATTN_DECODE) for k in a.kinds]) > 0
    gemm_frac = per_op([eff.gemm_compute * getattr(eff, _LOWP_FACTOR[p]) if p in _LOWP_FACTOR else eff.gemm_compute
                        for p in a.precisions])
    peak = per_op([device_peak(hw, p) for p in a.precisions])
    # An attention kernel is a decode kernel where each sequence adds one token (rows = new
    # tokens per sequence), decided per grid point: a grid may mix one-token and longer prompts.
    decode_like = is_attn & (a.rows <= 1)
    compute_frac = np.where(is_gemm, gemm_frac,
                            np.where(decode_like, eff.attn_decode_compute,
                                     np.where(is_attn, eff.attn_prefill_compute, 1.0)))
    stream = per_op([getattr(eff, _LOWP_MEMORY[p]) if k == GEMM and p in _LOWP_MEMORY else 1.0
                     for k, p in zip(a.kinds, a.precisions, strict=True)])
    memory_frac = np.where(decode_like, eff.attn_decode_memory, eff.memory * stream)
    flops = np.where(is_gemm, a.flops * padded_rows(a.rows, eff) / np.maximum(a.rows, 1e-30), a.flops)
    compute_s = flops / (peak * compute_frac)
    # Decode kernels that do not share K/V across a query group re-read it group^(1-reuse) times.
    reread = np.where(decode_like, per_op(a.kv_group) ** (1.0 - eff.gqa_kv_reuse), 1.0)
    memory_s = (a.nbytes + (reread - 1.0) * a.kv_read) / (hw.memory_bandwidth * memory_frac)

    # Ring all-reduce: each device sends and receives 2(n-1)/n of the message; all-to-all:
    # (n-1)/n of what it holds leaves the device.
    devices = per_op(a.comm_devices)
    ring = per_op(a.comm_share) * (devices - 1) / np.maximum(devices, 1)
    is_comm = per_op([k == COMM for k in a.kinds]) > 0
    comm_s = np.where(is_comm, ring * a.comm / (hw.interconnect_bandwidth * eff.comm_bandwidth) + eff.comm_latency_s, 0.0)
    return OpTimes(names=a.names, counts=a.counts, compute_s=compute_s, memory_s=memory_s, comm_s=comm_s,
                   windows=a.windows, overlap_loss=eff.overlap_loss)


def pass_overhead_s(num_layers: int, eff: Efficiency, moe_layers: int = 0) -> float:
    """Fixed cost of one forward pass: per-layer launches, MoE routing and permutation per MoE
    layer, and per-step host work."""
    return num_layers * eff.layer_overhead_s + moe_layers * eff.moe_layer_overhead_s + eff.step_overhead_s
