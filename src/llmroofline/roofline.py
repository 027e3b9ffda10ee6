"""The roofline, written once: time = max(FLOPs / achieved peak, bytes / achieved bandwidth).

Calibrated, a kernel also pays a share of the shorter bound (`overlap_loss`): near the ridge real
kernels neither hide memory behind compute nor compute behind memory completely.

Each operator is timed over the whole grid at once (`kernel_seconds`, for one operator or a stack
of like ones); `time_ops` stacks the times to (n_ops, *grid) for tables and figures,
`pass_seconds` adds them up in operator order (on a small grid, like kernels timed as stacks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .collectives import collective_time, links
from .device_stack import stack_shape
from .efficiency import Efficiency
from .hardware import Hardware
from .operators import ATTN_DECODE, ATTN_PREFILL, COMM, GEMM, ZERO, Operator


def attainable_flops(intensity, peak: float, bandwidth: float):
    """Attainable FLOP/s at an arithmetic intensity (FLOPs/byte): min(peak, intensity × bandwidth)."""
    return np.minimum(peak, np.asarray(intensity, dtype=float) * bandwidth)


def roofline_time(flops, nbytes, peak: float, bandwidth: float):
    """Seconds for work bounded by compute or memory, whichever is slower."""
    return np.maximum(np.asarray(flops, dtype=float) / peak, np.asarray(nbytes, dtype=float) / bandwidth)


def device_peak(hw: Hardware, precision: str) -> float:
    """Dense FLOP/s for a precision; fp16 and bf16 stand in for each other (same rate on
    every device that has both). A device stack: each member's, as an array (its peak_flops hold
    the stand-ins already)."""
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
    untiled = np.logical_and(eff.gemm_min_rows <= 1, eff.gemm_tile_rows <= 1)  # an array for a device stack
    if np.all(untiled):
        return rows
    step = np.where(rows <= eff.gemm_tile_rows, eff.gemm_min_rows, np.maximum(eff.gemm_tile_rows / 2, eff.gemm_min_rows))
    tiled = np.ceil(np.maximum(rows, eff.gemm_min_rows) / step) * step
    padded = np.where(rows <= eff.gemv_rows, rows, tiled)
    return padded if not np.any(untiled) else np.where(untiled, rows, padded)  # a device stack may mix both


NO_COMM = np.zeros(())  # the communication time of an operator that does not communicate
NO_COMM.flags.writeable = False

_LOWP_FACTOR = {"fp8": "fp8_gemm_factor", "int8": "fp8_gemm_factor", "fp4": "fp4_gemm_factor"}
_LOWP_MEMORY = {"fp8": "fp8_memory_factor", "int8": "fp8_memory_factor", "fp4": "fp4_memory_factor"}


def operator_times(op: Operator, hw: Hardware, eff: Efficiency,
                   memo: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One operator's compute-bound, memory-bound and communication seconds per instance, over its grid.

    The branches are on the operator's kind (a label), never on values: values decide only where
    an attention kernel is a decode kernel (one new token per sequence), per grid point. `memo`
    keeps what the operators of one pass share per rows array (tile padding, attention fractions).
    """
    compute_s, memory_s = kernel_seconds(op.kind, op.precision, op.flops, op.bytes, op.gemm_rows, op.kv_read_bytes,
                                         op.kv_group, hw, eff, memo)
    return compute_s, memory_s, comm_seconds(op, hw, eff) if op.kind == COMM else NO_COMM


