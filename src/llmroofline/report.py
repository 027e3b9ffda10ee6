"""Self-contained HTML reports: inputs, interactive figures and tables in one file that opens offline.

`write_html_report` is the generic writer (plotly.js is inlined once, so the file needs no
network); `estimate_sections` and `write_estimate_report` build the report of one workload,
which the `estimate --html` command and the web app's Estimate tab share.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .efficiency import load_calibration
from .estimate import Estimate, estimate, layout_of, make_deployment
from .files import check_output, write_text
from .formatting import cell_text
from .operators import AttentionGroup
from .roofline import pass_overhead_s, time_ops

Table = tuple[str, Sequence[str], Sequence[Sequence[Any]]]

# Colours shared by the report and the web app, so a figure reads the same in both.
COLORS = {
    "weights": "#4C78A8", "kv_cache": "#F58518", "activations": "#54A24B", "capacity": "#222222",
    "compute": "#E45756", "memory": "#4C78A8", "comm": "#B279A2", "overhead": "#9D9D9D",
}
PNG_CONFIG: dict[str, Any] = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1f2328;padding:0 16px;font-size:14px;line-height:1.45}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#656d76;font-size:12px;margin-bottom:16px}
table{border-collapse:collapse;margin:6px 0 4px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f6f8fa} td:first-child,th:first-child{text-align:left}
table.inputs td,td.t{text-align:left}
.figure{border:1px solid #d0d7de;border-radius:6px;margin:10px 0;padding:4px}
.notes{white-space:pre-wrap;background:#f6f8fa;border-radius:6px;padding:10px 12px}
a.csv{font-size:12px}
"""


def table_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text of a table, numbers at full precision."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for r in rows:
        w.writerow(["" if v is None else (float(v) if isinstance(v, np.floating) else v) for v in r])
    return buf.getvalue()


def _table_html(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], index: int) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)

    def td(v: Any) -> str:  # text left, numbers right
        text = isinstance(v, str) and not v.lstrip("±-").replace(".", "", 1).replace("%", "").isdigit()
        return f'<td class="t">{html.escape(cell_text(v))}</td>' if text else f"<td>{html.escape(cell_text(v))}</td>"

    body = "".join("<tr>" + "".join(td(v) for v in r) + "</tr>" for r in rows)
    data = base64.b64encode(table_csv(columns, rows).encode()).decode()
    name = "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:60] or f"table{index}"
    link = f'<a class="csv" download="{name}.csv" href="data:text/csv;base64,{data}">download CSV</a>'
    return (f"<h2>{html.escape(title)}</h2>{link}\n<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def html_report(title: str, inputs: dict[str, Any], figures: Sequence[Any] = (), tables: Sequence[Table] = (),
                notes: str = "", *, lead: Table | None = None) -> str:
    """The report as one HTML document (plotly.js inlined; no network needed to open it).
    `lead`, if given, is a table shown right after the inputs (the headline numbers)."""
    from plotly.offline import get_plotlyjs

    from . import __version__

    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(cell_text(v))}</td></tr>"
                   for k, v in inputs.items())
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="meta">llmroofline {__version__} · {html.escape(when)} · a model prediction, not a measurement</div>',
        f'<h2>Inputs</h2><table class="inputs">{rows}</table>',
    ]
    if lead is not None:
        parts.append(_table_html(*lead, -1))
    for fig in figures:
        parts.append('<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False,
                                                            default_height="440px", config=PNG_CONFIG) + "</div>")
    for i, (t, cols, trs) in enumerate(tables):
        parts.append(_table_html(t, cols, trs, i))
    if notes:
        parts.append(f'<h2>Notes</h2><div class="notes">{html.escape(notes)}</div>')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(path: str | Path, title: str, inputs: dict[str, Any], figures: Sequence[Any] = (),
                      tables: Sequence[Table] = (), notes: str = "", *, lead: Table | None = None,
                      force: bool = True) -> Path:
    """Write a self-contained HTML report: `inputs` as a table (then `lead`, a table of headline
    numbers, if given), each plotly figure interactive (its modebar saves a PNG), each table
    `(title, columns, rows)` with a CSV download link, then `notes`. Returns the path written.
    The output rule of `files.check_output`: an existing file only with `force`, never through a
    symbolic link."""
    check_output(path, None, force=force, what="report")
    return write_text(path, html_report(title, inputs, figures, tables, notes, lead=lead), force=force)


