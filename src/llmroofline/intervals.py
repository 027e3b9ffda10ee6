"""Prediction intervals: how far a calibrated estimate may be from a measurement.

Built from held-out residuals r = log(measured / predicted) of the public set (each row predicted
by parameters fitted without its device, its stack or its model): the interval at level L runs
from the (1-L)/2 to the (1+L)/2 quantile of r, per metric. Where an estimate lies further from the
data (a device family, stack or precision never measured, batch 1, long context, MoE, several
nodes), the spread around the median grows by a stated factor per condition; factors are
measured on the held-out rows where the public set has such rows, stated priors otherwise.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .errors import InputError, show

METRICS = ("throughput", "ttft", "tpot", "e2e")
WIDEN = ("unseen_family", "unseen_runtime", "batch_1", "fp4", "long_context", "moe", "multi_node", "images")
LONG_CONTEXT = 16384  # tokens of input + output beyond which a workload counts as long-context


def validate_intervals(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a calibration file's `intervals` section; {} when absent."""
    if not data:
        return {}
    extra = set(data) - {"level", "metrics", "widen", "notes"}
    if extra:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
    level = data.get("level")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise InputError(f"{where}: level must be a fraction in (0, 1), got {show(level)}")
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or set(metrics) - set(METRICS) or not metrics:
        raise InputError(f"{where}: metrics must map {', '.join(METRICS)} to [low, median, high]")
    for k, v in metrics.items():
        ok = (isinstance(v, list) and len(v) == 3
              and all(not isinstance(x, bool) and isinstance(x, (int, float)) and abs(x) < 5 for x in v))
        if not ok or not v[0] <= v[1] <= v[2]:
            raise InputError(f"{where}: metrics.{k} must be [low, median, high] log ratios, got {show(v)}")
    widen = data.get("widen") or {}
    if not isinstance(widen, dict) or set(widen) - set(WIDEN):
        raise InputError(f"{where}: widen must map some of {', '.join(WIDEN)} to factors")
    for k, v in widen.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= 10:
            raise InputError(f"{where}: widen.{k} = {show(v)} must be a factor from 1 to 10")
    return {"level": float(level), "metrics": {k: [float(x) for x in v] for k, v in metrics.items()},
            "widen": {k: float(v) for k, v in widen.items()}, "notes": str(data.get("notes", ""))}


def residual_quantiles(residuals: np.ndarray, level: float) -> list[float]:
    """[low, median, high] quantiles of log residuals for a central interval at `level`."""
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        raise ValueError("no residuals")
    lo, mid, hi = np.quantile(r, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return [float(lo), float(mid), float(hi)]


def factor_levels(widen: dict[str, float], conditions: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The spread factor (the product of the factors of the conditions that hold) as a table of
    levels and an index into it: factor = levels[index].

    The factor takes at most 2^k values over a grid, one per combination of the k conditions: the
    exponentials of an interval are taken on those levels, not on every grid point.
    """
    names = list(conditions)
    index = np.zeros((), dtype=np.int64)
    for bit, k in enumerate(names):
        h = conditions[k]
        if isinstance(h, (bool, np.bool_)):  # one value for the whole grid
            if h:
                index = index + (1 << bit)
            continue
        h = np.asarray(h, dtype=bool)
        if h.ndim or bool(h):
            index = index + (h.astype(np.int64) << bit)
    return _levels(tuple((k, widen.get(k, 1.0)) for k in names)), index


@functools.lru_cache(maxsize=64)
def _levels(factors: tuple[tuple[str, float], ...]) -> np.ndarray:
    """The product of the factors of each combination of conditions (bit i: condition i holds)."""
    codes = np.arange(1 << len(factors))
    levels = np.ones(())
    for bit, (_, f) in enumerate(factors):
        levels = levels * np.where(codes >> bit & 1, f, 1.0)
    out = np.array(np.broadcast_to(levels, codes.shape))
    out.flags.writeable = False  # shared between calls
    return out


def metric_interval(value, quantiles: list[float], factor) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) around a prediction: value x exp(median + (quantile - median) x factor).

    factor: an array, or (levels, index) from factor_levels."""
    lo, mid, hi = quantiles
    v = np.asarray(value, dtype=float)
    if isinstance(factor, tuple):
        levels, index = factor
        low, high = _level_ratios(lo, mid, hi, levels)
        return v * low[index], v * high[index]
    return (v * np.exp(mid + (lo - mid) * factor), v * np.exp(mid + (hi - mid) * factor))


_RATIOS: dict[tuple[float, float, float, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _level_ratios(lo: float, mid: float, hi: float, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """exp(mid + (quantile - median) x level) on each level, kept per quantiles and levels table
    (the tables come from `_levels`, which keeps them)."""
    if levels.flags.writeable:  # not a kept table: it could change in place
        return np.exp(mid + (lo - mid) * levels), np.exp(mid + (hi - mid) * levels)
    key = (lo, mid, hi, id(levels))
    hit = _RATIOS.get(key)
    if hit is not None and hit[0] is levels:
        return hit[1], hit[2]
    low, high = np.exp(mid + (lo - mid) * levels), np.exp(mid + (hi - mid) * levels)
    low.flags.writeable = high.flags.writeable = False
    if len(_RATIOS) >= 256:
        _RATIOS.clear()
    _RATIOS[key] = (levels, low, high)  # the table is kept, so that its id stays its own
    return low, high


def estimate_interval(spec: dict[str, Any], conditions: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The `interval` of an estimate: level and [low, high] per metric.

    values: throughput_tok_s, throughput_per_gpu_tok_s, ttft_s, tpot_s, e2e_s arrays.
    """
    factor = factor_levels(spec["widen"], conditions)
    q = spec["metrics"]
    out: dict[str, Any] = {"level": spec["level"]}
    for key, metric in (("throughput_tok_s", "throughput"), ("throughput_per_gpu_tok_s", "throughput"),
                        ("ttft_s", "ttft"), ("tpot_s", "tpot"), ("e2e_s", "e2e")):
        quant = q.get(metric) or q["throughput"]
        out[key] = metric_interval(values[key], quant, factor)
    out["conditions"] = {k: np.asarray(v, dtype=bool) for k, v in conditions.items()}
    return out
