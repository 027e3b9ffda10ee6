"""The interactive web app (`llmroofline app`): Roofline, Compare, Estimate and Recommend tabs.

A thin shell: every number comes from the public Python API; this module only turns form values
into API calls and results into plotly figures and tables. The helpers above `create_app` are
pure (no Dash needed) and return what the callbacks show, so tests call them directly; Dash is
imported lazily in `create_app` (optional extra `llmroofline[app]`).

Bad input never stops the server: each callback catches `InputError` and shows its message
above the outputs it could not compute; the other tabs keep working.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePath
from typing import Any

import numpy as np

from .compare import METHODS, METRICS, compare
from .errors import InputError
from .estimate import MODES, estimate
from .hardware import Hardware, hardware_from_dict, list_hardware, load_hardware
from .model import ModelSpec, list_models, load_model, model_from_config
from .precision import PRECISIONS
from .report import (
    BREAKDOWN_COLUMNS,
    PNG_CONFIG,
    breakdown_rows,
    cell_text,
    estimate_sections,
    html_report,
    table_csv,
)

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 1_000_000  # an uploaded config.json is a few kB; refuse anything above 1 MB
CUSTOM = "custom:"  # option values of devices typed into the page
UPLOADED = "upload:"  # option values of uploaded model configs
DEFAULT_MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-2-7b-hf")
DEFAULT_DEVICES = ("A100-SXM4-80GB", "H100-SXM5-80GB", "H20", "MI300X", "L40S")

# Help texts written once and shown as tooltips (STYLE 9: one source of truth for options).
HELP = {
    "model": "Model: a bundled architecture, or upload a Hugging Face config.json (up to 1 MB).",
    "device": "Device: a catalog id, or one added under 'Custom device'.",
    "weight_dtype": "Weight precision: fp32, fp16, bf16, fp8, int8, fp4, int4.",
    "kv_dtype": "KV-cache precision.",
    "tp": "Tensor-parallel degree: GPUs that split every layer.",
    "pp": "Pipeline-parallel degree: GPUs that split the layers.",
    "batch": "Batch size (sequences), or 'max' for the largest batch that fits.",
    "input": "Prompt tokens per sequence.",
    "output": "Output tokens per sequence.",
    "mode": "static: the batch starts together; continuous: requests kept in flight; max: continuous at the largest batch that fits.",
    "calibration": "default: the tool's best estimate (calibrated efficiencies); none: the plain roofline, an upper bound on speed.",
    "axis": "A range LO:HI (log-spaced, 24 points), LO:HI:N (N points), or a list 1,8,64.",
    "method": "whole: the whole model as one kernel (method 1); ops: per-operator roofline (method 2).",
    "metric": "decode: output tok/s of one decode step at KV length seq; ttft: prompt tok/s of the prefill; e2e: a static batch with 128 output tokens.",
    "phase": "prefill: one pass over batch prompts of length seq; decode: one step at KV length seq.",
    "slo": "Service-level objective in seconds; leave empty for none.",
}


# ---- names: catalog entries, uploaded configs and custom devices ---------------------------

def _short_number(v: float) -> str:
    """128 -> '128', 4096 -> '4.1k', 131072 -> '131k'."""
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.0f}"


def model_options(uploaded: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Dropdown options: uploaded configs first, then the bundled models with their size."""
    opts = [{"label": f"{name} (uploaded)", "value": UPLOADED + name} for name in (uploaded or {})]
    for m in list_models():
        active = f", {m.params_active / 1e9:.3g}B active" if m.is_moe else ""
        opts.append({"label": f"{m.id} ({m.params_total / 1e9:.3g}B{active})", "value": m.id})
    return opts


