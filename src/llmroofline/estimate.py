"""Workloads: TTFT, TPOT, end-to-end time and throughput of static and continuous batches.

Every input (batch, input and output length) may be an array; results broadcast over them.
A static batch's decode steps are summed exactly in closed form: each operator's time is the
max of two affine functions of the KV length (clamped at its sliding window), and a sum of such
a max over consecutive integers splits at the crossing point.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from . import collectives
from .collectives import boundaries_across, links
from .device_stack import per_member, stack_shape
from .efficiency import Calibration, Efficiency, load_calibration
from .energy import EnergyUse, Work, decode_steps_work, energy_use, pass_work, power_model
from .errors import InputError, show
from .hardware import Hardware, load_hardware
from .intervals import LONG_CONTEXT, estimate_interval
from .memory import MemoryUse, max_batch, memory_use
from .model import ModelSpec, load_model
from .moe_balance import check_imbalance, hottest_device_factor
from .operators import ACT_BYTES, ZERO, AttentionGroup, Operator, Sharding, forward_ops
from .precision import GROUPS, LINEAR_GROUPS, WeightPrecision, gemm_precision, normalize
from .roofline import OpTimes, operator_times, pass_overhead_s, pass_seconds, step_seconds, time_ops
from .runtime import RuntimeProfile
from .vision import check_images
from .vision_ops import vision_ops

MODES = ("static", "continuous", "max")
MAX_BATCH = 2048
ABSURD_LENGTH = 1e8
ABSURD_BATCH = 1e7
# Grid points evaluated at once: a large grid runs in blocks of rows of about this many points,
# so that temporaries stay small (in cache, and peak memory flat) while every point keeps its value.
BLOCK_POINTS = 1 << 16


@dataclass(frozen=True)
class Deployment:
    """Where and how a model runs: device, parallelism, precisions."""

    model: ModelSpec
    hardware: Hardware
    tp: int = 1
    pp: int = 1
    ep: int = 1
    weight_dtype: WeightPrecision | str | None = None  # None: as the checkpoint stores the weights
    kv_dtype: str = "fp16"
    fused_attention: bool = True
    attention_dp: int = 0  # attention replicas per pipeline stage; 0: ep / tp when ep > tp, else 1
    moe_imbalance: float = 1.0  # the busiest expert-parallel device's routed rows over the mean
    redundant_experts: int = 0  # extra expert copies spread over the ep devices (EPLB)

    @property
    def dp(self) -> int:
        """Attention replicas: data-parallel attention (each replica of tp devices its own
        sequences), or plain replicas of a dense model."""
        return self.attention_dp or Sharding(self.tp, self.ep).dp

    @property
    def sharding(self) -> Sharding:
        return Sharding(self.tp, self.ep, self.moe_imbalance, self.redundant_experts)

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def pipeline_boundaries_across(self) -> int:
        """Pipeline stage boundaries that cross a scale-up domain (stages of tp x dp devices)."""
        return boundaries_across(self.pp, self.tp * self.dp, self.hardware.max_devices)

    @cached_property
    def weights(self) -> WeightPrecision:
        """The format of each module group's weights."""
        return self.model.weight_precision(self.weight_dtype)

    @cached_property
    def gemm_precisions(self) -> dict[str, str]:
        """The device rate each module group's GEMMs run at (shared by the deployments of the
        same model, weight formats and device: treat as read-only)."""
        return _gemm_rates(self.model, self.weights, self.hardware)[0]

    @property
    def gemm_precision(self) -> str:
        """The rate of the linear group holding the most weights (the whole-model method's peak)."""
        return _gemm_rates(self.model, self.weights, self.hardware)[1]

    def weight_formats(self) -> dict[str, dict[str, object]]:
        """Per module group: storage format, bytes per weight and the GEMM rate on this device."""
        rates = self.gemm_precisions
        return {g: {**d, "gemm_precision": rates[g]} for g, d in self.weights.to_dict().items()}

    def ops(self, groups: list[AttentionGroup]) -> list[Operator]:
        return forward_ops(self.model, groups=groups, weight_dtype=self.weights, kv_dtype=self.kv_dtype,
                           gemm_precision=self.gemm_precisions, sharding=self.sharding,
                           fused_attention=self.fused_attention)

    @cached_property
    def _pass_key(self) -> tuple:
        """What a pass's operators depend on besides the sizes: the device only through the rate
        each group's GEMMs run at."""
        return (self.model.id, tuple(sorted(self.gemm_precisions.items())), self.sharding,
                _text_of(self.weights), self.kv_dtype, self.fused_attention)

    def pass_ops(self, groups: list[AttentionGroup]) -> list[Operator]:
        """The pass's operators; built once per deployment and sizes inside `reuse_passes()`."""
        if _PASS_CACHE is None:
            return self.ops(groups)
        key = (self._pass_key, tuple((g.label, *(_array_key(x) for x in (g.batch, g.new, g.past))) for g in groups))
        if key not in _PASS_CACHE:
            _PASS_CACHE[key] = self.ops(groups)
        return _PASS_CACHE[key]


_RATES: dict[tuple[int, int, int], tuple[object, object, object, tuple[dict[str, str], str]]] = {}


def _gemm_rates(model: ModelSpec, weights: WeightPrecision, hw: Hardware) -> tuple[dict[str, str], str]:
    """Each module group's GEMM rate on `hw`, and the rate of the linear group holding the most
    weights; kept by identity for the objects a search passes again and again (every estimate of
    `recommend` builds a new Deployment of the same model and device)."""
    key = (id(model), id(weights), id(hw))
    hit = _RATES.get(key)
    if hit is not None and hit[0] is model and hit[1] is weights and hit[2] is hw:
        return hit[3]
    available = hw.precisions
    rates = {g: gemm_precision(weights.format(g).precision, available) for g in GROUPS}
    elements = model.weight_elements()
    main = max((g for g in LINEAR_GROUPS if g in weights.groups), key=lambda g: elements[g][0])
    if len(_RATES) >= 1024:
        _RATES.clear()
    _RATES[key] = (model, weights, hw, (rates, rates[main]))  # the objects are kept, so that their ids stay theirs
    return rates, rates[main]


