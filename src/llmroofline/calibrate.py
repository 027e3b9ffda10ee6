"""Fit the efficiency model to measurements: maximum a posteriori on log error, physical priors.

Every parameter has a physical meaning, bounds and a prior:
- kernel fractions per device = published kernel-benchmark prior (priors.py) x a shared
  realization factor (how much of those figures end-to-end serving reaches) x a factor per
  measured family (prior 1, narrow); a family never measured keeps prior x realization;
- attention fractions, the fp8 GEMM factor and the compute/memory overlap loss are shared, with
  priors and bounds from kernel benchmarks;
- per-layer, per-step and per-all-reduce costs and K/V reuse belong to the serving stack: each
  profile with measured rows gets its own, around the profile's stated prior (runtime.py);
  `generic` takes the newest measured stack's fitted values (MODERN_PROFILES).
The loss is soft-L1 on log(predicted / measured) (robust to a few odd rows) plus Gaussian prior
terms, scaled as if the model's own error were ~10%.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .efficiency import Calibration, Efficiency
from .estimate import reuse_passes
from .hardware import load_hardware
from .intervals import LONG_CONTEXT, METRICS, residual_quantiles
from .model import load_model
from .priors import kernel_priors
from .runtime import load_runtime
from .validate import METRIC_FAMILY, Measurement, predict

MODEL_ERROR = 0.1  # typical log error of a good fit: prior terms are weighed against it
# `generic` (an unspecified modern stack) takes the fitted values of the newest measured stack:
# TensorRT-LLM 1.x's PyTorch backend (CUDA graphs, overlap scheduler, fused all-reduce), the
# design current vLLM and SGLang releases share. Several profiles here are averaged in log space.
MODERN_PROFILES = ("trtllm@1.0",)

REASONS = {
    "realization.gemm_compute": "share of the published large-GEMM fraction (priors) reached inside a serving run",
    "realization.memory": "share of the published weight-streaming bandwidth fraction reached inside a serving run",
    "realization.comm_bandwidth": "share of the published all-reduce bus bandwidth reached inside a serving run",
    "family_factors": "measured families' departure from prior x realization (prior 1)",
    "attn_prefill_compute": "fraction of peak flash-attention prefill kernels reach (softmax, masking, causal tiles)",
    "attn_decode_memory": "fraction of bandwidth decode-attention kernels reach reading the KV cache",
    "fp8_gemm_factor": "an fp8 GEMM reaches this share of a 16-bit GEMM's fraction of its own peak",
    "overlap_loss": "near the ridge kernels hide only part of the shorter of compute and memory time",
    "fp8_memory_factor": "fp8 weight streaming (scales, dequantization) reaches this share of 16-bit streaming bandwidth",
    "moe_layer_overhead_s": "routing, token permutation and alignment per MoE layer per pass",
    "runtimes": "per serving-stack profile: per-layer and per-step host/launch costs, all-reduce latency, "
                "GQA K/V reuse of its decode attention",
}


@dataclass(frozen=True)
class Param:
    """One fitted number: where it goes, its prior (value, spread in the fitted scale), bounds."""

    path: tuple[str, ...]  # ("shared", name) | ("realization", name) | ("family", fam, name) | ("runtime", id, name)
    prior: float
    low: float
    high: float
    spread: float  # prior standard deviation: in log units, or logit units for unit-interval params

    @property
    def unit_interval(self) -> bool:
        return self.low == 0.0

    def to_z(self, v: float) -> float:
        if self.unit_interval:
            v = min(max(v, 1e-4), 1 - 1e-4)
            return math.log(v / (1 - v))
        return math.log(min(max(v, self.low), self.high))

    def from_z(self, z: float) -> float:
        if self.unit_interval:
            return float(min(1 / (1 + math.exp(-z)), self.high))
        return float(min(max(math.exp(z), self.low), self.high))

    def z_bounds(self) -> tuple[float, float]:
        if self.unit_interval:
            return (-9.0, self.to_z(self.high) if self.high < 1 else 9.0)
        return (math.log(self.low), math.log(self.high))


def parameters(rows: list[Measurement]) -> list[Param]:
    """The parameters these rows can inform, with their priors."""
    pri = kernel_priors().shared
    ps = [Param(("shared", k), pri[k].value, pri[k].low, pri[k].high, 0.3)
          for k in ("attn_prefill_compute", "attn_decode_memory", "fp8_gemm_factor")]
    if any(r.weight_dtype == "fp8" for r in rows):
        ps.append(Param(("shared", "fp8_memory_factor"), pri["fp8_memory_factor"].value, pri["fp8_memory_factor"].low,
                        pri["fp8_memory_factor"].high, 0.1))
    if any(load_model(r.model).is_moe for r in rows):
        moe = kernel_priors().fixed_costs["moe_layer_overhead_s"].value
        ps.append(Param(("shared", "moe_layer_overhead_s"), moe, moe / 4, moe * 4, 0.5))
    # AIC (see priors): weight-streaming GEMMs near the ridge (A100, M=128) reach 0.70-0.72 of
    # bandwidth against 0.76-0.83 far below it: ~15% of the shorter time is not hidden.
    ps.append(Param(("shared", "overlap_loss"), 0.15, 0.0, 1.0, 0.5))
    ps += [Param(("realization", "gemm_compute"), 1.0, 0.6, 1.25, 0.15),
           Param(("realization", "memory"), 1.0, 0.7, 1.15, 0.08),
           Param(("realization", "comm_bandwidth"), 1.0, 0.3, 1.25, 0.3)]
    for fam in sorted({load_hardware(r.hardware).family for r in rows}):
        ps += [Param(("family", fam, "gemm_compute"), 1.0, 0.7, 1.4, 0.1),
               Param(("family", fam, "memory"), 1.0, 0.8, 1.2, 0.06)]
    for rid in sorted({r.runtime for r in rows}):
        prof = load_runtime(rid)
        sel = [r for r in rows if r.runtime == rid]
        ps += [Param(("runtime", rid, "layer_overhead_s"), prof.layer_overhead_s, prof.layer_overhead_s / 10,
                     prof.layer_overhead_s * 6, 0.7),
               Param(("runtime", rid, "step_overhead_s"), prof.step_overhead_s, prof.step_overhead_s / 10,
                     prof.step_overhead_s * 10, 0.7)]
        if any(r.tp > 1 for r in sel):
            ps.append(Param(("runtime", rid, "comm_latency_s"), prof.comm_latency_s, prof.comm_latency_s / 5,
                            prof.comm_latency_s * 5, 0.5))
        if not prof.gqa_aware_decode:
            ps.append(Param(("runtime", rid, "gqa_kv_reuse"), prof.gqa_kv_reuse, 0.0, 1.0, 1.5))
    return ps


def calibration_from_values(params: list[Param], values: list[float], source: str = "fit") -> Calibration:
    shared: dict[str, float] = {}
    realization: dict[str, float] = {}
    families: dict[str, dict[str, float]] = {}
    runtimes: dict[str, dict[str, float]] = {}
    for p, v in zip(params, values, strict=True):
        kind = p.path[0]
        if kind == "shared":
            shared[p.path[1]] = v
        elif kind == "realization":
            realization[p.path[1]] = v
        elif kind == "family":
            families.setdefault(p.path[1], {})[p.path[2]] = v
        else:
            runtimes.setdefault(p.path[1], {})[p.path[2]] = v
    fitted_modern = [runtimes[r] for r in MODERN_PROFILES if r in runtimes]
    if fitted_modern:  # generic: the geometric mean of the fitted modern stacks
        keys = set.intersection(*(set(r) for r in fitted_modern)) - {"gqa_kv_reuse"}
        runtimes["generic@1"] = {k: float(np.exp(np.mean([np.log(r[k]) for r in fitted_modern]))) for k in sorted(keys)}
    pri = kernel_priors().shared
    priors = {k: pri[k].value for k in ("attn_prefill_compute", "attn_decode_memory", "fp8_gemm_factor",
                                        "fp4_gemm_factor", "fp8_memory_factor", "fp4_memory_factor")}
    priors.update({k: v.value for k, v in kernel_priors().fixed_costs.items()})
    default = replace(Efficiency(), **{**priors, **shared})
    return Calibration(default=default, families={}, error_bands={}, source=source, physical=True,
                       realization=realization, family_factors=families, runtimes=runtimes)


@dataclass(frozen=True)
class FitResult:
    calibration: Calibration
    params: list[Param]
    values: list[float]
    residuals: np.ndarray  # log(pred / measured) per row at the optimum
    evaluations: int


def fit(rows: list[Measurement], *, max_evaluations: int = 150, f_scale: float = MODEL_ERROR,
        progress: Callable[[int], None] | None = None) -> FitResult:
    """Fit the parameters the rows inform (the others keep their priors)."""
    from scipy.optimize import least_squares

    params = parameters(rows)
    measured = np.log([r.value for r in rows])
    z0 = np.array([p.to_z(p.prior) for p in params])
    spread = np.array([p.spread for p in params])
    lower, upper = (np.array(b) for b in zip(*(p.z_bounds() for p in params), strict=True))
    x0 = np.clip(z0, lower + 1e-6, upper - 1e-6)
    calls = [0]

    def residuals(z: np.ndarray) -> np.ndarray:
        calls[0] += 1
        if progress:
            progress(calls[0])
        cal = calibration_from_values(params, [p.from_z(v) for p, v in zip(params, z, strict=True)])
        pred = predict(rows, cal)
        r = np.log(np.where(np.isfinite(pred) & (pred > 0), pred, 1e-30)) - measured
        return np.concatenate([r, (z - z0) / spread * f_scale])

    with reuse_passes():
        sol = least_squares(residuals, x0, bounds=(lower, upper), loss="soft_l1", f_scale=f_scale,
                            max_nfev=max_evaluations, diff_step=1e-3, x_scale=1.0, xtol=1e-4, ftol=1e-5)
    values = [p.from_z(v) for p, v in zip(params, sol.x, strict=True)]
    return FitResult(calibration=calibration_from_values(params, values), params=params, values=values,
                     residuals=sol.fun[: len(rows)], evaluations=calls[0])


HOLDOUTS: dict[str, Callable[[Measurement], str]] = {
    "device": lambda r: r.hardware,
    "stack": lambda r: r.runtime,
    "model": lambda r: r.model,
}


def leave_one_out(rows: list[Measurement], by: str, *, progress: Callable[[str], None] | None = None,
                  **fit_kwargs: Any) -> np.ndarray:
    """Predict each group's rows (by `device`, `stack` or `model`) from a fit on all other rows.

    A held-out device's family, a held-out stack's profile, are then unseen: they get their
    priors (times the shared realization), exactly as an unmeasured device or stack would.
    """
    key = HOLDOUTS[by]
    pred = np.full(len(rows), np.nan)
    for held in sorted({key(r) for r in rows}):
        if progress:
            progress(held)
        train = [r for r in rows if key(r) != held]
        test_idx = [i for i, r in enumerate(rows) if key(r) == held]
        cal = fit(train, **fit_kwargs).calibration
        pred[test_idx] = predict([rows[i] for i in test_idx], cal)
    return pred


def log_residuals(rows: list[Measurement], pred: np.ndarray) -> dict[str, np.ndarray]:
    """log(measured / predicted) per metric family (throughput, ttft, tpot, e2e)."""
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for r, p in zip(rows, pred, strict=True):
        if np.isfinite(p) and p > 0:
            out[METRIC_FAMILY[r.metric]].append(math.log(r.value / p))
    return {k: np.array(v) for k, v in out.items()}


MIN_ROWS_PER_METRIC = 20  # fewer held-out rows than this: pool with the other metrics


def interval_spec(rows: list[Measurement], held_out: np.ndarray, level: float = 0.8,
                  widen: dict[str, float] | None = None, widen_by_prior: list[str] | None = None) -> dict[str, Any]:
    """The calibration's `intervals` section from held-out predictions.

    Time metrics are the inverse of throughput (a time residual is minus a throughput residual):
    a metric with fewer than MIN_ROWS_PER_METRIC held-out rows uses all rows, with signs turned to
    its direction.
    """
    res = log_residuals(rows, held_out)
    pooled = np.concatenate([res["throughput"]] + [-res[m] for m in ("ttft", "tpot", "e2e")])
    metrics, notes = {}, []
    for m in METRICS:
        sign = 1.0 if m == "throughput" else -1.0
        if res[m].size >= MIN_ROWS_PER_METRIC:
            metrics[m] = residual_quantiles(res[m], level)
        else:
            lo, mid, hi = residual_quantiles(sign * pooled, level)
            metrics[m] = sorted([lo, mid, hi])
            notes.append(f"{m}: {res[m].size} held-out rows, pooled with all metrics")
    if widen_by_prior:
        notes.append(f"widening set by stated prior (too few public rows): {', '.join(widen_by_prior)}")
    return {"level": level, "metrics": metrics, "widen": dict(widen or {}), "notes": "; ".join(notes)}


def _spread(res: np.ndarray, level: float) -> float:
    lo, _, hi = residual_quantiles(res, level)
    return hi - lo


def widen_factors(rows: list[Measurement], held_out: dict[str, np.ndarray], level: float = 0.8,
                  min_rows: int = 8) -> tuple[dict[str, float], list[str]]:
    """Spread multipliers for estimates further from the data, measured where the public set can:
    a device family never seen (leave-one-device-out) and a stack never seen (leave-one-stack-out)
    against a model never seen (leave-one-model-out, the base); batch 1, long context and MoE rows
    against the others within leave-one-model-out. FP4, several nodes and images (a vision
    encoder) have no public rows: stated priors (1.5). Returns the factors and the names of those set by prior."""
    def pooled(pred: np.ndarray, mask=None) -> np.ndarray:
        out = []
        for i, (r, p) in enumerate(zip(rows, pred, strict=True)):
            if (mask is None or mask[i]) and np.isfinite(p) and p > 0:
                sign = 1.0 if METRIC_FAMILY[r.metric] == "throughput" else -1.0
                out.append(sign * math.log(r.value / p))
        return np.array(out)

    base = _spread(pooled(held_out["model"]), level)
    factors = {"unseen_family": _spread(pooled(held_out["device"]), level) / base,
               "unseen_runtime": _spread(pooled(held_out["stack"]), level) / base}
    conditions = {
        "batch_1": np.array([r.batch == 1 for r in rows]),
        "long_context": np.array([r.input_len + r.output_len > LONG_CONTEXT for r in rows]),
        "moe": np.array([load_model(r.model).is_moe for r in rows]),
    }
    by_prior = ["fp4", "multi_node", "images"]
    for name, mask in conditions.items():
        if mask.sum() >= min_rows and (~mask).sum() >= min_rows:
            factors[name] = _spread(pooled(held_out["model"], mask), level) / _spread(
                pooled(held_out["model"], ~mask), level)
        else:
            factors[name] = 1.5
            by_prior.append(name)
    factors.update(fp4=1.5, multi_node=1.5, images=1.5)
    return {k: float(min(max(v, 1.0), 10.0)) for k, v in factors.items()}, by_prior


def row_conditions(rows: list[Measurement], spec: dict[str, Any], extra: str | None = None) -> np.ndarray:
    """Each row's spread factor: its own conditions (batch 1, long context, MoE) times `extra`
    (unseen_family, unseen_runtime) when it was predicted with that part held out."""
    w = spec["widen"]
    f = np.ones(len(rows))
    for i, r in enumerate(rows):
        if r.batch == 1:
            f[i] *= w.get("batch_1", 1.0)
        if r.input_len + r.output_len > LONG_CONTEXT:
            f[i] *= w.get("long_context", 1.0)
        if load_model(r.model).is_moe:
            f[i] *= w.get("moe", 1.0)
    return f * (w.get(extra, 1.0) if extra else 1.0)


def coverage(rows: list[Measurement], pred: np.ndarray, spec: dict[str, Any], factors: np.ndarray) -> float:
    """Share of rows whose measurement lies inside the interval around its prediction."""
    inside = []
    for r, p, f in zip(rows, pred, factors, strict=True):
        if np.isfinite(p) and p > 0:
            lo, mid, hi = spec["metrics"][METRIC_FAMILY[r.metric]]
            res = math.log(r.value / p)
            inside.append(mid + (lo - mid) * f <= res <= mid + (hi - mid) * f)
    return float(np.mean(inside)) if inside else float("nan")


def error_bands(rows: list[Measurement], pred: np.ndarray) -> dict[str, float]:
    """Median |relative error| per metric family of held-out predictions (the deprecated
    `error_band`; `interval` replaces it)."""
    res = log_residuals(rows, pred)
    return {m: float(np.median(np.abs(np.expm1(-v)))) for m, v in res.items() if v.size}  # |pred / measured - 1|


def calibration_document(cal: Calibration, *, data: str, rows: int, bands: dict[str, float],
                         intervals: dict[str, Any] | None = None) -> dict[str, Any]:
    """The YAML document `--calibration FILE` loads: parameters, reasons, intervals, provenance."""
    def g(v: float) -> float:
        return float(f"{v:.6g}")

    doc: dict[str, Any] = {
        "source": f"llmroofline calibrate --data {data} ({rows} rows)",
        "physical": True,
        "reasons": REASONS,
        "default": {k: g(v) for k, v in cal.default.to_dict().items()},
        "realization": {k: g(v) for k, v in cal.realization.items()},
        "family_factors": {f: {k: g(v) for k, v in d.items()} for f, d in cal.family_factors.items()},
        "runtimes": {r: {k: g(v) for k, v in d.items()} for r, d in cal.runtimes.items()},
        "error_bands": {k: float(f"{v:.4g}") for k, v in bands.items()},
    }
    if intervals:
        doc["intervals"] = {"level": intervals["level"],
                            "metrics": {k: [float(f"{x:.4g}") for x in v] for k, v in intervals["metrics"].items()},
                            "widen": {k: float(f"{v:.3g}") for k, v in intervals["widen"].items()},
                            "notes": intervals.get("notes", "")}
    return doc


def write_calibration(doc: dict[str, Any], path: str | Path, *, force: bool = True) -> None:
    """Write a calibration file (never through a symbolic link; an existing file only with `force`)."""
    from .files import write_text

    write_text(path, "# Efficiency parameters fitted by `llmroofline calibrate`; load with --calibration FILE.\n"
               + yaml.safe_dump(doc, sort_keys=False, width=110), force=force)


@dataclass(frozen=True)
class CalibrationRun:
    """A fit on all rows, the held-out predictions that judge it, and the intervals they give."""

    result: FitResult
    held_out: dict[str, np.ndarray]  # "device" | "stack" | "model" -> predictions per row
    intervals: dict[str, Any]
    bands: dict[str, float]
    coverage: dict[str, float]  # held-out coverage of the intervals, per hold-out

    def document(self, data: str, rows: int) -> dict[str, Any]:
        return calibration_document(self.result.calibration, data=data, rows=rows, bands=self.bands,
                                    intervals=self.intervals)


def calibrate(rows: list[Measurement], *, level: float = 0.8, held_out: bool = True,
              progress: Callable[[str], None] | None = None) -> CalibrationRun:
    """Fit on all rows; with held_out, also leave out each device, stack and model in turn and
    build the intervals from those honest residuals (base: model held out; widened for an unseen
    family or stack by the measured ratio of spreads)."""
    def say(what: str) -> None:
        if progress:
            progress(what)

    say("fit on all rows")
    result = fit(rows)
    if not held_out:
        return CalibrationRun(result, {}, {}, {}, {})
    preds = {}
    for by in HOLDOUTS:
        def held(group: str, by: str = by) -> None:
            say(f"{by} held out: {group}")

        preds[by] = leave_one_out(rows, by, progress=held)
    spec = interval_spec(rows, preds["model"], level, *widen_factors(rows, preds, level))
    extra = {"model": None, "device": "unseen_family", "stack": "unseen_runtime"}
    cov = {by: coverage(rows, preds[by], spec, row_conditions(rows, spec, extra[by])) for by in HOLDOUTS}
    pooled = np.concatenate([preds["device"], preds["stack"]])
    bands = error_bands(rows + rows, pooled)
    return CalibrationRun(result, preds, spec, bands, cov)