def device_options(custom: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Dropdown options: custom devices first, then the catalog with memory and bandwidth."""
    opts = [{"label": f"{name} (custom)", "value": CUSTOM + name} for name in (custom or {})]
    for hw in list_hardware():
        fp16 = hw.peak_flops.get("fp16", hw.peak_flops.get("bf16", 0.0))
        opts.append({"label": hw.id, "value": hw.id,
                     "title": f"{hw.name}: {hw.memory_bytes / 1e9:.0f} GB, {hw.memory_bandwidth / 1e12:.2f} TB/s, "
                              f"{fp16 / 1e12:.0f} TFLOPS fp16"})
    return opts


def resolve_model(value: str | None, uploaded: dict[str, Any] | None = None) -> ModelSpec:
    """A dropdown value to a ModelSpec: an uploaded config or a catalog name."""
    if not value:
        raise InputError("model: pick a model or upload a config.json")
    if value.startswith(UPLOADED):
        name = value[len(UPLOADED):]
        cfg = (uploaded or {}).get(name)
        if cfg is None:
            raise InputError(f"model: the uploaded config {name!r} is gone (reload the page and upload it again)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_from_config(cfg, model_id=name)
    return load_model(value)


def resolve_device(value: str | None, custom: dict[str, Any] | None = None) -> Hardware:
    """A dropdown value to a Hardware: a custom spec (validated again) or a catalog name."""
    if not value:
        raise InputError("device: pick a device")
    if value.startswith(CUSTOM):
        name = value[len(CUSTOM):]
        spec = (custom or {}).get(name)
        if spec is None:
            raise InputError(f"device: the custom device {name!r} is gone (add it again)")
        return hardware_from_dict(spec, where="custom device")
    return load_hardware(value)


def parse_upload(contents: str | None, filename: str | None) -> tuple[str, dict[str, Any], list[str]]:
    """An uploaded file (a `data:...;base64,` URL) to (name, config mapping, warnings).

    Accepts a Hugging Face config.json or a catalog entry ({"id": ..., "config": {...}}); the
    config is checked by `model_from_config`. Raises InputError for anything else."""
    fname = str(filename or "upload")
    if not contents or "," not in str(contents):
        raise InputError(f"upload {fname}: no file content received")
    try:
        raw = base64.b64decode(str(contents).split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        raise InputError(f"upload {fname}: the file could not be decoded") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError(f"upload {fname}: {len(raw) / 1e6:.1f} MB is too large for a config.json "
                         f"(allowed up to {MAX_UPLOAD_BYTES / 1e6:.0f} MB)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"upload {fname}: not a text file (a config.json is UTF-8 JSON)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"upload {fname}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "id" in data:
        name, cfg = str(data["id"]), data["config"]
    else:
        cfg = data
        stem = PurePath(fname).stem
        guess = cfg.get("_name_or_path") if isinstance(cfg, dict) else None
        name = str(guess) if guess and stem == "config" else stem
    name = name.strip() or "uploaded"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_from_config(cfg, model_id=fname)  # validate now; InputError names the file and the field
    return name, cfg, [str(w.message) for w in caught]


CUSTOM_FIELDS = (  # (form field, label, unit, default shown in the page)
    ("id", "name", "", "MyGPU"),
    ("memory_gb", "memory", "GB", 80),
    ("memory_bandwidth_gbps", "bandwidth", "GB/s", 3000),
    ("fp16", "fp16/bf16 peak", "TFLOPS", 500),
    ("fp8", "fp8 peak", "TFLOPS", None),
    ("int8", "int8 peak", "TOPS", None),
    ("interconnect_gbps", "interconnect", "GB/s, both ways", 900),
    ("max_devices", "devices per node", "", 8),
    ("tdp_w", "power", "W", 700),
    ("price_per_hour_usd", "price", "USD/h", 2.0),
)


def _number_field(label: str, value: Any, *, optional: bool = False) -> float | None:
    """A form value to a float; empty -> None if optional. Positivity is checked by hardware_from_dict."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise InputError(f"custom device: {label} is missing")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"custom device: {label} must be a number, got {value!r}") from None


def custom_device_spec(values: dict[str, Any]) -> dict[str, Any]:
    """The custom-device form (keys of CUSTOM_FIELDS) to a spec mapping in the catalog schema,
    validated by `hardware_from_dict`. Raises InputError naming the field."""
    name = str(values.get("id") or "").strip()
    if not name:
        raise InputError("custom device: name is missing")
    if len(name) > 60 or any(c in name for c in "<>\"'`"):
        raise InputError(f"custom device: name {name!r} must be up to 60 characters without quotes or < >")
    labels = {k: f"{lab} ({unit})" if unit else lab for k, lab, unit, _ in CUSTOM_FIELDS}
    num = {k: _number_field(labels[k], values.get(k), optional=k in ("fp8", "int8")) for k, *_ in CUSTOM_FIELDS
           if k != "id"}
    peaks = {"fp16": num["fp16"], "bf16": num["fp16"]}
    for p in ("fp8", "int8"):
        if num[p] is not None:
            peaks[p] = num[p]
    spec = {
        "id": name, "name": name, "vendor": "custom", "family": "custom", "aliases": [], "release_year": date.today().year,
        "memory_gb": num["memory_gb"], "memory_type": "", "memory_bandwidth_gbps": num["memory_bandwidth_gbps"],
        "peak_tflops": peaks, "onchip_buffer_mb": 50,
        "interconnect": {"kind": "custom", "bandwidth_gbps": num["interconnect_gbps"],
                         "max_devices": num["max_devices"]},
        "tdp_w": num["tdp_w"], "price_per_hour_usd": num["price_per_hour_usd"], "confidence": "low",
        "notes": "typed into the web app", "source": "typed into the web app", "sources": {},
    }
    hardware_from_dict(spec, where="custom device")
    return spec


def parse_int(value: Any, name: str, *, allow_max: bool = False) -> int | str:
    """A form value to a whole number (or 'max')."""
    if allow_max and str(value).strip().lower() == "max":
        return "max"
    try:
        f = float(str(value).strip())
    except ValueError:
        raise InputError(f"{name} must be a whole number{' or max' if allow_max else ''}, got {value!r}") from None
    if not math.isfinite(f) or f != round(f):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    return int(f)


def parse_optional_float(value: Any, name: str) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        raise InputError(f"{name} must be a number of seconds or empty, got {value!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise InputError(f"{name} must be positive, got {value!r}")
    return f


# ---- views: what each tab shows -------------------------------------------------------------

def placeholder_figure(text: str = "", height: int = 420) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(template="plotly_white", height=height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      annotations=[dict(text=text, showarrow=False, font=dict(size=14, color="#888"))] if text else [])
    return fig


@dataclass
class View:
    """What one tab shows: figures, a summary, table rows, and the CSV behind them."""

    figures: list[Any] = field(default_factory=list)
    summary: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    csv: str = ""
    data: dict[str, Any] = field(default_factory=dict)


ROOFLINE_COLUMNS = ["device", "operator", "FLOP/B", "attainable TFLOP/s", "share of pass %", "bound"]


def _fit_figure(fig: Any, height: int) -> Any:
    """Shared figures are drawn for a full page; fit them to the app's cards."""
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=70, b=40), title_font_size=14)
    return fig


def roofline_view(model: ModelSpec, devices: list[Hardware], precisions: list[str], *, phase: str = "decode",
                  batch: int = 1, seq: int = 1024, weight_dtype: str = "fp16", tp: int = 1,
                  on: Hardware | None = None) -> View:
    """Rooflines of the devices at the chosen precisions (`interactive.roofline_figure`) with the
    workload's operators placed on device `on` (default: the first). A device that lacks a
    precision is left out at that precision only, with a note."""
    from .interactive import roofline_figure
    from .plots import missing_roofs, workload_points

    if not devices:
        raise InputError("roofline: pick at least one device")
    if not precisions:
        raise InputError("roofline: pick at least one precision")
    kept = list(precisions)
    notes = [n[0].upper() + n[1:] + "." for n in missing_roofs(devices, kept)]
    target = on if on is not None else devices[0]
    wp = workload_points(model, target, phase=phase, batch=batch, seq=seq, tp=tp, weight_dtype=weight_dtype)
    fig = _fit_figure(roofline_figure(devices, kept, workload=wp), 560)
    rows = [[wp.device, n, float(i), float(a) / 1e12, float(s) * 100, b]
            for n, i, a, s, b in zip(wp.names, wp.intensity, wp.attainable, wp.time_share, wp.bound, strict=True)]
    rows.append([wp.device, "whole model (method 1)", wp.whole_intensity, wp.whole_attainable / 1e12, 100.0, ""])
    summary = [f"Operators of {wp.model} ({phase}, batch {batch}, {'KV length' if phase == 'decode' else 'prompt'} "
               f"{seq}, tp {wp.tp}) on {wp.device}: marker size is the share of the pass time (plain roofline); "
               f"the star is the whole model (method 1)."] + notes
    return View(figures=[fig], summary=summary, columns=ROOFLINE_COLUMNS, rows=rows,
                csv=table_csv(ROOFLINE_COLUMNS, rows), data={"workload": wp.to_dict()})