def gemm_rates(model: ModelSpec, weights: WeightPrecision, hw: Hardware) -> dict[str, str]:
    """Each module group's GEMM rate on `hw` (read-only: shared between calls)."""
    return _gemm_rates(model, weights, hw)[0]


# Passes keyed by deployment and sizes, kept only inside `reuse_passes()`: fitting evaluates the
# same rows hundreds of times with different efficiencies, and the operators do not depend on them.
_PASS_CACHE: dict[tuple, list[Operator]] | None = None


_TEXTS: dict[int, tuple[object, str]] = {}


def _text_of(x: object) -> str:
    """repr(x), kept by identity for the objects a search passes again and again."""
    hit = _TEXTS.get(id(x))
    if hit is None or hit[0] is not x:
        if len(_TEXTS) >= 256:
            _TEXTS.clear()
        hit = _TEXTS[id(x)] = (x, repr(x))  # the object is kept, so that its id stays its own
    return hit[1]


def _array_key(x) -> tuple:
    if isinstance(x, (int, float)):
        return ((), float(x))
    a = np.asarray(x, dtype=float)
    return (a.shape, a.tobytes())


@contextmanager
def reuse_passes():
    """Within this block, passes over the same deployment and sizes are built once."""
    global _PASS_CACHE
    previous, _PASS_CACHE = _PASS_CACHE, {}
    try:
        yield
    finally:
        _PASS_CACHE = previous


MAX_DEVICES = 4096  # tp x dp x pp of one instance: far beyond any deployment (DeepSeek decodes on 320)


def _degree(name: str, v, upper: int = 1024) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= upper:
        raise InputError(f"{name} must be a whole number from 1 to {upper}, got {show(v)}")
    return int(v)


def resolve_parallelism(m: ModelSpec, tp: int, pp: int, ep: int | None, dp: int | None,
                        redundant_experts: int = 0) -> tuple[int, int]:
    """(ep, dp) of a layout, with the defaults filled in, or an InputError naming the constraint.

    gpus = tp x dp x pp. dp attention replicas per pipeline stage, each of tp devices with its
    own sequences. ep: devices the routed experts spread over; by default tp x dp for a MoE model
    with dp > 1 (DeepSeek style: the experts over every device of a stage), else 1. Without dp,
    ep > tp implies dp = ep / tp (the layout expert parallelism meant before dp existed).
    """
    tp, pp = _degree("tp", tp), _degree("pp", pp)
    ep = None if ep is None else _degree("ep", ep)
    dp = None if dp is None else _degree("dp", dp)
    if isinstance(redundant_experts, bool) or not isinstance(redundant_experts, (int, np.integer)) \
            or not 0 <= redundant_experts <= 4096:
        raise InputError(f"redundant_experts must be a whole number from 0 to 4096, got {show(redundant_experts)}")
    if ep is None:
        ep = tp * dp if dp is not None and dp > 1 and m.is_moe else 1
    if dp is None:
        dp = ep // tp if ep > tp else 1
    if tp * dp * pp > MAX_DEVICES:
        raise InputError(f"tp x dp x pp = {tp} x {dp} x {pp} = {tp * dp * pp} devices; at most {MAX_DEVICES}")
    if ep > 1 or redundant_experts:
        if not m.is_moe:
            what = f"ep = {ep}" if ep > 1 else f"redundant_experts = {redundant_experts}"
            raise InputError(f"{what} needs a mixture-of-experts model; {m.id} is dense")
        if tp % ep and ep % tp:
            raise InputError(f"ep = {ep} must divide tp = {tp} (experts inside the tensor-parallel group) or be a "
                             f"multiple of it (data-parallel attention)")
        if (tp * dp) % ep:
            raise InputError(f"ep = {ep} must divide tp x dp = {tp} x {dp} = {tp * dp} (the experts spread over the "
                             f"devices of one pipeline stage)")
        if redundant_experts and ep == 1:
            raise InputError(f"redundant_experts = {redundant_experts} needs expert parallelism (ep > 1): with ep = 1 "
                             "every device holds every expert")
        slots = m.num_experts + redundant_experts
        if slots % ep:
            raise InputError(f"ep = {ep} must divide the {m.num_experts} routed experts"
                             + (f" + {redundant_experts} redundant = {slots}" if redundant_experts else "")
                             + " (each device holds the same number of experts)")
    return ep, dp


def make_deployment(model, hardware, *, tp: int = 1, pp: int = 1, ep: int | None = None, dp: int | None = None,
                    weight_dtype: Any = None, kv_dtype: str | None = None, fused_attention: bool = True,
                    moe_imbalance: float | None = None, redundant_experts: int = 0) -> Deployment:
    """Validate names and parallelism and build a Deployment.

    weight_dtype: None (or "checkpoint") keeps the checkpoint's precision per module group; a
    precision name puts the linear layers in it; a WeightPrecision gives every group's format.
    tp, pp, ep, dp: see resolve_parallelism. moe_imbalance: the busiest expert-parallel device's
    routed rows over the mean, as measured on the deployment (used as given, at most ep); None: the
    published rule of moe_balance.py, which redundant_experts shrink. Redundant experts take memory."""
    for name, v in (("model", model), ("hardware", hardware)):
        if not isinstance(v, (str, Path, ModelSpec if name == "model" else Hardware)):
            raise InputError(f"{name} must be a name, a path or a {'ModelSpec' if name == 'model' else 'Hardware'}, "
                             f"got {type(v).__name__}")
    if not isinstance(fused_attention, (bool, np.bool_)):
        raise InputError(f"fused_attention must be true or false, got {show(fused_attention)}")
    skew = check_imbalance(moe_imbalance)
    m = load_model(model)
    ep, dp = resolve_parallelism(m, tp, pp, ep, dp, redundant_experts)
    tp, pp = int(tp), int(pp)
    hw = load_hardware(hardware)
    wd = m.weight_precision(weight_dtype)
    kd = normalize("fp16" if kv_dtype is None or (isinstance(kv_dtype, str) and not kv_dtype.strip()) else kv_dtype,
                   field="kv_dtype")
    if m.num_heads % tp:
        raise InputError(f"tp = {tp} does not divide the {m.num_heads} attention heads of {m.id}")
    if pp > m.num_layers:
        raise InputError(f"pp = {pp} exceeds the {m.num_layers} layers of {m.id}")
    hot = 1.0
    if m.is_moe and ep > 1:  # as given (measured on the deployment), else the published rule
        hot = min(skew, float(ep)) if skew is not None else hottest_device_factor(m.num_experts, ep, int(redundant_experts))
    # fp8/fp4 weights on a device without that rate run at a lower one (precision.gemm_precision).
    return Deployment(m, hw, tp, pp, ep, wd, kd, bool(fused_attention), dp, hot, int(redundant_experts))


