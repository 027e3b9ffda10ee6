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


def time_ops(ops: list[Operator], hw: Hardware, eff: Efficiency) -> OpTimes:
    """Time every operator on a device under given efficiencies."""
    shape = np.broadcast_shapes(*(np.shape(getattr(op, f)) for op in ops
                                  for f in ("flops", "weight_bytes", "act_read_bytes", "kv_read_bytes", "comm_bytes", "gemm_rows")))

    def stack(values):
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values])

    def per_op(values):
        return np.asarray(values, dtype=float).reshape((-1,) + (1,) * len(shape))

    kinds = [op.kind for op in ops]
    flops = stack([op.flops for op in ops])
    nbytes = stack([op.bytes for op in ops])
    rows = stack([op.gemm_rows for op in ops])
    peak = per_op([device_peak(hw, op.precision) for op in ops])
    is_gemm = per_op([k == GEMM for k in kinds]) > 0
    is_attn = per_op([k in (ATTN_PREFILL, ATTN_DECODE) for k in kinds]) > 0
    # An attention kernel is a decode kernel where each sequence adds one token (rows = new
    # tokens per sequence), decided per grid point: a grid may mix one-token and longer prompts.
    decode_like = is_attn & (rows <= 1)
    compute_frac = np.where(is_gemm, eff.gemm_compute,
                            np.where(decode_like, eff.attn_decode_compute,
                                     np.where(is_attn, eff.attn_prefill_compute, 1.0)))
    memory_frac = np.where(decode_like, eff.attn_decode_memory, eff.memory)
    # A GEMM with M rows runs on whole tiles: it costs like M + tile_rows rows.
    tile_factor = np.where(is_gemm, (rows + eff.gemm_tile_rows) / np.maximum(rows, 1e-30), 1.0)
    compute_s = np.where(flops > 0, flops * tile_factor / (peak * compute_frac), 0.0)
    # Decode kernels that do not share K/V across a query group re-read it group^(1-reuse) times.
    group = per_op([op.kv_group for op in ops])
    reread = np.where(decode_like, group ** (1.0 - eff.gqa_kv_reuse), 1.0)
    kv_read = stack([op.kv_read_bytes for op in ops])
    memory_s = (nbytes + (reread - 1.0) * kv_read) / (hw.memory_bandwidth * memory_frac)

    comm = stack([op.comm_bytes for op in ops])
    devices = per_op([op.comm_devices for op in ops])
    is_comm = per_op([k == COMM for k in kinds]) > 0
    # Ring all-reduce: each device sends and receives 2(n-1)/n of the message; all-to-all:
    # (n-1)/n of what it holds leaves the device.
    share = per_op([2.0 if op.comm_pattern == "all_reduce" else 1.0 for op in ops])
    ring = share * (devices - 1) / np.maximum(devices, 1)
    comm_s = np.where(is_comm, ring * comm / (hw.interconnect_bandwidth * eff.comm_bandwidth) + eff.comm_latency_s, 0.0)
    return OpTimes(
        names=[op.name for op in ops],
        counts=np.asarray([op.count for op in ops], dtype=float),
        compute_s=compute_s,
        memory_s=memory_s,
        comm_s=comm_s,
        windows=np.asarray([op.window for op in ops], dtype=float),
        overlap_loss=eff.overlap_loss,
    )


def pass_overhead_s(num_layers: int, eff: Efficiency) -> float:
    """Fixed cost of one forward pass: per-layer launches plus per-step host work."""
    return num_layers * eff.layer_overhead_s + eff.step_overhead_s