COMPARE_COLUMNS = ["batch", "seq", "perf_a", "perf_b", "ratio_a_over_b", "fits_a", "fits_b"]


def compare_view(model: ModelSpec, a: Hardware, b: Hardware, *, batch: str = "1:1024", seq: str = "128:131072",
                 method: str = "whole", metric: str = "decode", weight_dtype_a: str = "fp16",
                 weight_dtype_b: str = "fp16", tp_a: int = 1, tp_b: int = 1) -> View:
    """The A-over-B mesh of `llmroofline.compare` as `interactive.comparison_figure` draws it
    (hover: both devices' numbers and whether each fits; marked cells: out of memory)."""
    from .interactive import comparison_figure
    from .plots import mesh_summary

    c = compare(model, a, b, batch=batch, seq=seq, method=method, metric=metric, tp_a=tp_a, tp_b=tp_b,
                weight_dtype_a=weight_dtype_a, weight_dtype_b=weight_dtype_b)
    fig = _fit_figure(comparison_figure(c), 520)
    ratio = np.asarray(c.ratio, dtype=float)
    fa, fb = np.asarray(c.fits_a, bool), np.asarray(c.fits_b, bool)
    rows = [[int(c.batch[i]), int(c.seq[j]), float(c.perf_a[i, j]), float(c.perf_b[i, j]), float(ratio[i, j]),
             bool(fa[i, j]), bool(fb[i, j])] for i in range(ratio.shape[0]) for j in range(ratio.shape[1])]
    data = mesh_summary(c)
    la, lb = c.labels.get("a", c.a), c.labels.get("b", c.b)
    both = fa & fb
    if data["equal"]:
        summary = [f"A = {la}, B = {lb}: equal in every cell (ratio 1).",
                   f"Out of memory: A in {data['not_fit_a']} cells, B in {data['not_fit_b']}."]
    elif both.any():
        data["ratio_median_fit_both"] = float(np.median(ratio[both]))
        data["a_faster_share_fit_both"] = float((ratio[both] > 1).mean())
        summary = [f"A = {la}, B = {lb}. Where both fit ({data['fit_both']} of {data['cells']} cells), A / B runs "
                   f"from {data['ratio_min_fit_both']:.3g}× to {data['ratio_max_fit_both']:.3g}×, median "
                   f"{data['ratio_median_fit_both']:.3g}×: A is faster in {data['a_faster_share_fit_both']:.0%} of them.",
                   f"Out of memory: A in {data['not_fit_a']} cells, B in {data['not_fit_b']}, both in "
                   f"{data['fit_neither']}."]
    else:
        summary = [f"A = {la}, B = {lb}. No cell fits on both devices (A out of memory in {data['not_fit_a']}, "
                   f"B in {data['not_fit_b']} of {data['cells']} cells)."]
    return View(figures=[fig], summary=summary, columns=COMPARE_COLUMNS, rows=rows,
                csv=table_csv(COMPARE_COLUMNS, rows), data=data)



def batch_field_disabled(mode: str | None) -> bool:
    """The Estimate tab's Batch field is greyed out in max mode, which chooses the batch itself."""
    return mode == "max"


def estimate_view(model: ModelSpec, device: Hardware, *, batch: int | str = 1, input_len: int = 512,
                  output_len: int = 128, tp: int = 1, pp: int = 1, weight_dtype: str = "fp16",
                  kv_dtype: str = "fp16", mode: str = "static", calibration: str = "default") -> View:
    """One workload: headline numbers with error bands, memory bar, per-operator breakdown, batch sweep."""
    r = estimate(model, device, batch=batch, input_len=input_len, output_len=output_len, tp=tp, pp=pp,
                 weight_dtype=weight_dtype, kv_dtype=kv_dtype, mode=mode, calibration=calibration)
    s = estimate_sections(model, device, r, calibration)
    rows = breakdown_rows(s.breakdown)
    return View(figures=s.figures, summary=s.summary, columns=BREAKDOWN_COLUMNS, rows=rows,
                csv=table_csv(BREAKDOWN_COLUMNS, rows),
                data={"title": s.title, "inputs": s.inputs, "notes": s.notes, "estimate": r.to_dict()})


def estimate_report_html(model: ModelSpec, device: Hardware, **workload: Any) -> str:
    """The same report `estimate --html` writes, as text (the Estimate tab's download)."""
    cal = workload.get("calibration", "default")
    r = estimate(model, device, **workload)
    s = estimate_sections(model, device, r, cal)
    return html_report(f"Estimate: {s.title}", s.inputs, s.figures, s.tables[1:], s.notes, lead=s.tables[0])


RECOMMEND_COLUMNS = ["device", "gpus", "tp", "pp", "ep", "batch", "ttft_s", "tpot_s", "throughput_per_gpu_tok_s",
                     "tokens_per_s_per_user", "price_per_gpu_hour", "cost_per_million_tokens", "energy_j_per_token"]
RECOMMEND_HEADERS = ["device", "GPUs", "tp", "pp", "ep", "batch", "TTFT s", "TPOT ms", "tok/s per GPU",
                     "tok/s per user", "$ per GPU-hour", "$ per M tokens", "J per token"]