# ---- the report of one workload ------------------------------------------------------------

def _first(x: Any) -> float:
    return float(np.ravel(np.asarray(x, dtype=float))[0])


def operator_breakdown(model: Any, hardware: Any, result: Estimate, calibration: Any = "default") -> list[dict[str, Any]]:
    """Per-operator time of one prefill pass (the batch's prompts) and one decode step (KV length
    input + output/2), summed over layers, per tensor-parallel device, with the estimate's
    efficiencies. One dict per operator and phase; times in seconds."""
    inp = result.inputs
    dep = make_deployment(model, hardware, **layout_of(inp), weight_dtype=result.weights,
                          kv_dtype=str(inp.get("kv_dtype", "fp16")))
    eff = load_calibration(calibration).for_device(dep.hardware, inp.get("runtime"))
    b, i, o = _first(result.batch) / dep.dp, _first(result.input_len), _first(result.output_len)  # one replica's
    rows: list[dict[str, Any]] = []
    for phase, group in (("prefill", AttentionGroup(b, i, 0)), ("decode", AttentionGroup(b, 1, i + o / 2 - 1))):
        ops = dep.ops([group])
        t = time_ops(ops, dep.hardware, eff)
        bound = t.bound()
        phase_rows: list[dict[str, Any]] = []
        for k, op in enumerate(ops):
            phase_rows.append({
                "phase": phase, "operator": op.name, "kind": op.kind, "count": int(op.count),
                "flops": float(op.flops) * op.count, "bytes": float(op.bytes) * op.count,
                "intensity": float(op.intensity), "bound": str(bound[k]), "time_s": float(t.time_s[k]) * op.count,
            })
        overhead = pass_overhead_s(dep.model.num_layers, eff, dep.model.num_moe_layers)
        if overhead > 0:
            phase_rows.append({"phase": phase, "operator": "overhead", "kind": "overhead", "count": 1, "flops": 0.0,
                               "bytes": 0.0, "intensity": float("nan"), "bound": "overhead", "time_s": overhead})
        total = float(sum(float(r["time_s"]) for r in phase_rows))
        for r in phase_rows:
            r["share"] = float(r["time_s"]) / total if total > 0 else float("nan")
        rows += phase_rows
    return rows


def _interval(result: Estimate, key: str, scale: float = 1.0) -> tuple[float, float] | None:
    """(low, high) of a metric's prediction interval at the first grid point, in display units."""
    if not result.interval or key not in result.interval:
        return None
    lo, hi = result.interval[key]
    return (_first(lo) * scale, _first(hi) * scale)


def interval_level(result: Estimate) -> float | None:
    return float(result.interval["level"]) if result.interval else None


