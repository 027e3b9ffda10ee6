"""Fit the efficiency parameters to measurements: robust least squares on log error.

Fractions of peak are fitted per device family as the shared default times a family factor; a
ridge penalty pulls each factor towards 1 so a family with few rows stays near the default, and
a family never measured uses the default itself. The other parameters are shared by all devices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .efficiency import Calibration, Efficiency
from .hardware import load_hardware
from .validate import METRIC_FAMILY, Measurement, predict

# Shared parameters: (name, initial, lower, upper). Fractions and positive numbers are fitted on a
# log scale, so their steps are relative.
SHARED = [
    ("gemm_tile_rows", 32.0, 1.0, 512.0),
    ("attn_prefill_compute", 0.6, 0.1, 1.0),
    ("attn_decode_memory", 0.7, 0.1, 1.0),
    ("gqa_kv_reuse", 0.7, 0.0, 1.0),
    ("overlap_loss", 0.3, 0.0, 1.0),
    ("comm_bandwidth", 0.7, 0.1, 1.0),
    ("comm_latency_s", 10e-6, 1e-7, 1e-3),
    ("layer_overhead_s", 20e-6, 1e-8, 1e-3),
    ("step_overhead_s", 1e-3, 1e-6, 5e-2),
]
# Fitted per family around a shared default.
PER_FAMILY = [
    ("gemm_compute", 0.7, 0.1, 1.0),
    ("memory", 0.8, 0.1, 1.0),
]
FAMILY_PRIOR_SD = 0.15  # a family's factor is a priori within ~15% of the default

REASONS = {
    "gemm_compute": "fraction of dense tensor peak large GEMMs reach (cuBLAS/CUTLASS typically 60-85%)",
    "gemm_tile_rows": "tile and wave quantization: a GEMM with M rows costs like M + this many",
    "memory": "fraction of DRAM bandwidth streaming kernels reach (typically 75-90%)",
    "attn_prefill_compute": "flash-attention prefill kernels reach a lower fraction of peak than GEMMs (softmax, masking)",
    "attn_decode_compute": "not fitted: the public set cannot tell it apart from gqa_kv_reuse (kept at 1)",
    "attn_decode_memory": "decode attention streams the KV cache in short per-sequence pieces, below the streaming rate",
    "overlap_loss": "near the ridge kernels hide only part of the shorter of compute and memory time behind the longer",
    "gqa_kv_reuse": "share of GQA's K/V reuse the decode kernel realizes (older per-head kernels re-read K/V per query head)",
    "comm_bandwidth": "fraction of link bandwidth an NCCL-style all-reduce reaches",
    "comm_latency_s": "fixed cost of one all-reduce (launch and synchronization)",
    "layer_overhead_s": "kernel launches and small unmodelled kernels per layer per forward pass",
    "step_overhead_s": "scheduler, sampling and host work per forward pass",
}


def _to_z(value: float, lo: float, hi: float) -> float:
    if hi == 1.0 and lo == 0.0:  # unit interval: logit
        v = min(max(value, 1e-4), 1 - 1e-4)
        return math.log(v / (1 - v))
    return math.log(value)


def _from_z(z: float, lo: float, hi: float) -> float:
    if hi == 1.0 and lo == 0.0:
        return 1 / (1 + math.exp(-z))
    return float(min(max(math.exp(z), lo), hi))


@dataclass(frozen=True)
class FitResult:
    calibration: Calibration
    families: list[str]
    residuals: np.ndarray  # log(pred / measured) per row at the optimum
    iterations: int


def _families(rows: list[Measurement]) -> list[str]:
    return sorted({load_hardware(r.hardware).family for r in rows})


def _calibration(theta: np.ndarray, families: list[str], shared: list, per_family: list,
                 base: Efficiency) -> Calibration:
    values = {}
    i = 0
    for name, _, lo, hi in shared:
        values[name] = _from_z(theta[i], lo, hi)
        i += 1
    centre = {}
    for name, _, lo, hi in per_family:
        centre[name] = _from_z(theta[i], lo, hi)
        i += 1
    default = replace(base, **values, **centre)
    fams = {}
    for fam in families:
        fam_values = {}
        for name, _, lo, hi in per_family:
            fam_values[name] = float(min(max(centre[name] * math.exp(theta[i]), lo), hi))
            i += 1
        fams[fam] = replace(default, **fam_values)
    return Calibration(default=default, families=fams, error_bands={}, source="fit")


def fit(rows: list[Measurement], *, free: list[str] | None = None, start: Efficiency | None = None,
        per_family: bool = True, max_evaluations: int = 400, f_scale: float = 0.1) -> FitResult:
    """Fit the parameters to the rows (soft-L1 loss on log(pred/measured), robust to outliers).

    free: names of the parameters to fit (default: all of SHARED and PER_FAMILY); the others keep
    their values from `start` (default: the plain roofline's). per_family: fit family factors.
    """
    from scipy.optimize import least_squares

    names = set(free) if free is not None else {p[0] for p in SHARED + PER_FAMILY}
    unknown = names - {p[0] for p in SHARED + PER_FAMILY}
    if unknown:
        raise ValueError(f"cannot fit unknown parameter(s) {sorted(unknown)}")
    shared = [p for p in SHARED if p[0] in names]
    fam_params = [p for p in PER_FAMILY if p[0] in names]
    if not per_family:
        shared, fam_params = shared + fam_params, []
    base = start or Efficiency()
    families = _families(rows) if fam_params else []
    measured = np.log([r.value for r in rows])
    spec = shared + fam_params
    theta0 = [_to_z(v, lo, hi) for _, v, lo, hi in spec] + [0.0] * (len(families) * len(fam_params))
    n_shared = len(spec)
    lower = [(-12.0 if (lo == 0 and hi == 1) else math.log(lo)) for _, _, lo, hi in spec]
    upper = [(12.0 if (lo == 0 and hi == 1) else math.log(hi)) for _, _, lo, hi in spec]
    lower += [-1.0] * (len(theta0) - n_shared)
    upper += [1.0] * (len(theta0) - n_shared)
    x0 = np.clip(theta0, np.array(lower) + 1e-9, np.array(upper) - 1e-9)

    def calibration(theta: np.ndarray) -> Calibration:
        return _calibration(theta, families, shared, fam_params, base)

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict(rows, calibration(theta))
        r = np.log(np.where(np.isfinite(pred) & (pred > 0), pred, 1e-30)) - measured
        prior = theta[n_shared:] / FAMILY_PRIOR_SD * f_scale  # ridge on the family factors
        return np.concatenate([r, prior])

    sol = least_squares(residuals, x0, bounds=(lower, upper), loss="soft_l1", f_scale=f_scale,
                        max_nfev=max_evaluations, diff_step=1e-3, x_scale=1.0)
    return FitResult(calibration=calibration(sol.x), families=families, residuals=sol.fun[: len(rows)],
                     iterations=int(sol.nfev))


def error_bands(rows: list[Measurement], pred: np.ndarray) -> dict[str, float]:
    """Median absolute relative error per metric family (throughput, ttft, ...), and per family
    and serving mode (`throughput:static`, `throughput:max`) where a mode has 5 rows or more."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r, p in zip(rows, pred, strict=False):
        if np.isfinite(p):
            err = abs(p / r.value - 1)
            groups[METRIC_FAMILY[r.metric]].append(err)
            groups[f"{METRIC_FAMILY[r.metric]}:{r.mode}"].append(err)
    bands = {k: float(np.median(v)) for k, v in groups.items() if ":" not in k or len(v) >= 5}
    # TPOT and end-to-end time move with throughput where they were not measured themselves.
    for k in ("tpot", "e2e"):
        bands.setdefault(k, bands.get("throughput", 0.2))
    return bands


def leave_one_out(rows: list[Measurement], key: str, *, on_fit: Callable[[str], None] | None = None,
                  **fit_kwargs: Any) -> tuple[np.ndarray, dict[str, Calibration]]:
    """Predict each group's rows from a fit on all the others (`key`: hardware or model).
    `on_fit(held)` is called before each fit (a progress bar's hook)."""
    pred = np.full(len(rows), np.nan)
    fits: dict[str, Calibration] = {}
    for held in sorted({getattr(r, key) for r in rows}):
        if on_fit is not None:
            on_fit(held)
        train = [r for r in rows if getattr(r, key) != held]
        test_idx = [i for i, r in enumerate(rows) if getattr(r, key) == held]
        res = fit(train, **fit_kwargs)
        cal = res.calibration
        if key == "hardware":  # the held-out device's family is unseen: it must use the default
            fam = load_hardware(held).family
            if not any(load_hardware(r.hardware).family == fam for r in train):
                cal = Calibration(default=cal.default, families={k: v for k, v in cal.families.items() if k != fam},
                                  error_bands={}, source=cal.source)
        fits[held] = cal
        pred[test_idx] = predict([rows[i] for i in test_idx], cal)
    return pred, fits


def calibration_document(cal: Calibration, *, data: str, rows: int, bands: dict[str, float]) -> dict[str, Any]:
    """The YAML document `--calibration FILE` loads: parameters, reasons, bands, provenance."""
    def clean(e: Efficiency) -> dict[str, float]:
        return {k: float(f"{v:.6g}") for k, v in e.to_dict().items()}

    return {
        "source": f"llmroofline calibrate --data {data} ({rows} rows)",
        "reasons": REASONS,
        "default": clean(cal.default),
        "families": {k: {p: float(f"{getattr(v, p):.6g}") for p, *_ in PER_FAMILY} for k, v in cal.families.items()},
        "error_bands": {k: float(f"{v:.4g}") for k, v in bands.items()},
    }


def write_calibration(doc: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(
        "# Efficiency parameters fitted by `llmroofline calibrate`; load with --calibration FILE.\n"
        + yaml.safe_dump(doc, sort_keys=False, width=110), encoding="utf-8")