def recommend_view(model: ModelSpec, *, input_len: int = 1024, output_len: int = 256,
                   devices: list[Hardware] | None = None, ttft_slo: float | None = None,
                   tpot_slo: float | None = None) -> View:
    """Devices ranked by `recommend.recommend` (cheapest per token first) and the throughput-latency
    Pareto chart of the same search (`pareto_plot.pareto_figure`)."""
    from .pareto_plot import pareto_figure
    from .recommend import interactive_default, objective_text, recommend

    ttft_slo, tpot_slo, note = interactive_default(ttft_slo, tpot_slo)  # none given: an interactive service
    rec = recommend(model, input_len, output_len, devices=devices or None, ttft_slo=ttft_slo, tpot_slo=tpot_slo)
    rows = [[c.to_dict().get(k) for k in RECOMMEND_COLUMNS] for c in rec.ranking]
    shown = [[*r[:7], c.tpot_s * 1e3, *r[8:]] for r, c in zip(rows, rec.ranking, strict=True)]  # TPOT in ms
    fig = _fit_figure(pareto_figure(rec.pareto()), 520)
    fig.update_layout(legend=dict(font=dict(size=10), x=1.01, y=1, xanchor="left"))
    n_ex = len(rec.excluded)
    summary = [f"{len(rec.ranking)} device(s) ranked, cheapest per million output tokens first"
               + (f"; {n_ex} excluded:" if n_ex else ".")]
    summary += [f"{e.device}: {e.reason}" for e in rec.excluded[:8]]
    if n_ex > 8:
        summary.append(f"… and {n_ex - 8} more.")
    text = objective_text(rec.workload)
    summary.append(text[0].upper() + text[1:] + ".")
    if note:  # the app has no 'none': an empty field means the interactive default
        summary.append("No latency target given: ranked for an interactive service, TPOT ≤ 50 ms (20 tokens/s per "
                       "user). Type a TPOT SLO to change it.")
    return View(figures=[fig], summary=summary, columns=RECOMMEND_HEADERS, rows=shown,
                csv=table_csv(RECOMMEND_COLUMNS, rows), data=rec.to_dict())


def format_value(v: Any) -> str:
    """A table cell or headline number as text (as the HTML report writes it)."""
    return cell_text(v)