def estimate_summary(result: Estimate) -> list[dict[str, Any]]:
    """The headline numbers: quantity, value, unit, prediction interval (None for the plain roofline)."""
    m = result.memory
    fits = bool(np.ravel(m.fits)[0])
    return [
        {"key": "ttft", "quantity": "TTFT", "value": _first(result.ttft_s) * 1e3, "unit": "ms",
         "interval": _interval(result, "ttft_s", 1e3)},
        {"key": "tpot", "quantity": "TPOT", "value": _first(result.tpot_s) * 1e3, "unit": "ms",
         "interval": _interval(result, "tpot_s", 1e3)},
        {"key": "e2e", "quantity": "end-to-end", "value": _first(result.e2e_s), "unit": "s",
         "interval": _interval(result, "e2e_s")},
        {"key": "throughput", "quantity": "throughput", "value": _first(result.throughput_tok_s), "unit": "tok/s",
         "interval": _interval(result, "throughput_tok_s")},
        {"key": "throughput_per_gpu", "quantity": "throughput per GPU", "value": _first(result.throughput_per_gpu_tok_s),
         "unit": "tok/s", "interval": _interval(result, "throughput_per_gpu_tok_s")},
        {"key": "energy", "quantity": "energy per token (power model)", "value": _first(result.energy_j_per_token),
         "unit": "J/token", "interval": None},
        {"key": "energy_tdp", "quantity": "energy per token at full TDP", "value": _first(result.energy_j_per_token_tdp),
         "unit": "J/token", "interval": None},
        {"key": "batch", "quantity": "batch", "value": _first(result.batch), "unit": "sequences", "interval": None},
        {"key": "memory", "quantity": "memory per GPU", "value": _first(m.total) / 1e9, "unit": f"of {m.capacity / 1e9:.0f} GB",
         "interval": None},
        {"key": "fits", "quantity": "fits in memory", "value": "yes" if fits else "NO", "unit": "", "interval": None},
    ]


def memory_figure(result: Estimate) -> Any:
    """Horizontal stacked bar: weights, KV cache and activations per GPU against capacity (GB)."""
    import plotly.graph_objects as go

    m = result.memory
    parts = (("weights", "weights", m.weights), ("kv_cache", "KV cache", m.kv_cache),
             ("activations", "activations", m.activations))
    fig = go.Figure()
    for key, label, v in parts:
        gb = _first(v) / 1e9
        fig.add_trace(go.Bar(y=["per GPU"], x=[gb], name=label, orientation="h", marker_color=COLORS[key],
                             hovertemplate=f"{label}: %{{x:.2f}} GB<extra></extra>"))
    cap = m.capacity / 1e9
    total = _first(m.total) / 1e9
    fits = total <= cap
    fig.add_vline(x=cap, line=dict(color=COLORS["capacity"], width=2, dash="dash"),
                  annotation_text=f"capacity {cap:.0f} GB", annotation_position="top")
    fig.update_layout(
        barmode="stack", height=190, margin=dict(l=60, r=20, t=50, b=30),
        title=dict(text=f"Memory per GPU: {total:.1f} of {cap:.0f} GB " + ("(fits)" if fits else "(does NOT fit)"),
                   font=dict(size=14, color=None if fits else "#cf222e")),
        xaxis=dict(title="GB", range=[0, max(cap, total) * 1.08]),
        legend=dict(orientation="h", y=-0.45, x=0, traceorder="normal"), template="plotly_white",
    )
    return fig