def kernel_seconds(kind: str, precision: str, flops, nbytes, rows, kv_read_bytes, kv_group: float, hw: Hardware,
                   eff: Efficiency, memo: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Compute-bound and memory-bound seconds of kernels of one kind and precision: FLOPs, bytes
    of memory traffic, GEMM rows (new tokens per sequence for attention) and K/V bytes read are
    arrays over the grid, for one operator or for a stack of like operators (elementwise alike)."""
    peak = device_peak(hw, precision)
    if kind == GEMM:
        frac = eff.gemm_compute * getattr(eff, _LOWP_FACTOR[precision]) if precision in _LOWP_FACTOR \
            else eff.gemm_compute
        compute_s = flops * _padding(rows, eff, memo) / (peak * frac)
        # fp8/fp4 weights stream with their scales and dequantization: a share of 16-bit bandwidth
        stream = getattr(eff, _LOWP_MEMORY[precision]) if precision in _LOWP_MEMORY else 1.0
        memory_s = nbytes / (hw.memory_bandwidth * eff.memory * stream)
    elif kind in (ATTN_PREFILL, ATTN_DECODE):
        compute_frac, memory_frac, reread = _attention_fractions(rows, kv_group, eff, memo)
        compute_s = flops / (peak * compute_frac)
        memory_s = (nbytes + (reread - 1.0) * kv_read_bytes) / (hw.memory_bandwidth * memory_frac)
    else:
        compute_s = flops / (peak * 1.0)
        memory_s = nbytes / (hw.memory_bandwidth * eff.memory)
    return np.asarray(compute_s, dtype=float), np.asarray(memory_s, dtype=float)


def comm_seconds(op: Operator, hw: Hardware, eff: Efficiency) -> np.ndarray:
    """Seconds of a communicating operator. Inside one scale-up domain the flat ring (all-reduce:
    2(n-1)/n of the message per device); beyond it, the part that crosses domains rides the NICs
    (collectives.py)."""
    return collective_time(op.comm_pattern, op.comm_bytes, op.comm_devices, links(hw, eff))


def _attention_fractions(rows, kv_group: float, eff: Efficiency,
                         memo: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Achieved compute and memory fractions of an attention kernel, and how often it reads K/V.

    An attention kernel is a decode kernel where each sequence adds one token (rows = new
    tokens per sequence), decided per grid point: a grid may mix one-token and longer prompts.
    Decode kernels that do not share K/V across a query group re-read it group^(1-reuse) times.
    The operators of one layer share their rows: `memo` keeps the fractions per rows array.
    """
    key = ("attention", id(rows), kv_group)
    if memo is not None and key in memo and memo[key][0] is rows:
        return memo[key][1]
    decode_like = np.asarray(rows) <= 1
    out = (np.where(decode_like, eff.attn_decode_compute, eff.attn_prefill_compute),
           np.where(decode_like, eff.attn_decode_memory, eff.memory),
           np.where(decode_like, float(kv_group) ** (1.0 - eff.gqa_kv_reuse), 1.0))
    if memo is not None:
        memo[key] = (rows, out)  # the array is kept, so that its id stays its own
    return out


def _padding(rows, eff: Efficiency, memo: dict | None) -> np.ndarray:
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
    if overlap_loss if isinstance(overlap_loss, float) else np.any(overlap_loss):  # a device stack's array: t + 0·min is t
        t = t + overlap_loss * np.minimum(compute_s, memory_s)
    return t if comm_s is NO_COMM or isinstance(comm_s, float) and comm_s == 0.0 else t + comm_s


# A pass over a grid of at most this many points times its operators as stacks of like kernels
# (same kind and precision): a few numpy calls per stack cost less than a few per operator. A
# larger grid accumulates operator by operator, which is faster from about 300 points on (the
# stacks' copies outweigh the calls saved) and holds no (n_ops, *grid) array.
STACK_POINTS = 256

def pass_seconds(ops: list[Operator], hw: Hardware, eff: Efficiency) -> np.ndarray:
    """Seconds of all instances of all operators, summed in operator order."""
    stacks = small_pass_stacks(ops, hw, eff)
    if stacks is not None:
        compute, memory, comm, counts = stacks
        return in_order(counts * step_seconds(compute, memory, comm, eff.overlap_loss))
    total = np.zeros(())
    memo: dict = {}
    for op in ops:
        t = op.count * step_seconds(*operator_times(op, hw, eff, memo), eff.overlap_loss)
        if total.shape == t.shape:
            total += t
        else:
            total = total + t
    return total


def in_order(rows: np.ndarray) -> np.ndarray:
    """The sum of a stack's rows added one after the other, as a loop over operators adds them (a
    reduction may pair terms differently): the same sums to the last bit."""
    return np.add.accumulate(rows, axis=0)[-1]


def _field_shapes(ops: list[Operator]) -> set[tuple[int, ...]]:
    """The distinct shapes of the operators' arrays."""
    def fields(op: Operator) -> tuple:
        return (op.flops, op.weight_bytes, op.act_read_bytes, op.act_write_bytes, op.kv_read_bytes, op.kv_write_bytes,
                op.gemm_rows, op.comm_bytes)
    try:
        return {x.shape for op in ops for x in fields(op)}
    except AttributeError:  # a field given as a plain number
        return {np.shape(x) for op in ops for x in fields(op)}


def small_pass_stacks(ops: list[Operator], hw: Hardware, eff: Efficiency
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Compute, memory and communication seconds per instance of a pass's operators as
    (n_ops, *grid) stacks, with their counts as an (n_ops, 1, ...) column; None when the grid
    has more than STACK_POINTS points (then time operator by operator).

    Like kernels (same kind, precision and GQA group) are timed together by `kernel_seconds`:
    every value goes through the same elementwise steps as with `operator_times`. Communication
    is NO_COMM when no operator communicates.
    """
    fields = pass_fields(ops)
    if fields is None:
        return None
    # The step time and the energy model time the same pass (the same operator objects, inside
    # `estimate.reuse_passes()`) on the same device: the last few stacks are kept, by identity.
    key = (id(fields), id(hw), id(eff))
    hit = _RECENT_STACKS.get(key)
    if hit is not None:  # the same live objects: a kept entry holds its own, so their ids are not reused
        return hit[3]
    stacks = _stacks(fields, hw, eff)
    if len(_RECENT_STACKS) >= 4:
        del _RECENT_STACKS[next(iter(_RECENT_STACKS))]
    _RECENT_STACKS[key] = (fields, hw, eff, stacks)  # the objects are kept, so that their ids stay theirs
    return stacks


_RECENT_STACKS: dict[tuple, tuple] = {}


@dataclass(frozen=True, eq=False)
class PassFields:
    """A small pass's operator fields stacked by like kernels (kind, precision, GQA group): what
    its stacks need from the operators, which does not depend on the device."""

    ops: tuple[Operator, ...]
    shape: tuple[int, ...]
    like: tuple[tuple[str, str, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
    counts: np.ndarray  # (n_ops, 1, ...)
    # kernel_seconds' memo (tile padding and attention fractions of the stacked rows) per set of
    # the efficiencies they depend on, which most devices of a search share.
    memos: dict[tuple[float, ...], dict] = field(default_factory=dict)
    _lifted: dict[int, PassFields] = field(default_factory=dict)

    def lifted(self, ndim: int) -> PassFields:
        """The same fields over a grid of at least `ndim` axes (unit axes in front), so that a
        device stack's last axis (device_stack.py) falls after the operator axis."""
        if len(self.shape) >= ndim:
            return self
        if ndim not in self._lifted:
            extra = (1,) * (ndim - len(self.shape))

            def up(a: np.ndarray) -> np.ndarray:
                return a.reshape(a.shape[:1] + extra + a.shape[1:]) if a.ndim else a

            like = tuple((kind, p, g, idx, up(f), up(b), up(r), up(kv)) for kind, p, g, idx, f, b, r, kv in self.like)
            self._lifted[ndim] = PassFields(self.ops, extra + self.shape, like, up(self.counts))
        return self._lifted[ndim]

    def memo(self, eff: Efficiency) -> dict:
        key = tuple(v if isinstance(v, float) else np.asarray(v).tobytes()  # a device stack's arrays by value
                    for v in (eff.gemm_min_rows, eff.gemm_tile_rows, eff.gemv_rows, eff.memory,
                              eff.attn_prefill_compute, eff.attn_decode_memory, eff.attn_decode_compute,
                              eff.gqa_kv_reuse))
        if key not in self.memos:
            if len(self.memos) >= 16:
                self.memos.clear()
            self.memos[key] = {}
        return self.memos[key]


def pass_fields(ops: list[Operator]) -> PassFields | None:
    """The stacked fields of a pass over at most STACK_POINTS grid points (None above).

    `recommend` times the same operator list on every device that shares its GEMM rates (inside
    `estimate.reuse_passes()`), so the stacks are gathered once per list and kept, by identity,
    for the most recent lists.
    """
    key = tuple(map(id, ops))
    hit = _RECENT_FIELDS.get(key)
    if hit is not None:  # a kept entry holds its operators, so their ids are not reused
        return hit[1]
    fields = _gather(ops)
    if fields is None:  # a large pass is not kept: its operators' arrays would stay alive with it
        return None
    size = len(ops) * math.prod(fields.shape)
    while _RECENT_FIELDS and (len(_RECENT_FIELDS) >= RECENT_FIELDS or _KEPT[0] + size > RECENT_FIELD_VALUES):
        _, oldest = _RECENT_FIELDS.pop(next(iter(_RECENT_FIELDS)))
        _KEPT[0] -= len(oldest.ops) * math.prod(oldest.shape)
    _RECENT_FIELDS[key] = (tuple(ops), fields)
    _KEPT[0] += size
    return fields


# Kept: every pass of one model's search over all devices (DeepSeek-V3 on up to 32 GPUs: 254
# lists, 243,000 operator x point values), at most a few tens of MB of stacks.
RECENT_FIELDS = 512
RECENT_FIELD_VALUES = 1_000_000
_RECENT_FIELDS: dict[tuple, tuple] = {}
_KEPT = [0]  # operator x point values of the kept fields


def _gather(ops: list[Operator]) -> PassFields | None:
    shape = np.broadcast_shapes(*_field_shapes(ops))
    if not ops or math.prod(shape) > STACK_POINTS:
        return None
    like: dict[tuple, list[int]] = {}
    for i, op in enumerate(ops):
        like.setdefault((op.kind, op.precision, op.kv_group), []).append(i)
    groups = []
    for (kind, precision, kv_group), idx in like.items():
        flops, nbytes, rows = np.empty((len(idx), *shape)), np.empty((len(idx), *shape)), np.empty((len(idx), *shape))
        attention = kind in (ATTN_PREFILL, ATTN_DECODE)
        kv_read = np.empty((len(idx), *shape)) if attention else ZERO
        for j, i in enumerate(idx):
            op = ops[i]
            flops[j], nbytes[j], rows[j] = op.flops, op.bytes, op.gemm_rows
            if attention:
                kv_read[j] = op.kv_read_bytes
        for a in (flops, nbytes, rows, kv_read):
            a.flags.writeable = False
        groups.append((kind, precision, kv_group, np.array(idx), flops, nbytes, rows, kv_read))
    counts = np.array([op.count for op in ops], dtype=float).reshape((-1,) + (1,) * len(shape))
    counts.flags.writeable = False
    return PassFields(tuple(ops), shape, tuple(groups), counts)


def _stacks(fields: PassFields, hw: Hardware, eff: Efficiency
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    stack = stack_shape(hw)
    fields = fields.lifted(len(stack))
    ops, shape = fields.ops, np.broadcast_shapes(fields.shape, stack)  # a device stack adds its axis
    n = len(ops)
    compute, memory = np.empty((n, *shape)), np.empty((n, *shape))
    memo = fields.memo(eff)
    for kind, precision, kv_group, idx, flops, nbytes, rows, kv_read in fields.like:
        compute[idx], memory[idx] = kernel_seconds(kind, precision, flops, nbytes, rows, kv_read, kv_group, hw, eff,
                                                   memo)
    comm: np.ndarray = NO_COMM
    if any(op.kind == COMM for op in ops):
        comm = np.zeros((n, *shape))
        for i, op in enumerate(ops):
            if op.kind == COMM:
                comm[i] = comm_seconds(op, hw, eff)
    for a in (compute, memory, comm):
        a.flags.writeable = False  # shared by the callers that ask again
    return compute, memory, comm, fields.counts


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