# ---- the Dash app ----------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;color:#1f2328;
background:#f6f8fa}
.topbar{display:flex;align-items:center;gap:12px;padding:8px 16px;background:#fff;border-bottom:1px solid #d0d7de;
flex-wrap:wrap}
.brand{font-weight:700;font-size:16px;white-space:nowrap}
.brand small{font-weight:400;color:#656d76;font-size:12px;margin-left:6px}
.model-pick{flex:1 1 380px;min-width:300px;max-width:560px}
.upload{border:1px dashed #8c959f;border-radius:6px;padding:6px 10px;cursor:pointer;white-space:nowrap;
background:#fafbfc;color:#0969da}
.topmsg{flex:1 1 240px;font-size:12px}
details.custom{background:#fff;border-bottom:1px solid #d0d7de;padding:4px 16px}
details.custom summary{cursor:pointer;color:#0969da;padding:4px 0}
.custom-grid{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:flex-end;padding:6px 0 8px}
.custom-grid label{display:flex;flex-direction:column;justify-content:flex-end;font-size:11px;color:#656d76;
width:118px;gap:2px}
.tabs-wrap{padding:0 16px}
.tab-body{display:grid;grid-template-columns:250px minmax(0,1fr);gap:14px;padding:12px 0}
.controls{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 12px;align-self:start}
.controls label.f{display:block;font-size:11px;color:#656d76;margin:8px 0 2px;font-weight:600}
.controls input[type=text],.controls input[type=number],.custom-grid input{padding:4px 6px;border:1px solid #d0d7de;
border-radius:4px;font-size:13px;width:100%}
.row2{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.results{min-width:0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:6px;margin-bottom:12px}
.summary{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;margin-bottom:12px}
.summary p{margin:2px 0}
.msg-error{background:#ffebe9;border:1px solid #ff8182;color:#82071e;border-radius:6px;padding:8px 12px;
margin-bottom:10px;font-weight:500}
.msg-ok{background:#dafbe1;border:1px solid #4ac26b;color:#116329;border-radius:6px;padding:4px 10px}
.results > div:has(> .msg-error) ~ *{display:none}  /* an error hides the stale or empty outputs below it */
.topmsg .msg-error,.topmsg .msg-ok{margin:0;padding:4px 10px;font-size:12px}
.msg-note{color:#9a6700;font-size:12px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(138px,1fr));gap:8px;margin-bottom:12px}
.kpi{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 12px}
.kpi .q{font-size:11px;color:#656d76;text-transform:uppercase;letter-spacing:.03em}
.kpi .v{font-size:19px;font-weight:600;margin-top:2px;white-space:nowrap}
.kpi .u{font-size:12px;color:#656d76;font-weight:400;margin-left:3px}
.kpi .b{font-size:11px;color:#656d76}
.kpi.bad{border-color:#ff8182;background:#fff5f5}
.kpi.bad .b{color:#cf222e;font-weight:600}
.buttons{display:flex;gap:8px;margin:4px 0 12px;flex-wrap:wrap}
button.btn{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:5px 12px;cursor:pointer;font-size:12px}
button.btn:hover{background:#eaeef2}
button.primary{background:#1f883d;color:#fff;border-color:#1a7f37}
table.data{border-collapse:collapse;font-size:12px;width:100%}
table.data th,table.data td{border-bottom:1px solid #eaeef2;padding:3px 8px;text-align:right;white-space:nowrap}
table.data th{position:sticky;top:0;background:#f6f8fa}
table.data td:first-child,table.data th:first-child,table.data td:nth-child(2),table.data th:nth-child(2){text-align:left}
.table-scroll{max-height:380px;overflow:auto}
.hint{color:#656d76;font-size:11px;margin-top:10px}
.chosen{color:#1f2328;font-size:11px;margin-top:3px;line-height:1.35}
"""


_TAB_STYLE = {"padding": "8px 12px", "fontWeight": 500, "borderColor": "#d0d7de", "background": "#f6f8fa"}
_TAB_SELECTED = {**_TAB_STYLE, "background": "#fff", "borderTop": "3px solid #0969da", "color": "#0969da"}


def _message(text: str | None, kind: str = "error") -> Any:
    from dash import html

    if not text:
        return None
    return html.Div(text, className=f"msg-{kind}", role="alert" if kind == "error" else None)


def _data_table(columns: list[str], rows: list[list[Any]], table_id: str | None = None) -> Any:
    from dash import html

    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody([html.Tr([html.Td(format_value(v)) for v in r]) for r in rows])
    table = html.Table([head, body], className="data", id=table_id) if table_id else html.Table(
        [head, body], className="data")
    return html.Div(table, className="table-scroll")


def _kpi_cards(summary: list[dict[str, Any]]) -> Any:
    from dash import html

    cards = []
    fits = next((s["value"] for s in summary if s["key"] == "fits"), "yes") == "yes"
    for s in summary:
        v = s["value"]
        if s["key"] == "fits":
            continue  # shown on the memory card
        band = s.get("band")
        sub = ""
        if band and isinstance(v, float):
            sub = f"± {band * 100:.0f}%  ({format_value(v * (1 - band))} – {format_value(v * (1 + band))})"
        if s["key"] == "memory":
            sub = "fits" if fits else "does NOT fit: these times are not achievable"
        bad = s["key"] == "memory" and not fits
        cards.append(html.Div([
            html.Div(s["quantity"], className="q"),
            html.Div([html.Span(format_value(v), id=f"kpi-{s['key']}"), html.Span(s["unit"], className="u")],
                     className="v"),
            html.Div(sub, className="b"),
        ], className="kpi bad" if bad else "kpi"))
    return html.Div(cards, className="kpis")


def _graph(graph_id: str, height: int | None = None) -> Any:
    from dash import dcc

    config: Any = {**PNG_CONFIG, "toImageButtonOptions": {**PNG_CONFIG["toImageButtonOptions"],
                                                          "filename": graph_id}}
    return dcc.Graph(id=graph_id, figure=placeholder_figure("computing…", height or 420), config=config)


def _display_name(value: str) -> str:
    return value[len(CUSTOM):] + " (custom)" if value.startswith(CUSTOM) else value


def _chosen(values: list[str]) -> str:
    """The devices picked in a multi-select, spelled out (the dropdown shows only a count)."""
    return " · ".join(_display_name(v) for v in values)


def _pick_defaults(options: list[dict[str, str]], wanted: tuple[str, ...], n: int) -> list[str]:
    values = [o["value"] for o in options]
    lowered = {v.lower(): v for v in values}
    out = [lowered[w.lower()] for w in wanted if w.lower() in lowered][:n]
    for v in values:
        if len(out) >= n:
            break
        if v not in out:
            out.append(v)
    return out


def _layout(extra_devices: dict[str, Any], extra_models: dict[str, Any]) -> Any:
    from dash import dcc, html

    models = model_options(extra_models)
    devices = device_options(extra_devices)
    model0: str | None = (_pick_defaults(models, DEFAULT_MODELS, 1) or [None])[0]  # type: ignore[list-item]
    dev: list[str | None] = list(_pick_defaults(devices, DEFAULT_DEVICES, 5))
    dev += [None] * (5 - len(dev))
    dtypes = [{"label": p, "value": p} for p in PRECISIONS]

    def field_(label: str, comp: Any, help_key: str | None = None) -> list[Any]:
        return [html.Label(label, className="f", title=HELP.get(help_key or "", "")), comp]

    def text(id_: str, value: Any, help_key: str | None = None) -> Any:
        return html.Div(dcc.Input(id=id_, type="text", value=str(value), debounce=True),
                        title=HELP.get(help_key or "", ""))

    def dd(id_: str, options: Any, value: Any, **kw: Any) -> Any:
        return dcc.Dropdown(id=id_, options=options, value=value, clearable=False, **kw)

    def radio(id_: str, options: list[str], value: str) -> Any:
        return dcc.RadioItems(id=id_, options=[{"label": o, "value": o} for o in options], value=value, inline=True,
                              inputStyle={"marginRight": "3px"}, labelStyle={"marginRight": "10px"})

    def buttons(prefix: str, extra: list[Any] | None = None) -> Any:
        return html.Div([html.Button("Download CSV", id=f"{prefix}-csv-btn", className="btn"),
                         dcc.Download(id=f"{prefix}-csv"), *(extra or [])], className="buttons")

    roofline_tab = html.Div([
        html.Div([
            *field_("Devices", dcc.Dropdown(id="rf-devices", options=devices, value=[d for d in dev[:3] if d],
                                            multi=True), "device"),
            html.Div(id="rf-devices-list", className="chosen"),
            *field_("Operators on", dd("rf-on", [], dev[0]), "device"),
            *field_("Precisions", dcc.Checklist(id="rf-precisions", options=dtypes, value=["fp16"],
                                                inline=True, inputStyle={"marginRight": "3px"},
                                                labelStyle={"marginRight": "8px"})),
            *field_("Phase", radio("rf-phase", ["decode", "prefill"], "decode"), "phase"),
            html.Div([html.Div(field_("Batch", text("rf-batch", 1, "batch"))),
                      html.Div(field_("Seq length", text("rf-seq", 2048, "input")))], className="row2"),
            html.Div([html.Div(field_("Weights", dd("rf-weight", dtypes, "fp16"), "weight_dtype")),
                      html.Div(field_("tp", text("rf-tp", 1, "tp")))], className="row2"),
            html.Div("Operators sit on their device's roofline (plain roofline); hover for names and shares.",
                     className="hint"),
        ], className="controls"),
        html.Div([html.Div(id="rf-msg"), html.Div(_graph("rf-graph", 560), className="card"),
                  html.Div(id="rf-summary", className="summary"), buttons("rf")], className="results"),
    ], className="tab-body")

    compare_tab = html.Div([
        html.Div([
            *field_("Device A", dd("cmp-a", devices, dev[0]), "device"),
            *field_("Device B", dd("cmp-b", devices, dev[2] or dev[1]), "device"),
            html.Div([html.Div(field_("A weights", dd("cmp-wa", dtypes, "fp16"), "weight_dtype")),
                      html.Div(field_("B weights", dd("cmp-wb", dtypes, "fp16"), "weight_dtype"))], className="row2"),
            html.Div([html.Div(field_("A tp", text("cmp-tpa", 1, "tp"))),
                      html.Div(field_("B tp", text("cmp-tpb", 1, "tp")))], className="row2"),
            *field_("Method", radio("cmp-method", list(METHODS), "whole"), "method"),
            *field_("Metric", radio("cmp-metric", list(METRICS), "decode"), "metric"),
            *field_("Batch (y)", text("cmp-batch", "1:1024", "axis"), "axis"),
            *field_("Sequence length (x)", text("cmp-seq", "128:131072", "axis"), "axis"),
            html.Div("Colour: A / B (the black line is 1). Marked cells run out of memory on A, B or both. "
                     "Hover a cell for both devices' numbers.", className="hint"),
        ], className="controls"),
        html.Div([html.Div(id="cmp-msg"), html.Div(id="cmp-summary", className="summary"),
                  html.Div(_graph("cmp-graph", 540), className="card"), buttons("cmp")], className="results"),
    ], className="tab-body")

    estimate_tab = html.Div([
        html.Div([
            *field_("Device", dd("est-device", devices, dev[0]), "device"),
            html.Div([html.Div(field_("tp", text("est-tp", 1, "tp"))),
                      html.Div(field_("pp", text("est-pp", 1, "pp")))], className="row2"),
            *field_("Batch", text("est-batch", 8, "batch"), "batch"),
            html.Div(id="est-batch-note", className="hint"),
            html.Div([html.Div(field_("Input tokens", text("est-input", 2048, "input"))),
                      html.Div(field_("Output tokens", text("est-output", 256, "output")))], className="row2"),
            html.Div([html.Div(field_("Weights", dd("est-weight", dtypes, "fp16"), "weight_dtype")),
                      html.Div(field_("KV cache", dd("est-kv", dtypes, "fp16"), "kv_dtype"))], className="row2"),
            *field_("Mode", radio("est-mode", list(MODES), "static"), "mode"),
            *field_("Calibration", radio("est-cal", ["default", "none"], "default"), "calibration"),
        ], className="controls"),
        html.Div([
            html.Div(id="est-msg"), html.Div(id="est-kpis"),
            html.Div(_graph("est-mem", 200), className="card"),
            html.Div(_graph("est-sweep", 340), className="card"),
            html.Div(_graph("est-ops", 420), className="card"),
            buttons("est", [html.Button("Download HTML report", id="est-html-btn", className="btn"),
                            dcc.Download(id="est-html")]),
            html.Div(id="est-table", className="card"),
            html.Div(id="est-notes", className="hint"),
        ], className="results"),
    ], className="tab-body")

    recommend_tab = html.Div([
        html.Div([
            *field_("Devices (empty: the whole catalog)", dcc.Dropdown(id="rec-devices", options=devices, value=[d for d in dev if d],
                                                                       multi=True), "device"),
            html.Div(id="rec-devices-list", className="chosen"),
            html.Div([html.Div(field_("Input tokens", text("rec-input", 1024, "input"))),
                      html.Div(field_("Output tokens", text("rec-output", 256, "output")))], className="row2"),
            html.Div([html.Div(field_("TTFT SLO s", text("rec-ttft", "", "slo"))),
                      html.Div(field_("TPOT SLO s", text("rec-tpot", "", "slo")))], className="row2"),
        ], className="controls"),
        html.Div([html.Div(id="rec-msg"), html.Div(id="rec-summary", className="summary"),
                  html.Div(id="rec-table", className="card"), buttons("rec"),
                  html.Div(_graph("rec-graph", 520), className="card")], className="results"),
    ], className="tab-body")

    custom_inputs = [html.Label([lab + (f" ({unit})" if unit else ""),
                                 dcc.Input(id=f"cd-{key}", type="text", value="" if default is None else str(default),
                                           placeholder="optional" if default is None else "")])
                     for key, lab, unit, default in CUSTOM_FIELDS]
    return html.Div([
        html.Div([
            html.Div(["llmroofline", html.Small("LLM inference speed from the roofline")], className="brand"),
            html.Div(dcc.Dropdown(id="model", options=models, value=model0, clearable=False, searchable=True),
                     className="model-pick", title=HELP["model"]),
            dcc.Upload(id="upload", children=html.Span("Upload config.json"), className="upload",
                       accept=".json,application/json", max_size=4 * MAX_UPLOAD_BYTES, multiple=False),
            html.Div(id="upload-msg", className="topmsg"),
        ], className="topbar"),
        html.Details([
            html.Summary("Custom device: type a spec to add it to every device list"),
            html.Div([*custom_inputs, html.Button("Add device", id="cd-add", className="btn primary")],
                     className="custom-grid"),
            html.Div(id="cd-msg", style={"paddingBottom": "6px"}),
        ], className="custom", id="custom-details"),
        dcc.Store(id="models-store", data=extra_models),
        dcc.Store(id="devices-store", data=extra_devices),
        dcc.Store(id="rf-store"), dcc.Store(id="cmp-store"), dcc.Store(id="est-store"), dcc.Store(id="rec-store"),
        html.Div(dcc.Tabs(id="tabs", value="compare", style={"height": "38px", "marginTop": "8px"}, children=[
            dcc.Tab(label=label, value=value, children=body, style=_TAB_STYLE, selected_style=_TAB_SELECTED)
            for label, value, body in (("Roofline", "roofline", roofline_tab), ("Compare", "compare", compare_tab),
                                       ("Estimate", "estimate", estimate_tab), ("Recommend", "recommend", recommend_tab))
        ]), className="tabs-wrap"),
    ])


def _guard(n_outputs: int, empties: tuple[Any, ...]):
    """Decorate a callback whose first output is a message: InputError -> the message and the
    empties; any other exception -> an 'internal error' message (logged), never a dead server."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args):
            try:
                out = fn(*args)
                return out
            except InputError as e:
                return (_message(str(e)), *empties)
            except Exception as e:  # noqa: BLE001 - the page must keep working
                log.exception("callback %s failed", fn.__name__)
                return (_message(f"internal error: {type(e).__name__}: {e}. Please report it with the inputs."),
                        *empties)
        return inner
    if len(empties) != n_outputs - 1:
        raise ValueError(f"_guard: {n_outputs} outputs need {n_outputs - 1} empties, got {len(empties)}")
    return wrap


def _hardware_specs(devices: list[Hardware] | None) -> dict[str, Any]:
    """Hardware objects given to create_app become custom entries (their catalog-schema dicts)."""
    out: dict[str, Any] = {}
    for hw in devices or []:
        d = hw.to_dict()
        d = {k: v for k, v in d.items() if k != "ridge_flops_per_byte"}
        out[hw.id] = d
    return out


def create_app(devices: list[Hardware] | None = None, models: dict[str, dict[str, Any]] | None = None) -> Any:
    """The Dash app. `devices` (Hardware) and `models` (name -> config mapping) are added to the
    catalog's entries, as if typed in or uploaded."""
    try:
        import dash
        from dash import Input, Output, State, dcc, html, no_update
    except ImportError:  # pragma: no cover - checked by the CLI
        raise InputError("the web app needs Dash: pip install 'llmroofline[app]'") from None

    app = dash.Dash(__name__, title="llmroofline", update_title="", suppress_callback_exceptions=False)
    app.server.config["MAX_CONTENT_LENGTH"] = 16 * MAX_UPLOAD_BYTES  # the server refuses larger requests
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    app.layout = _layout(_hardware_specs(devices), dict(models or {}))
    empty_fig = placeholder_figure("fix the input on the left")

    # -- model upload and custom devices ---------------------------------------------------
    @app.callback(Output("upload-msg", "children"), Output("models-store", "data"), Output("model", "options"),
                  Output("model", "value"), Input("upload", "contents"), State("upload", "filename"),
                  State("models-store", "data"), prevent_initial_call=True)
    @_guard(4, (no_update, no_update, no_update))
    def on_upload(contents, filename, store):
        name, cfg, notes = parse_upload(contents, filename)
        store = dict(store or {})
        store[name] = cfg
        spec = resolve_model(UPLOADED + name, store)
        msg = html.Div([
            html.Div(f"Loaded {spec.id}: {spec.params_total / 1e9:.3g}B parameters, {spec.num_layers} layers, "
                     f"{spec.attention_kind}.", className="msg-ok"),
            *[html.Div(n, className="msg-note") for n in notes],
        ])
        return msg, store, model_options(store), UPLOADED + name

    @app.callback(Output("cd-msg", "children"), Output("devices-store", "data"),
                  Input("cd-add", "n_clicks"), *[State(f"cd-{k}", "value") for k, *_ in CUSTOM_FIELDS],
                  State("devices-store", "data"), prevent_initial_call=True)
    @_guard(2, (no_update,))
    def on_add_device(_n, *values):
        store = dict(values[-1] or {})
        spec = custom_device_spec(dict(zip([k for k, *_ in CUSTOM_FIELDS], values[:-1], strict=True)))
        store[spec["id"]] = spec
        return _message(f"Added {spec['id']}: it is now in every device list (as “{spec['id']} (custom)”).",
                        "ok"), store

    @app.callback(Output("rf-devices", "options"), Output("cmp-a", "options"), Output("cmp-b", "options"),
                  Output("est-device", "options"), Output("rec-devices", "options"),
                  Input("devices-store", "data"), prevent_initial_call=True)
    def on_devices(store):
        opts = device_options(store)
        return opts, opts, opts, opts, opts

    @app.callback(Output("rf-on", "options"), Output("rf-on", "value"), Output("rf-devices-list", "children"),
                  Input("rf-devices", "value"), State("rf-on", "value"))
    def on_roofline_devices(devs, current):
        devs = list(devs or [])
        opts = [{"label": _display_name(d), "value": d} for d in devs]
        return opts, current if current in devs else (devs[0] if devs else None), _chosen(devs)

    @app.callback(Output("rec-devices-list", "children"), Input("rec-devices", "value"))
    def on_recommend_devices(devs):
        return _chosen(list(devs or [])) or "all catalog devices"

    # -- tabs --------------------------------------------------------------------------------
    common = [Input("model", "value"), Input("models-store", "data"), Input("devices-store", "data")]

    @app.callback(Output("rf-msg", "children"), Output("rf-graph", "figure"), Output("rf-summary", "children"),
                  Output("rf-store", "data"), *common,
                  Input("rf-devices", "value"), Input("rf-precisions", "value"), Input("rf-phase", "value"),
                  Input("rf-batch", "value"), Input("rf-seq", "value"), Input("rf-weight", "value"),
                  Input("rf-tp", "value"), Input("rf-on", "value"))
    @_guard(4, (empty_fig, None, None))
    def on_roofline(model, models_, devices_, devs, precs, phase, batch, seq, wd, tp, on):
        devs = list(devs or [])
        v = roofline_view(resolve_model(model, models_), [resolve_device(d, devices_) for d in devs],
                          list(precs or []), phase=phase, batch=int(parse_int(batch, "batch")),
                          seq=int(parse_int(seq, "seq length")), weight_dtype=wd, tp=int(parse_int(tp, "tp")),
                          on=resolve_device(on, devices_) if on in devs else None)
        return None, v.figures[0], [html.P(s) for s in v.summary], {"csv": v.csv, "name": "roofline_operators.csv"}

    @app.callback(Output("cmp-msg", "children"), Output("cmp-graph", "figure"), Output("cmp-summary", "children"),
                  Output("cmp-store", "data"), *common,
                  Input("cmp-a", "value"), Input("cmp-b", "value"), Input("cmp-wa", "value"), Input("cmp-wb", "value"),
                  Input("cmp-tpa", "value"), Input("cmp-tpb", "value"), Input("cmp-method", "value"),
                  Input("cmp-metric", "value"), Input("cmp-batch", "value"), Input("cmp-seq", "value"))
    @_guard(4, (empty_fig, None, None))
    def on_compare(model, models_, devices_, a, b, wa, wb, tpa, tpb, method, metric, batch, seq):
        v = compare_view(resolve_model(model, models_), resolve_device(a, devices_), resolve_device(b, devices_),
                         batch=batch, seq=seq, method=method, metric=metric, weight_dtype_a=wa, weight_dtype_b=wb,
                         tp_a=int(parse_int(tpa, "A tp")), tp_b=int(parse_int(tpb, "B tp")))
        return (None, v.figures[0], [html.P(s, id=f"cmp-summary-{i}") for i, s in enumerate(v.summary)],
                {"csv": v.csv, "name": "compare_mesh.csv", "data": v.data})

    est_inputs = [Input("est-device", "value"), Input("est-tp", "value"), Input("est-pp", "value"),
                  Input("est-batch", "value"), Input("est-input", "value"), Input("est-output", "value"),
                  Input("est-weight", "value"), Input("est-kv", "value"), Input("est-mode", "value"),
                  Input("est-cal", "value")]

    @app.callback(Output("est-batch", "disabled"), Output("est-batch-note", "children"), Input("est-mode", "value"))
    def on_estimate_mode(mode):
        return batch_field_disabled(mode), ("max mode picks the batch: the largest that fits"
                                            if batch_field_disabled(mode) else "")

    def _est_args(device, tp, pp, batch, inp, outp, wd, kd, mode, cal) -> dict[str, Any]:
        if batch_field_disabled(mode):
            batch = "max"  # the field is greyed out: max mode chooses the batch
        return dict(batch=parse_int(batch, "batch", allow_max=True), input_len=parse_int(inp, "input tokens"),
                    output_len=parse_int(outp, "output tokens"), tp=int(parse_int(tp, "tp")),
                    pp=int(parse_int(pp, "pp")), weight_dtype=wd, kv_dtype=kd, mode=mode, calibration=cal)

    @app.callback(Output("est-msg", "children"), Output("est-kpis", "children"), Output("est-mem", "figure"),
                  Output("est-sweep", "figure"), Output("est-ops", "figure"), Output("est-table", "children"),
                  Output("est-notes", "children"), Output("est-store", "data"), *common, *est_inputs)
    @_guard(8, (None, placeholder_figure("", 200), placeholder_figure("", 340), empty_fig, None, None, None))
    def on_estimate(model, models_, devices_, device, *rest):
        m, hw = resolve_model(model, models_), resolve_device(device, devices_)
        v = estimate_view(m, hw, **_est_args(device, *rest))
        mem, ops, sweep = v.figures
        table = [html.Div("Per-operator breakdown", style={"fontWeight": 600, "margin": "2px 4px 6px"}),
                 _data_table(v.columns, v.rows, "est-ops-table")]
        return (None, _kpi_cards(v.summary), mem, sweep, ops, table, v.data["notes"],
                {"csv": v.csv, "name": "estimate_operators.csv"})

    @app.callback(Output("est-html", "data"), Input("est-html-btn", "n_clicks"),
                  State("model", "value"), State("models-store", "data"), State("devices-store", "data"),
                  *[State(i.component_id, i.component_property) for i in est_inputs], prevent_initial_call=True)
    def on_estimate_report(_n, model, models_, devices_, device, *rest):
        try:
            m, hw = resolve_model(model, models_), resolve_device(device, devices_)
            text = estimate_report_html(m, hw, **_est_args(device, *rest))
        except InputError:
            return no_update  # the tab already shows the message
        name = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in f"estimate_{m.id}_{hw.id}")
        return {"content": text, "filename": f"{name}.html", "type": "text/html"}

    @app.callback(Output("rec-msg", "children"), Output("rec-graph", "figure"), Output("rec-summary", "children"),
                  Output("rec-table", "children"), Output("rec-store", "data"), *common,
                  Input("rec-devices", "value"), Input("rec-input", "value"), Input("rec-output", "value"),
                  Input("rec-ttft", "value"), Input("rec-tpot", "value"), Input("tabs", "value"))
    @_guard(5, (empty_fig, None, None, None))
    def on_recommend(model, models_, devices_, devs, inp, outp, ttft, tpot, tab):
        if tab != "recommend":  # ranking the whole catalog is the slowest view: only when shown
            return no_update, no_update, no_update, no_update, no_update
        v = recommend_view(resolve_model(model, models_), input_len=int(parse_int(inp, "input tokens")),
                           output_len=int(parse_int(outp, "output tokens")),
                           devices=[resolve_device(d, devices_) for d in devs or []] or None,
                           ttft_slo=parse_optional_float(ttft, "TTFT SLO"),
                           tpot_slo=parse_optional_float(tpot, "TPOT SLO"))
        return (None, v.figures[0], [html.P(s) for s in v.summary], _data_table(v.columns, v.rows, "rec-ranking"),
                {"csv": v.csv, "name": "recommend_ranking.csv"})

    for prefix in ("rf", "cmp", "est", "rec"):
        @app.callback(Output(f"{prefix}-csv", "data"), Input(f"{prefix}-csv-btn", "n_clicks"),
                      State(f"{prefix}-store", "data"), prevent_initial_call=True)
        def on_csv(_n, store):
            if not store or not store.get("csv"):
                return no_update
            return dcc.send_string(store["csv"], store["name"])

    return app


def serve(host: str = "127.0.0.1", port: int = 8050, debug: bool = False, **kwargs: Any) -> None:
    """Start the app's development server (blocks until interrupted)."""
    app = create_app(**kwargs)
    app.run(host=host, port=port, debug=debug)