def operators_figure(rows: list[dict[str, Any]]) -> Any:
    """Time per operator (summed over layers) of a prefill pass and a decode step, coloured by bound."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("prefill pass (ms)", "decode step (ms)"))
    names = list(dict.fromkeys(r["operator"] for r in rows))
    seen: set[str] = set()
    for col, phase in ((1, "prefill"), (2, "decode")):
        ph = [r for r in rows if r["phase"] == phase]
        for bound in ("compute", "memory", "comm", "overhead"):
            sel = [r for r in ph if r["bound"] == bound]
            if not sel:
                continue
            fig.add_trace(go.Bar(
                y=[r["operator"] for r in sel], x=[r["time_s"] * 1e3 for r in sel], orientation="h",
                name=f"{bound}-bound" if bound != "overhead" else "fixed overhead", legendgroup=bound,
                showlegend=bound not in seen, marker_color=COLORS[bound],
                customdata=[[r["share"] * 100, r["intensity"], r["count"]] for r in sel],
                hovertemplate="%{y}: %{x:,.4~r} ms (%{customdata[0]:.1f}% of the pass)<br>"
                              "intensity %{customdata[1]:,.3~r} FLOP/B, ×%{customdata[2]} per pass<extra></extra>",
            ), row=1, col=col)
            seen.add(bound)
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], tickfont=dict(size=11))
    fig.update_layout(height=max(320, 18 * len(names) + 110), margin=dict(l=10, r=10, t=40, b=30),
                      legend=dict(orientation="h", y=-0.06, x=0, yanchor="top"), template="plotly_white",
                      barmode="stack")
    return fig


def batch_sweep_figure(model: Any, hardware: Any, result: Estimate, calibration: Any = "default",
                       points: int = 24) -> Any:
    """Throughput per GPU and TPOT against batch for the same workload, with the error band shaded
    where the calibration has one, the chosen batch marked and the batches that do not fit greyed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    inp = result.inputs
    b0 = _first(result.batch)
    batches = np.unique(np.round(np.geomspace(1, max(b0 * 4, 2048.0), points)))
    mode = result.mode if result.mode != "max" else "continuous"
    r = estimate(model, hardware, batch=batches, input_len=_first(result.input_len),
                 output_len=_first(result.output_len), **layout_of(inp), weight_dtype=result.weights,
                 kv_dtype=str(inp.get("kv_dtype", "fp16")), mode=mode, calibration=calibration,
                 runtime=inp.get("runtime"))
    thr = np.ravel(r.throughput_per_gpu_tok_s)
    tpot = np.ravel(r.tpot_s) * 1e3
    fits = np.ravel(r.memory.fits)
    # Show the batches that fit and a few beyond, not a long tail of impossible ones.
    last = int(np.flatnonzero(fits)[-1]) if fits.any() else 0
    keep = slice(0, max(last + 4, int(np.searchsorted(batches, b0)) + 2))
    batches, thr, tpot, fits = batches[keep], thr[keep], tpot[keep], fits[keep]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if r.interval and fits.any():
        lo, hi = (np.ravel(v)[keep][fits] for v in r.interval["throughput_per_gpu_tok_s"])
        bx = batches[fits]
        fig.add_trace(go.Scatter(x=np.r_[bx, bx[::-1]], y=np.r_[hi, lo[::-1]],
                                 fill="toself", fillcolor="rgba(76,120,168,0.18)", line=dict(width=0),
                                 name=f"{r.interval['level']:.0%} prediction interval", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=batches, y=np.where(fits, thr, np.nan), mode="lines+markers", name="throughput per GPU",
                             line=dict(color="#4C78A8"), hovertemplate="batch %{x}: %{y:,.0f} tok/s<extra></extra>"))
    fig.add_trace(go.Scatter(x=batches, y=np.where(fits, np.nan, thr), mode="markers", name="does not fit",
                             marker=dict(color="#bbbbbb", symbol="x"),
                             hovertemplate="batch %{x}: does not fit in memory<extra></extra>"))
    fig.add_trace(go.Scatter(x=batches, y=np.where(fits, tpot, np.nan), mode="lines", name="TPOT (right axis)",
                             line=dict(color="#F58518", dash="dot"),
                             hovertemplate="batch %{x}: TPOT %{y:,.3~r} ms<extra></extra>"), secondary_y=True)
    fig.add_vline(x=b0, line=dict(color="#222", width=1, dash="dash"))
    # On a log axis an annotation's x is log10 of the value (a shape's is the value itself).
    fig.add_annotation(x=math.log10(b0), y=1, yref="paper", yanchor="bottom", showarrow=False,
                       text=f"batch {b0:.0f}", font=dict(size=11))
    from .pareto_plot import _ticks_125

    fig.update_xaxes(type="log", title="batch (sequences)", **_ticks_125([float(b) for b in batches]))
    fig.update_yaxes(title="output tok/s per GPU", rangemode="tozero", secondary_y=False, tickformat=",~r")
    fig.update_yaxes(title="TPOT ms", rangemode="tozero", secondary_y=True, showgrid=False, tickformat=",.0f")
    fig.update_layout(title=dict(text=f"Batch sweep ({mode})", font=dict(size=14)), height=340,
                      margin=dict(l=60, r=60, t=50, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.25, x=0))
    return fig