# ---- exact sums over decode steps --------------------------------------------------------

def _sum_affine(c0, c1, lo, hi):
    """Σ_{L=lo}^{hi} (c0 + c1·L) over integers; 0 when hi < lo."""
    n = np.maximum(hi - lo + 1, 0)
    return n * c0 + c1 * (lo + hi) * n / 2


def sum_max_affine(a0, a1, b0, b1, lo, hi, window=np.inf):
    """Σ_{L=lo}^{hi} max(a0 + a1·m, b0 + b1·m) with m = min(L, window), exactly, over integers.

    Below the window the two lines cross once at most: split the range there. Above it the
    value is constant.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    top = np.minimum(hi, window)
    d0, d1 = a0 - b0, a1 - b1  # (a - b)(L) = d0 + d1·L
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(d1 != 0, -d0 / np.where(d1 != 0, d1, 1), 0.0)
    # Integers where line a wins: L >= ceil(cross) if d1 > 0; L <= floor(cross) if d1 < 0; all or none if d1 = 0.
    a_lo = np.where(d1 > 0, np.maximum(lo, np.ceil(cross)), lo)
    a_hi = np.where(d1 < 0, np.minimum(top, np.floor(cross)), top)
    flat = d1 == 0
    a_hi = np.where(flat & (d0 < 0), lo - 1, a_hi)
    a_lo = np.clip(a_lo, lo, top + 1)
    a_hi = np.clip(a_hi, lo - 1, top)
    a_sum = _sum_affine(a0, a1, a_lo, a_hi)
    # b wins on the rest of [lo, top]: one interval before and one after a's.
    b_sum = _sum_affine(b0, b1, lo, np.minimum(a_lo - 1, top)) + _sum_affine(b0, b1, np.maximum(a_hi + 1, a_lo), top)
    b_sum = np.where(a_hi < a_lo, _sum_affine(b0, b1, lo, top), b_sum)
    n_above = np.maximum(hi - np.maximum(lo, window + 1) + 1, 0)
    m = np.minimum(window, hi)
    above = np.where(n_above > 0, n_above * np.maximum(a0 + a1 * m, b0 + b1 * m), 0.0)
    return a_sum + b_sum + above


def sum_affine_clamped(c0, c1, lo, hi, window):
    """Σ_{L=lo}^{hi} (c0 + c1·min(L, window)) over integers: affine up to the window, constant above."""
    top = np.minimum(hi, window)
    below = _sum_affine(c0, c1, np.minimum(lo, top + 1), top)
    if math.isinf(window):
        return below
    n_above = np.maximum(hi - np.maximum(lo, window + 1) + 1, 0)
    return below + np.where(n_above > 0, n_above * (c0 + c1 * np.minimum(window, hi)), 0.0)


def _sum_max_split(a0, a1, b0, b1, lo, hi, window: float):
    """sum_max_affine for coefficients and lengths of different shapes (batch; lengths), the same
    partition and sums, with every choice that depends on the coefficients alone made on their
    shape. The two lines cross once at most below the window: the first line wins on [lo, s-1],
    the second on [s, top]."""
    d0, d1 = a0 - b0, a1 - b1
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(d1 != 0, -d0 / np.where(d1 != 0, d1, 1), 0.0)
    rising = d1 > 0  # a wins from ceil(cross) on; falling: a wins up to floor(cross); flat: all or none
    split = np.where(rising, np.ceil(cross), np.where(d1 < 0, np.floor(cross) + 1, -np.inf))
    a_first = (d1 < 0) | ((d1 == 0) & (d0 < 0))  # the first line is a where a wins first; flat: b wins all
    f0, f1 = np.where(a_first & (d1 < 0), a0, b0), np.where(a_first & (d1 < 0), a1, b1)
    g0, g1 = np.where(a_first, b0, a0), np.where(a_first, b1, a1)
    top = np.minimum(hi, window)
    end = top + 1
    start = np.minimum(lo, end)
    s = np.minimum(np.maximum(start, split), end)
    total = _sum_affine_n(f0, f1, start, s - 1, s - start) + _sum_affine_n(g0, g1, s, top, end - s)
    if math.isinf(window):
        return total
    n_above = np.maximum(hi - np.maximum(lo, window + 1) + 1, 0)
    m = np.minimum(window, hi)
    return total + np.where(n_above > 0, n_above * np.maximum(a0 + a1 * m, b0 + b1 * m), 0.0)


def _sum_affine_n(c0, c1, lo, hi, n):
    """_sum_affine with its count n = hi - lo + 1 >= 0 given."""
    return n * c0 + c1 * (lo + hi) * n / 2


def decode_steps_time(dep: Deployment, eff: Efficiency, batch, first_kv, last_kv) -> np.ndarray:
    """Seconds for decode steps whose attended KV length runs from first_kv to last_kv (inclusive).

    Every operator is affine in the KV length (clamped at its window) in both bounds: its time at
    lengths 1 and 2 gives the lines. Only the operators whose cost grows with the KV length
    (attention) need the closed-form sum over steps, on the grid of batch x lengths; the others
    cost the same every step, along the batch axis only, times the number of steps.
    """
    b = np.asarray(batch, dtype=float)
    # One pass at KV lengths 1 and 2 along a trailing axis: [..., 0] and [..., -1].
    ops = dep.pass_ops([AttentionGroup(b[..., None], 1, np.array([0.0, 1.0]))])
    first_kv = np.asarray(first_kv, dtype=float)
    last_kv = np.asarray(last_kv, dtype=float)
    steps = np.maximum(last_kv - first_kv + 1, 0)
    loss = eff.overlap_loss
    per_step = np.zeros(())  # seconds every step pays alike, along the batch axis
    growing = np.zeros(())
    memo: dict = {}
    for op in ops:
        times = operator_times(op, dep.hardware, eff, memo)
        (c_1, c_2), (m_1, m_2), (comm, _) = (at_kv_lengths(x) for x in times)
        per_step = per_step + op.count * comm
        c1, m1 = c_2 - c_1, m_2 - m_1
        if not (np.any(c1) or np.any(m1)):
            per_step = per_step + op.count * step_seconds(c_1, m_1, 0.0, loss)
            continue
        c0, m0 = c_1 - c1, m_1 - m1
        # max + loss·min = (1 - loss)·max + loss·(compute + memory): both parts sum in closed form.
        part = _sum_max_split(c0, c1, m0, m1, first_kv, last_kv, op.window)
        if loss:
            part = (1 - loss) * part + loss * sum_affine_clamped(c0 + m0, c1 + m1, first_kv, last_kv, op.window)
        growing = growing + op.count * part
    return growing + steps * (per_step + pass_overhead_s(dep.model.num_layers, eff, dep.model.num_moe_layers))


def at_kv_lengths(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An operator's value at KV lengths 1 and 2 (the trailing axis; absent if it does not vary)."""
    return (x, x) if x.ndim == 0 else (x[..., 0], x[..., -1])


