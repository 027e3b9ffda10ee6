"""Predicted against measured: run every row of a measurement CSV and summarize the errors.

The CSV has SPEC.md's `--from-csv` columns (model, hardware, tp, weight_dtype, kv_dtype, mode,
batch, input_len, output_len) plus `metric` and `value`. Rows that share a deployment and mode
are evaluated in one vectorized call.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .efficiency import Calibration, load_calibration
from .errors import InputError, clean_name
from .estimate import Estimate, estimate
from .files import read_csv
from .runtime import load_runtime, runtime_from_framework

METRICS = {
    "throughput_per_gpu": lambda r: r.throughput_per_gpu_tok_s,
    "throughput_total": lambda r: r.throughput_tok_s,
    "ttft_ms": lambda r: r.ttft_s * 1e3,
    "tpot_ms": lambda r: r.tpot_s * 1e3,
    "e2e_s": lambda r: r.e2e_s,
}
# Which error band a metric belongs to.
METRIC_FAMILY = {"throughput_per_gpu": "throughput", "throughput_total": "throughput", "ttft_ms": "ttft",
                 "tpot_ms": "tpot", "e2e_s": "e2e"}
_REQUIRED = ("model", "hardware", "mode", "input_len", "output_len", "metric", "value")


@dataclass(frozen=True)
class Measurement:
    """One measured number and the workload it was measured on."""

    id: str
    model: str
    hardware: str
    tp: int
    weight_dtype: str
    kv_dtype: str
    mode: str
    batch: float  # nan in max mode (the runtime chose)
    input_len: int
    output_len: int
    metric: str
    value: float
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    runtime: str = "generic"  # serving-stack profile id (runtime.py)

    @property
    def group_key(self) -> tuple:
        return (self.model, self.hardware, self.tp, self.weight_dtype, self.kv_dtype, self.mode, self.runtime)


def read_measurements(path: str | Path, *, bad: list[dict[str, Any]] | None = None) -> list[Measurement]:
    """The rows of a measurement CSV. A malformed row is an InputError naming its line, or, when
    `bad` is a list, is appended to it as {line, id, error} and left out."""
    p = Path(path)
    columns, rows = read_csv(p, "measurements")
    if not rows:
        raise InputError(f"measurements {clean_name(str(p))}: no rows")
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise InputError(f"measurements {p}: missing column(s) {', '.join(missing)}")
    out = []
    for n, r in enumerate(rows, start=2):
        try:
            out.append(_measurement(r, n))
        except (ValueError, TypeError, KeyError) as e:
            if bad is None:
                raise InputError(f"measurements {p}, line {n}: {e}") from None
            bad.append({"line": n, "id": str(r.get("id") or f"row{n}"), "error": str(e)})
    return out


def _text(r: dict[str, Any], key: str, default: str | None = None) -> str:
    """A cell as stripped text; a short row leaves cells as None."""
    v = r.get(key)
    v = "" if v is None else str(v).strip()
    if not v:
        if default is None:
            raise ValueError(f"column {key!r} is empty")
        return default
    return v


def _number(r: dict[str, Any], key: str, default: str | None = None, *, whole: bool = False) -> float:
    text = _text(r, key, default)
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"column {key!r}: {text!r} is not a number") from None
    if not np.isfinite(v) or v <= 0 or v > 1e12 or (whole and v != int(v)):
        raise ValueError(f"column {key!r}: {text!r} must be a finite positive {'whole ' if whole else ''}number")
    return v


def _measurement(r: dict[str, Any], n: int) -> Measurement:
    metric = _text(r, "metric")
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    mode = _text(r, "mode", "static")
    batch = _number(r, "batch", whole=True) if _text(r, "batch", "-") != "-" else float("nan")
    if mode != "max" and np.isnan(batch):
        raise ValueError("batch must be given unless mode is max")
    if _text(r, "runtime", ""):
        runtime = load_runtime(_text(r, "runtime")).id
    else:  # measurement tables name the stack in prose: "TensorRT-LLM (PyTorch backend)", "v0.17"
        runtime = runtime_from_framework(_text(r, "framework", ""), _text(r, "framework_version", "")).id
    return Measurement(
        runtime=runtime,
        id=_text(r, "id", f"row{n}"), model=_text(r, "model"), hardware=_text(r, "hardware"),
        tp=int(_number(r, "tp", "1", whole=True)), weight_dtype=_text(r, "weight_dtype", "checkpoint"),
        kv_dtype=_text(r, "kv_dtype", "fp16"), mode=mode, batch=batch,
        input_len=int(_number(r, "input_len", whole=True)), output_len=int(_number(r, "output_len", whole=True)),
        metric=metric, value=_number(r, "value"), source=_text(r, "source", ""),
        extra={k: str(v) for k, v in r.items() if k in ("framework", "framework_version", "num_gpus")},
    )


def predict(rows: list[Measurement], calibration: str | Calibration | None = "default", *,
            errors: dict[int, str] | None = None) -> np.ndarray:
    """Predicted value of each row's metric, in row order.

    A row the model cannot evaluate (an unknown name, tp not dividing the heads) is an InputError,
    or, when `errors` is a dict, stays nan with its message in errors[row index].
    """
    cal = load_calibration(calibration)
    pred = np.full(len(rows), np.nan)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r.group_key].append(i)
    for key, idx in groups.items():
        try:
            _predict_group(rows, idx, key, cal, pred)
        except InputError:
            if errors is None:
                raise
            for i in idx:  # find the bad rows: each on its own
                try:
                    _predict_group(rows, [i], key, cal, pred)
                except InputError as e:
                    errors.setdefault(i, str(e))
    return pred


def _predict_group(rows: list[Measurement], idx: list[int], key: tuple, cal: Calibration, pred: np.ndarray) -> None:
    model, hw, tp, wd, kd, mode, runtime = key
    sel = [rows[i] for i in idx]
    batch: Any = "max" if mode == "max" else np.array([r.batch for r in sel])
    est: Estimate = estimate(model, hw, batch=batch, input_len=np.array([r.input_len for r in sel]),
                             output_len=np.array([r.output_len for r in sel]), tp=tp, weight_dtype=wd,
                             kv_dtype=kd, mode=mode, calibration=cal, runtime=runtime)
    for j, i in enumerate(idx):
        pred[i] = float(np.broadcast_to(METRICS[rows[i].metric](est), (len(idx),))[j])


@dataclass(frozen=True)
class GroupError:
    group: str
    rows: int
    median_ape: float  # median absolute percentage error, %
    mean_ape: float
    bias: float  # median signed error, % (positive: predictions too high)
    worst: list[tuple[str, float]]


def summarize(rows: list[Measurement], pred: np.ndarray, by: str) -> list[GroupError]:
    """Errors per group (`device`, `mode`, `metric`, `source`, `model`, or `all`)."""
    keyf = {
        "device": lambda r: r.hardware, "mode": lambda r: r.mode, "metric": lambda r: r.metric,
        "source": lambda r: r.source.split("|")[0].strip() or "unknown", "model": lambda r: r.model,
        "family": lambda r: METRIC_FAMILY[r.metric], "all": lambda r: "all", "runtime": lambda r: r.runtime,
    }[by]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[keyf(r)].append(i)
    out = []
    for g, idx in sorted(groups.items()):
        meas = np.array([rows[i].value for i in idx])
        err = (pred[idx] / meas - 1) * 100
        order = np.argsort(-np.abs(err))
        out.append(GroupError(group=g, rows=len(idx), median_ape=float(np.nanmedian(np.abs(err))),
                              mean_ape=float(np.nanmean(np.abs(err))), bias=float(np.nanmedian(err)),
                              worst=[(rows[idx[k]].id, float(err[k])) for k in order[:3]]))
    return out