@dataclass
class EstimateSections:
    """What the estimate report (and the web app's Estimate tab) shows."""

    title: str
    inputs: dict[str, Any]
    summary: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]
    figures: list[Any] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: str = ""


BREAKDOWN_COLUMNS = ["phase", "operator", "kind", "count", "GFLOPs", "MB moved", "FLOP/B", "bound", "time ms", "share %"]


def breakdown_rows(breakdown: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["phase"], r["operator"], r["kind"], r["count"], r["flops"] / 1e9, r["bytes"] / 1e6, r["intensity"],
             r["bound"], r["time_s"] * 1e3, r["share"] * 100] for r in breakdown]


def estimate_sections(model: Any, hardware: Any, result: Estimate, calibration: Any = "default") -> EstimateSections:
    """Figures, tables and notes of one estimate (`result` from `llmroofline.estimate`)."""
    from .hardware import load_hardware
    from .model import load_model

    m, hw = load_model(model), load_hardware(hardware)
    inp = result.inputs
    breakdown = operator_breakdown(m, hw, result, calibration)
    summary = estimate_summary(result)
    inputs = {
        "model": m.id, "device": hw.id, "GPUs": result.gpus, "tp": inp.get("tp", 1), "pp": inp.get("pp", 1),
        "mode": result.mode, "batch": _first(result.batch), "input tokens": _first(result.input_len),
        "output tokens": _first(result.output_len), "weight dtype": inp.get("weight_dtype"),
        "KV dtype": inp.get("kv_dtype"), "GEMM precision": inp.get("gemm_precision"),
        "calibration": "calibrated" if result.calibrated else "plain roofline (upper bound on speed)",
        "serving stack": inp.get("runtime"),
    }
    if "images" in inp and np.any(np.asarray(inp["images"]) > 0):  # a vision-language model given images
        inputs["images per request"] = _first(np.asarray(inp["images"], dtype=float))
        inputs["image tokens per request"] = _first(np.asarray(inp["image_tokens"], dtype=float))
    level = interval_level(result)
    summary_rows = [[s["quantity"], s["value"], s["unit"],
                     f"{cell_text(s['interval'][0])} to {cell_text(s['interval'][1])}" if s["interval"] else ""]
                    for s in summary]
    mem = result.memory
    mem_rows = [["weights", _first(mem.weights) / 1e9], ["KV cache", _first(mem.kv_cache) / 1e9],
                ["activations", _first(mem.activations) / 1e9], ["total", _first(mem.total) / 1e9],
                ["capacity", mem.capacity / 1e9]]
    tables: list[Table] = [
        ("Results", ["quantity", "value", "unit", f"{level:.0%} interval" if level else "interval"], summary_rows),
        ("Memory per GPU (GB)", ["part", "GB"], mem_rows),
        ("Per-operator breakdown", BREAKDOWN_COLUMNS, breakdown_rows(breakdown)),
    ]
    figures = [memory_figure(result), operators_figure(breakdown), batch_sweep_figure(m, hw, result, calibration)]
    notes = (
        "Operator times are for one prefill pass over the batch's prompts and one decode step at KV length "
        "input + output/2, summed over layers, per tensor-parallel device, with the same efficiencies as the "
        "estimate. " + (f"Intervals: the measured value should fall inside for {level:.0%} of workloads like the "
                        "public measurements, widened where the estimate is further from them (see the README)."
                        if level else "No interval: the plain roofline is an upper bound on speed, not an estimate.")
    )
    if not bool(np.ravel(mem.fits)[0]):
        notes = "This workload does NOT fit in memory: the times are not achievable.\n" + notes
    if result.warnings:
        notes += "\n" + "\n".join(f"Note: {w}." for w in result.warnings)
    inp = result.inputs
    title = (f"{m.id} on {result.gpus}× {hw.id} ({result.mode}, {inp.get('weight_dtype', 'fp16')} weights, "
             f"{inp.get('kv_dtype', 'fp16')} KV, {'calibrated' if result.calibrated else 'plain roofline'})")
    return EstimateSections(title, inputs, summary, breakdown, figures, tables, notes)