def pass_time(dep: Deployment, eff: Efficiency, groups: list[AttentionGroup]) -> np.ndarray:
    """Seconds for one forward pass over the given sequences."""
    return pass_seconds(dep.pass_ops(groups), dep.hardware, eff) + pass_overhead_s(dep.model.num_layers, eff,
                                                                                   dep.model.num_moe_layers)


def p2p_time(dep: Deployment, eff: Efficiency, tokens) -> np.ndarray:
    """Pipeline stages hand hidden states on: (pp-1) point-to-point sends per pass, on the
    scale-up link between stages in one domain and over the NICs where a boundary crosses one."""
    if dep.pp == 1:
        return np.zeros_like(np.asarray(tokens, dtype=float))
    nbytes = np.asarray(tokens, dtype=float) * dep.model.hidden_size * ACT_BYTES
    lk = links(dep.hardware, eff)
    across = dep.pipeline_boundaries_across
    inside = (dep.pp - 1 - across) * collectives.p2p_time(nbytes, lk, across=False)
    # across: an array for a device stack, whose members with none add 0
    return inside + across * collectives.p2p_time(nbytes, lk, across=True) if np.any(across) else inside


# ---- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """Predicted serving performance; arrays broadcast over the workload inputs.

    Times in seconds, throughput in output tokens per second.
    """

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    throughput_tok_s: np.ndarray  # whole system (all gpus of one model instance)
    throughput_per_gpu_tok_s: np.ndarray
    batch: np.ndarray
    memory: MemoryUse
    input_len: np.ndarray
    output_len: np.ndarray
    mode: str
    gpus: int
    calibrated: bool
    error_band: dict[str, float] = field(default_factory=dict)  # deprecated: see interval
    inputs: dict[str, Any] = field(default_factory=dict)
    weights: WeightPrecision | None = None  # the format of each module group's weights
    # Calibrated estimates: {"level": 0.8, "<metric>": (low, high) arrays, "conditions": {...}}
    interval: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # one line each: assumptions made, limits crossed (assumptions.py)
    # Computes `energy` on first use: it needs one more pass over the operators (energy.py).
    energy_model: Callable[[], EnergyUse] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def energy(self) -> EnergyUse | None:
        """Joules per output token from the power model and at full board power (energy.py)."""
        return self.energy_model() if self.energy_model is not None else None

    @property
    def energy_j_per_token(self) -> np.ndarray:
        """Joules per output token, whole system, from the power model (energy.py)."""
        return self.energy.j_per_token if self.energy is not None else np.full(np.shape(self.ttft_s), np.nan)

    @property
    def energy_j_per_token_tdp(self) -> np.ndarray:
        """The ceiling: joules per output token at full board power, TDP × GPUs / tokens per second."""
        return self.energy.j_per_token_tdp if self.energy is not None else np.full(np.shape(self.ttft_s), np.nan)

    def _widened_for(self) -> list:
        """Conditions that widened the interval: a list of names, or one list per grid point."""
        shape = np.shape(self.ttft_s)
        flags = {k: np.broadcast_to(np.asarray(v, dtype=bool), shape).ravel()
                 for k, v in self.interval["conditions"].items()}
        per_point = [[k for k, f in flags.items() if f[i]] for i in range(int(np.prod(shape, dtype=int)))]
        return per_point if shape else per_point[0]

    def to_dict(self) -> dict[str, Any]:
        def clean(x, whole: bool = False):
            a = np.asarray(x)
            if a.dtype == bool or whole:
                return a.astype(bool if a.dtype == bool else int).tolist()
            a = a.astype(float)
            return [None if not np.isfinite(v) else float(v) for v in a.ravel()] if a.ndim else (
                float(a) if np.isfinite(a) else None)

        d = {
            **self.inputs,
            "mode": self.mode,
            "gpus": self.gpus,
            "calibrated": self.calibrated,
            "batch": clean(self.batch, whole=True),
            "input_len": clean(self.input_len, whole=True),
            "output_len": clean(self.output_len, whole=True),
            "ttft_s": clean(self.ttft_s),
            "tpot_s": clean(self.tpot_s),
            "e2e_s": clean(self.e2e_s),
            "throughput_tok_s": clean(self.throughput_tok_s),
            "throughput_per_gpu_tok_s": clean(self.throughput_per_gpu_tok_s),
            "memory": {k: clean(v) for k, v in self.memory.to_dict().items()},
        }
        if self.energy is not None:
            d["energy_j_per_token"] = clean(self.energy.j_per_token)
            d["energy_j_per_token_tdp"] = clean(self.energy.j_per_token_tdp)
            d["power_w_per_gpu"] = clean(self.energy.power_w_per_gpu)
        if self.interval:
            d["interval"] = {"level": self.interval["level"],
                             **{k: [clean(v[0]), clean(v[1])] for k, v in self.interval.items()
                                if k not in ("level", "conditions")},
                             "widened_for": self._widened_for()}
        if self.error_band:
            d["error_band"] = dict(self.error_band)
        d["warnings"] = list(self.warnings)
        return d


def _as_lengths(name: str, value, minimum: int = 1) -> np.ndarray:
    """Whole numbers >= minimum (a number, a list or an array) as a float64 array."""
    upper = ABSURD_BATCH if name == "batch" else ABSURD_LENGTH
    if type(value) in (int, float) and minimum <= value <= upper and value == round(value):  # the usual cases
        return np.asarray(value, dtype=float)
    if type(value) is np.ndarray and value.dtype == np.float64 and value.size:  # ... checked at once
        if ((value >= minimum) & (value <= upper) & (value == np.round(value))).all():  # NaN fails, inf too
            return value
    a = None
    if not isinstance(value, (str, bytes, bool, np.bool_, dict, set)):
        try:
            if np.asarray(value).dtype != bool:  # True is not a batch of 1
                a = np.asarray(value, dtype=float)
        except (TypeError, ValueError, OverflowError):  # ragged lists, None inside, objects, 10**400
            a = None
    if a is None or a.size == 0 or not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be a whole number or a list of whole numbers, got {show(value)}")
    if np.any(a < minimum) or np.any(a != np.round(a)):
        raise InputError(f"{name} must be whole numbers >= {minimum}, got {show(value)}")
    if np.any(a > upper):
        raise InputError(f"{name} = {show(value)} is absurdly large (allowed up to {upper:g})")
    return a




def estimate(model, hardware, batch: Any = 1, input_len: Any = 512, output_len: Any = 128, *, tp: int = 1,
             pp: int = 1, ep: int | None = None, dp: int | None = None, weight_dtype: Any = None,
             kv_dtype: str | None = None, mode: str | None = None, calibration: str | Calibration | None = "default",
             max_batch_size: int | None = None, fused_attention: bool = True,
             kv_memory_fraction: float | None = None, runtime: str | RuntimeProfile | None = None,
             moe_imbalance: float | None = None, redundant_experts: int = 0, images: Any = 0,
             image_size: Any = None, with_warnings: bool = True) -> Estimate:
    """Predict TTFT, TPOT, end-to-end time, throughput and memory of a workload.

    mode: `static` (batch sequences start together: prefill, then output-1 decode steps),
    `continuous` (batch requests kept in flight), `max` (continuous at the largest batch that
    fits, up to max_batch_size per attention replica, by default the runtime's); None means static. batch may be "max"
    (implies mode max; a static or continuous mode asked for with it is named in the warnings).
    weight_dtype: None (the default) uses the precision the checkpoint stores each module group in
    (quantization_config); a precision name ("fp16", "fp8", "int4", "mxfp4", ...) puts the linear
    layers in it. runtime: the serving stack (`generic`, `trtllm`, `vllm@0.6`, ...; runtime.py): its
    overheads and kernels, and how it sizes the KV cache (in-flight sequences hold input + output
    when it reserves whole sequences, input + half the output with a paged cache).
    images: images per request (vision-language models; an array broadcasts like the lengths), each
    of image_size (width, height) pixels or "WxH" (default: vision.DEFAULT_IMAGE_SIZE). Each image
    adds its tokens to the prompt (prefill and KV cache) and its vision-encoder pass to the prefill:
    TTFT includes both. input_len stays the text prompt.
    Parallelism (make_deployment): gpus = tp x dp x pp; batch is the whole instance's, split
    evenly over the dp attention replicas; ep defaults to tp x dp for a MoE model with dp > 1.
    with_warnings: False leaves `warnings` empty (for a search that reads none of them).
    """
    requested_mode = None
    if mode is None:
        mode = "static"
    elif isinstance(batch, str) and isinstance(mode, str):
        requested_mode = mode.strip().lower()
    if not isinstance(mode, str):
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {show(mode)}")
    mode = mode.strip().lower()
    if isinstance(batch, str):
        if batch.lower() != "max":
            raise InputError(f"batch must be a number or 'max', got {show(batch)}")
        mode = "max"
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {show(mode)}")
    dep = make_deployment(model, hardware, tp=tp, pp=pp, ep=ep, dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          fused_attention=fused_attention, moe_imbalance=moe_imbalance,
                          redundant_experts=redundant_experts)
    tp, pp, ep = dep.tp, dep.pp, dep.ep
    cal = load_calibration(calibration)
    prof = cal.runtime(runtime)
    eff = cal.for_device(dep.hardware, prof)
    text_in = _as_lengths("input_len", input_len)
    Out = _as_lengths("output_len", output_len)
    imgs, per_image = image_tokens(dep, images, image_size)
    stack = stack_shape(dep.hardware)
    if stack:
        _check_stack_inputs(mode, text_in, Out, imgs, batch)
    In = text_in + imgs * per_image if per_image else text_in  # the prompt the language model prefills
    if kv_memory_fraction is not None:
        if (isinstance(kv_memory_fraction, bool) or not isinstance(kv_memory_fraction, (int, float))
                or not 0 < kv_memory_fraction <= 1):
            raise InputError(f"kv_memory_fraction must be a fraction in (0, 1], got {show(kv_memory_fraction)}")
        if mode != "max":
            warnings.warn(f"kv_memory_fraction = {kv_memory_fraction:g} is ignored: it sizes the batch in mode max "
                          f"only (mode here: {mode})", stacklevel=2)
    else:
        kv_memory_fraction = prof.memory_fraction  # the runtime's own share
    if max_batch_size is None:
        max_batch_size = prof.max_batch_size
    held = prof.kv_tokens(In, Out)  # KV positions an in-flight sequence holds
    if mode == "max":
        if (isinstance(max_batch_size, bool) or not isinstance(max_batch_size, (int, np.integer))
                or not 1 <= max_batch_size <= ABSURD_BATCH):
            raise InputError(f"max_batch_size must be a whole number from 1 to {ABSURD_BATCH:g}, got {show(max_batch_size)}")
        B = max_batch(dep.model, dep.hardware, context=held, weight_dtype=dep.weight_dtype,
                      kv_dtype=dep.kv_dtype, tp=tp, pp=pp, ep=ep, kv_fraction=kv_memory_fraction, rule=prof.memory_rule,
                      limit=max_batch_size, redundant_experts=dep.redundant_experts)
        # Each attention replica holds its own batch up to the runtime's limit (each runs its own scheduler).
        B = np.maximum(np.minimum(B, max_batch_size) * dep.dp, 1.0)  # 1 where nothing fits: memory.fits says so
    else:
        B = _as_lengths("batch", batch)
    try:
        shape = np.broadcast_shapes(np.shape(B), np.shape(In), np.shape(Out))
    except ValueError:
        raise InputError(f"batch, input_len{', images' if per_image else ''} and output_len have shapes "
                         f"{np.shape(B)}, {np.shape(In)} and {np.shape(Out)}, which do not broadcast together") from None
    if stack:  # a device stack's members along a last axis (in mode max B has it already)
        shape = np.broadcast_shapes(shape, stack)
    # Each input keeps its own shape: decode-step costs depend on the batch only, so they are
    # computed along the batch axis and broadcast over the lengths at the end.
    B, In, Out = np.asarray(B, dtype=float), np.asarray(In, dtype=float), np.asarray(Out, dtype=float)

    if mode == "static":
        ttft, decode = _by_blocks(lambda b, i, o: _static(dep, eff, b, i, o), shape, B, In, Out)
        if per_image:  # every sequence's images are encoded before the prefill (per attention replica)
            ttft = ttft + vision_seconds(dep, eff, B / dep.dp * imgs, image_size)
        tpot = np.where(Out > 1, decode / np.maximum(Out - 1, 1), 0.0)
        e2e = ttft + decode
        throughput = B * Out / e2e
        prefill_tokens = B * In
    else:
        # With images each step also encodes the images of the B/Out requests it admits, and a
        # lone prompt encodes its own before its prefill.
        step_images = vision_seconds(dep, eff, B / (dep.pp * dep.dp * Out) * imgs, image_size) if per_image else ZERO
        own_images = vision_seconds(dep, eff, imgs, image_size) if per_image else ZERO
        ttft, tpot = _by_blocks(lambda b, i, o, s, a: _continuous(dep, eff, b, i, o, s, a), shape, B, In, Out,
                                step_images, own_images)
        if mode == "continuous":
            # A request arriving at a random moment first waits for the step under way to end: half a
            # step on average (the residual of a periodic step). Queueing under load: the serving layer.
            ttft = ttft + 0.5 * tpot
        e2e = ttft + (Out - 1) * tpot
        throughput = B / tpot
        prefill_tokens = B + B * In / Out  # one step: the decode tokens plus the prefill chunk
    mem = memory_use(dep.model, dep.hardware, batch=B / dep.dp, context=In + Out if mode == "static" else held,
                     prefill_tokens=prefill_tokens / dep.dp, weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype,
                     tp=tp, pp=pp, ep=ep, redundant_experts=dep.redundant_experts)
    # The band of the rows most like this one: same metric and serving mode (continuous batching
    # is measured as max-throughput runs), else the metric's overall band.
    measured_mode = "static" if mode == "static" else "max"
    bands = {k: cal.error_bands.get(f"{k}:{measured_mode}", v) for k, v in cal.error_bands.items() if ":" not in k}

    def full(x):
        out = np.empty(shape)
        out[...] = x  # a float copy, broadcast to the grid
        return out

    mem = MemoryUse(weights=full(mem.weights), kv_cache=full(mem.kv_cache), activations=full(mem.activations),
                    capacity=mem.capacity)
    values = {"ttft_s": full(ttft), "tpot_s": full(tpot), "e2e_s": full(e2e), "throughput_tok_s": full(throughput),
              "throughput_per_gpu_tok_s": full(throughput / dep.gpus)}
    interval = {}
    if cal.calibrated and cal.intervals:
        interval = estimate_interval(cal.intervals, extrapolation(cal, dep, prof, B, In, Out, imgs), values)
    from .assumptions import estimate_warnings

    notes = estimate_warnings(dep, mode=mode, batch=B, input_len=In, output_len=Out, memory=mem,
                              requested_mode=requested_mode,
                              kv_dtype_given=not (kv_dtype is None or (isinstance(kv_dtype, str) and not kv_dtype.strip())),
                              max_batch_size=max_batch_size if mode == "max" else None) if with_warnings else []
    if per_image and with_warnings:
        notes.append(_image_note(dep, imgs, per_image, image_size))
    image_inputs = {}
    if dep.model.vision is not None:
        layout = dep.model.vision.layout(image_size)
        image_inputs = {"images": _echo(full(imgs)), "image_tokens": _echo(full(imgs * per_image)),
                        "tokens_per_image": layout.tokens, "image_size": list(layout.pixels)}
    return Estimate(
        warnings=tuple(notes),
        **values, batch=full(B), memory=mem, input_len=full(text_in), output_len=full(Out),
        mode=mode, gpus=dep.gpus, calibrated=cal.calibrated, error_band=bands,
        inputs={"model": dep.model.id, "hardware": dep.hardware.id, **parallelism_fields(dep),
                "weight_dtype": dep.weights.label, "weight_source": dep.weights.source,
                "weight_formats": dep.weight_formats(), "kv_dtype": dep.kv_dtype,
                "gemm_precision": dep.gemm_precision, "runtime": prof.id, **image_inputs},
        weights=dep.weights, interval=interval,
        energy_model=partial(workload_energy, dep, eff, mode, shape, B, In, Out, e2e if mode == "static" else tpot,
                             images=imgs if per_image else 0.0, image_size=image_size),
    )


def _check_stack_inputs(mode: str, *inputs: Any) -> None:
    """A device stack (device_stack.py) adds a last axis for its members: the inputs must leave it free."""
    if mode == "static":
        raise InputError("a device stack is evaluated in mode continuous or max (a static batch's decode sum keeps "
                         "its KV lengths on the last axis)")
    for x in inputs:
        if not isinstance(x, str) and np.ndim(x) and np.shape(x)[-1] != 1:
            raise InputError(f"with a device stack every input's last axis must have length 1 (the members take it), "
                             f"got shape {np.shape(x)}")


def image_tokens(dep: Deployment, images: Any, image_size: Any) -> tuple[np.ndarray, int]:
    """(images per request, language-model tokens per image); InputError for images on a model
    without a vision tower this tool models."""
    imgs = check_images(images)
    v = dep.model.vision
    if v is None:
        if np.any(imgs > 0):
            raise InputError(f"images = {show(images)}: {dep.model.id} has no vision tower this tool models "
                             f"(Qwen2.5-VL, Gemma 3 and Llama 4 are modelled); use images = 0")
        return imgs, 0
    return imgs, v.layout(image_size).tokens if np.any(imgs > 0) else 0


def vision_seconds(dep: Deployment, eff: Efficiency, images, image_size: Any = None) -> np.ndarray:
    """Seconds to encode `images` images (an array; fractional: a share of a step's) on one
    tensor-parallel group: the encoder's operators and its per-layer launch costs; 0 without images."""
    v = dep.model.vision
    n = np.asarray(images, dtype=float)
    if v is None:
        return np.zeros_like(n)
    t = pass_seconds(vision_ops(v, n, image_size=image_size, tp=dep.tp), dep.hardware, eff)
    return np.where(n > 0, t + v.depth * eff.layer_overhead_s, 0.0)


def _image_note(dep: Deployment, imgs: np.ndarray, per_image: int, image_size: Any) -> str:
    v = dep.model.vision
    if v is None:  # images need a vision tower (image_tokens refuses them otherwise)
        return ""
    lay = v.layout(image_size)
    w, h = lay.pixels
    return (f"images: {per_image} prompt tokens per image ({v.kind} encoder at {w}x{h} pixels, "
            f"{lay.tiles * lay.sequence} patches), up to {int(imgs.max()) * per_image} image tokens per request; "
            f"the vision tower runs at 16 bit, its encoder pass is part of TTFT")


def _echo(a: np.ndarray):
    """Whole numbers for JSON: an int, or nested lists of ints."""
    return int(a) if a.ndim == 0 else a.astype(int).tolist()


def parallelism_fields(dep: Deployment) -> dict[str, Any]:
    """The layout as echoed in JSON: tp, pp, ep, dp, and for a MoE model the load imbalance used
    and the redundant experts (passed back to make_deployment, they give the same deployment)."""
    out: dict[str, Any] = {"tp": dep.tp, "pp": dep.pp, "ep": dep.ep, "dp": dep.dp}
    if dep.model.is_moe:
        out.update(moe_imbalance=dep.moe_imbalance, redundant_experts=dep.redundant_experts)
    return out


def layout_of(inputs: dict[str, Any]) -> dict[str, Any]:
    """make_deployment's parallelism arguments from an estimate's echoed inputs."""
    out: dict[str, Any] = {k: int(inputs.get(k, 1)) for k in ("tp", "pp", "ep", "dp")}
    if "moe_imbalance" in inputs:
        out.update(moe_imbalance=float(inputs["moe_imbalance"]), redundant_experts=int(inputs["redundant_experts"]))
    return out


def _by_blocks(fn, shape: tuple[int, ...], *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """fn(*inputs) on the grid of `shape`, evaluated on blocks of rows (the first axis) and joined.

    Every value is computed from its own inputs, so the blocks give the values one call would;
    inputs that broadcast along the first axis are passed whole to every block.
    """
    size = math.prod(shape)
    if not shape or size <= BLOCK_POINTS or shape[0] == 1:
        return fn(*inputs)
    rows = max(BLOCK_POINTS // (size // shape[0]), 1)
    blocks = []
    for start in range(0, shape[0], rows):
        part = slice(start, start + rows)
        args = [x[part] if x.ndim == len(shape) and x.shape[0] > 1 else x for x in inputs]
        block_shape = (min(rows, shape[0] - start), *shape[1:])
        blocks.append([np.broadcast_to(y, block_shape) for y in fn(*args)])
    return tuple(np.concatenate(ys) for ys in zip(*blocks, strict=True))


def extrapolation(cal: Calibration, dep: Deployment, prof: RuntimeProfile, B, In, Out, images: Any = 0
                  ) -> dict[str, Any]:
    """Where an estimate lies outside the public measurements (each widens its interval). In
    counts the prompt's image tokens; images: per request (no public row measures an encoder)."""
    return {
        "unseen_family": per_member(dep.hardware, lambda hw: hw.family not in cal.family_factors),
        "unseen_runtime": prof.id not in cal.runtimes,
        "batch_1": np.asarray(B) <= 1,
        "fp4": "fp4" in dep.weights.label or "fp4" in dep.kv_dtype or "fp4" in dep.gemm_precisions.values(),
        "long_context": np.asarray(In + Out) > LONG_CONTEXT,
        "moe": dep.model.is_moe,
        "multi_node": dep.gpus > dep.hardware.max_devices,
        "images": np.asarray(images) > 0,
    }


def _static(dep: Deployment, eff: Efficiency, B, In, Out):
    """B sequences of In prompt and Out output tokens: prefill of the whole batch (first token),
    then Out-1 decode steps with KV In+1 .. In+Out-1.

    With pipeline parallelism the batch runs as pp micro-batches: prefill pays the fill bubble
    ((2pp-1)/pp of one whole-model pass of a micro-batch), decode keeps the pipeline full.
    """
    pp = dep.pp
    micro = B / (pp * dep.dp)  # sequences per attention replica and micro-batch
    prefill = pass_time(dep, eff, [AttentionGroup(micro, In, 0)]) * (2 * pp - 1) / pp + p2p_time(dep, eff, micro * In)
    decode = decode_steps_time(dep, eff, micro, In + 1, In + Out - 1)
    decode = decode + np.maximum(Out - 1, 0) * p2p_time(dep, eff, micro)
    return prefill, decode


def _continuous(dep: Deployment, eff: Efficiency, B, In, Out, step_extra=0.0, alone_extra=0.0):
    """Steady state of continuous batching with B requests in flight (In prompt, Out output tokens).

    Each step, B(Out-1)/Out requests decode at the mean KV length In + Out/2 and B/Out new requests
    prefill their prompts in the same pass (chunked prefill: the linear layers see all tokens
    in one GEMM). Every step emits B tokens. TTFT: one such step, or the prompt's own prefill
    if that is longer. step_extra and alone_extra (seconds) add to the step and to the lone
    prefill (the vision encoder's share).
    """
    micro = B / (dep.pp * dep.dp)  # sequences per attention replica and micro-batch
    groups = _continuous_groups(micro, In, Out)
    tokens = micro * (Out - 1) / Out + micro * In / Out
    step = pass_time(dep, eff, groups) + p2p_time(dep, eff, tokens) + step_extra
    alone = pass_time(dep, eff, [AttentionGroup(np.ones_like(In), In, 0)]) + p2p_time(dep, eff, In) + alone_extra
    return np.maximum(step, alone), step


def _continuous_groups(micro, In, Out) -> list[AttentionGroup]:
    """One continuous-batching step's sequences: decoders at the mean KV length, one prompt's share."""
    return [AttentionGroup(micro * (Out - 1) / Out, 1, In + Out / 2 - 1),
            AttentionGroup(micro / Out, In, 0, label="prefill")]


# ---- energy (energy.py) ------------------------------------------------------------------------

def workload_energy(dep: Deployment, eff: Efficiency, mode: str, shape: tuple[int, ...], B, In, Out,
                    seconds, images: Any = 0.0, image_size: Any = None) -> EnergyUse:
    """Energy per output token of an estimate's workload, from the operator times its latency uses.

    static: the whole batch, prefill plus every decode step, over the end-to-end time, B·Out tokens;
    continuous and max: one step, over its time, B tokens. Each device holds one micro-batch's pass
    per pass of the pipeline (pp micro-batches through 1/pp of the layers each). With images
    (per request), the vision encoder's work on them: all of the batch's (static) or those of the
    B/Out requests a step admits (continuous), as the latency counts them.
    """
    work = Work(*_by_blocks(lambda b, i, o: _work_arrays(dep, eff, mode, b, i, o), shape, B, In, Out))
    n_img = np.asarray(images, dtype=float)
    if dep.model.vision is not None and np.any(n_img > 0):
        encoded = B / dep.dp * n_img if mode == "static" else B / (dep.pp * dep.dp * Out) * n_img
        v = pass_work(vision_ops(dep.model.vision, encoded, image_size=image_size, tp=dep.tp), dep.hardware, eff)
        some = encoded > 0
        work = work + Work(np.where(some, v.compute_s, 0.0), np.where(some, v.busy_s, 0.0), np.where(some, v.comm_s, 0.0))
    tokens = B * Out if mode == "static" else B
    return energy_use(power_model(dep.hardware), dep.gpus, np.broadcast_to(seconds, shape), work,
                      np.broadcast_to(tokens, shape))


def _work_arrays(dep: Deployment, eff: Efficiency, mode: str, B, In, Out) -> tuple[np.ndarray, ...]:
    """Activity seconds of one device (compute, busy, comm) over the passes `_static` or `_continuous` times."""
    micro = B / (dep.pp * dep.dp)
    hw = dep.hardware
    if mode == "static":
        b = np.asarray(micro, dtype=float)
        work = (pass_work(dep.pass_ops([AttentionGroup(micro, In, 0)]), hw, eff)
                + decode_steps_work(dep.pass_ops([AttentionGroup(b[..., None], 1, np.array([0.0, 1.0]))]), hw, eff,
                                    In + 1, In + Out - 1))
    else:
        work = pass_work(dep.pass_ops(_continuous_groups(micro, In, Out)), hw, eff)
    return work.compute_s, work.busy_s, work.comm_s


def decode_step(model, hardware, batch, kv_len, *, tp: int = 1, weight_dtype: Any = None, kv_dtype: str | None = None,
                calibration: str | Calibration | None = "none", ep: int | None = None,
                runtime: str | RuntimeProfile | None = None, dp: int | None = None,
                moe_imbalance: float | None = None, redundant_experts: int = 0) -> OpTimes:
    """Per-operator times of one decode step (batch sequences of one attention replica attending
    kv_len positions)."""
    dep = make_deployment(model, hardware, tp=tp, ep=ep, dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    eff = load_calibration(calibration).for_device(dep.hardware, runtime)
    b = _as_lengths("batch", batch)
    kv = _as_lengths("kv_len", kv_len)
    return time_ops(dep.ops([AttentionGroup(b, 1, kv - 1)]), dep.hardware, eff)