def write_estimate_report(path: str | Path, result: Estimate, *, model: Any, hardware: Any,
                          calibration: Any = "default", force: bool = True) -> Path:
    """The HTML report of one estimate (what `llmroofline estimate --html FILE` writes)."""
    s = estimate_sections(model, hardware, result, calibration)
    return write_html_report(path, f"Estimate: {s.title}", s.inputs, s.figures, s.tables[1:], s.notes,
                             lead=s.tables[0], force=force)


# ---- the report of requests at a rate (estimate --mode rate --html) -----------------------------

SWEEP_POINTS = 32


def rate_sweep_figure(s: Any, *, title: str, ttft_slo: float | None = None, tpot_slo: float | None = None,
                      marks: Sequence[float] = ()) -> Any:
    """TTFT and TPOT p50/p90/p99 against the request rate (two panels) of a `serving.Serving`
    sweep, the mean TPOT's interval as a band, the targets as horizontal lines, the capacity as a
    grey vertical line and `marks` (rates asked for) as dotted ones. Shared by the app's Serving
    tab and `estimate --mode rate --html`."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    d = s.to_dict()
    rates = np.asarray(s.rate, dtype=float)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (s)", "TPOT (ms)"))
    for name, dash_ in (("ttft_p50_s", "dot"), ("ttft_p90_s", "solid"), ("ttft_p99_s", "dash")):
        fig.add_trace(go.Scatter(x=rates, y=d[name], name=name.replace("_s", "").replace("_", " "), mode="lines",
                                 line=dict(dash=dash_, color="#1f77b4")), row=1, col=1)
    for name, dash_ in (("tpot_p50_s", "dot"), ("tpot_p90_s", "solid"), ("tpot_p99_s", "dash")):
        fig.add_trace(go.Scatter(x=rates, y=[None if v is None else v * 1e3 for v in d[name]],
                                 name=name.replace("_s", "").replace("_", " "), mode="lines",
                                 line=dict(dash=dash_, color="#d62728")), row=1, col=2)
    if s.interval:  # the calibrated engine's interval on the mean TPOT, as a band
        lo, hi = (np.asarray(v, dtype=float) * 1e3 for v in s.interval["tpot_s"])
        level = f"{s.interval['level']:.0%}"
        fig.add_trace(go.Scatter(x=rates, y=lo, mode="lines", line=dict(width=0), showlegend=False,
                                 hoverinfo="skip"), row=1, col=2)
        fig.add_trace(go.Scatter(x=rates, y=hi, mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor="rgba(214,39,40,0.15)", name=f"tpot mean, {level} interval"), row=1, col=2)
    if ttft_slo:
        fig.add_hline(y=ttft_slo, line=dict(color="black", dash="dashdot"), row=1, col=1,
                      annotation_text=f"TTFT SLO {ttft_slo:g} s")
    if tpot_slo:
        fig.add_hline(y=tpot_slo * 1e3, line=dict(color="black", dash="dashdot"), row=1, col=2,
                      annotation_text=f"TPOT SLO {tpot_slo * 1e3:g} ms")
    for col in (1, 2):
        fig.add_vline(x=s.capacity_req_s, line=dict(color="grey", dash="dot"), row=1, col=col)
        for r in marks:
            fig.add_vline(x=float(r), line=dict(color="#2ca02c", dash="dot", width=1), row=1, col=col)
        fig.update_xaxes(title_text="requests per second (Poisson)", row=1, col=col)
    fig.update_layout(title=title)
    return fig


def serving_layout(d: dict[str, Any]) -> str:
    """'H100 tp1' or 'prefill 2x H100 tp1 → decode H20 tp1' from a Serving dict."""
    if d.get("disaggregated"):
        p = d["prefill"]
        return f"prefill {p['count']}x {p['hardware']} tp{p['tp']} → decode {d['replicas']}x {d['hardware']} tp{d['tp']}"
    return f"{d['replicas']}x {d['hardware']} tp{d['tp']}"


def write_serving_report(path: str | Path, result: Any, *, model: Any, hardware: Any, serve_args: dict[str, Any],
                         ttft_slo: float | None = None, tpot_slo: float | None = None, force: bool = True) -> Path:
    """The HTML report of requests at a rate (`estimate --mode rate --html FILE`): the rates asked
    for as a table, and a sweep of 32 rates up to past the capacity (or the highest rate asked for)
    drawn as the app's Serving tab draws it, with the asked rates marked."""
    from .serving import serve

    d = result.to_dict()
    asked = np.asarray(result.rate, dtype=float)
    top = max(float(result.capacity_req_s) * 1.05, float(asked.max()))
    sweep = serve(model, hardware, np.linspace(top / SWEEP_POINTS, top, SWEEP_POINTS), **serve_args)
    title = f"{d['model']} on {serving_layout(d)} ({d['runtime']}): latency against request rate"
    fig = rate_sweep_figure(sweep, title=title, ttft_slo=ttft_slo, tpot_slo=tpot_slo, marks=asked.tolist())

    def ms(v: Any) -> Any:
        return None if v is None else v * 1e3

    rows = [[d["rate"][i], ms(d["ttft_s"][i]), ms(d["ttft_p50_s"][i]), ms(d["ttft_p90_s"][i]), ms(d["ttft_p99_s"][i]),
             ms(d["tpot_s"][i]), ms(d["tpot_p90_s"][i]), ms(d["tpot_p99_s"][i]), d["e2e_p90_s"][i], d["concurrency"][i],
             d["throughput_tok_s"][i], "SATURATED" if d["saturated"][i] else ""] for i in range(len(d["rate"]))]
    lead = ("At the rates asked for", ["req/s", "TTFT ms", "TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT ms",
                                       "TPOT p90 ms", "TPOT p99 ms", "E2E p90 s", "in flight", "tok/s", "state"], rows)
    sd = sweep.to_dict()
    sweep_rows = [[sd["rate"][i], sd["ttft_p50_s"][i], sd["ttft_p90_s"][i], sd["ttft_p99_s"][i], ms(sd["tpot_s"][i]),
                   ms(sd["tpot_p90_s"][i]), sd["e2e_p90_s"][i], sd["concurrency"][i], sd["saturated"][i]]
                  for i in range(len(sd["rate"]))]
    tables = [("Rate sweep", ["req/s", "TTFT p50 s", "TTFT p90 s", "TTFT p99 s", "TPOT ms", "TPOT p90 ms",
                              "E2E p90 s", "in flight", "saturated"], sweep_rows)]
    inputs = {"model": d["model"], "layout": serving_layout(d), "runtime": d["runtime"],
              "weights / KV": f"{d['weight_dtype']} / {d['kv_dtype']}",
              "input / output tokens (means)": f"{d['input_len']:g} / {d['output_len']:g}",
              "lengths": (d.get("lengths") or {}).get("label", "fixed"),
              "prefix hit": d["prefix_hit"], "capacity req/s": d["capacity_req_s"],
              "TTFT p90 target s": ttft_slo, "TPOT p90 target s": tpot_slo}
    notes = ("Requests arrive as a Poisson stream. Lines: p50 (dotted), p90 (solid), p99 (dashed); dash-dot: the "
             "targets; grey: capacity (above it the queue grows without limit and latencies are blank); green: "
             "the rates asked for. Method and error: docs/serving.md.")
    if result.warnings:
        notes += "\n" + "\n".join(f"Note: {w}." for w in result.warnings)
    return write_html_report(path, f"Serving: {title}", inputs, [fig], tables, notes, lead=lead, force=force)
