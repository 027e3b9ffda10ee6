"""The LLMRoofline article's pictures as interactive, self-contained HTML (plotly, imported on first use).

Same data as `plots.py`: the roofline chart (hover: device, precision, peak, bandwidth, ridge;
operators of a workload with their FLOPs/byte and share of time) and the A-over-B mesh (hover:
batch, length, both devices' throughput, whether each fits, the ratio). By default plotly.js is
written inline, so one file opens offline; `plotlyjs="directory"` writes one shared
`plotly.min.js` beside the files instead (what the demo does, to avoid a 4.6 MB copy per file).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .compare import Comparison
from .errors import InputError
from .files import open_output
from .plots import (
    METHOD_TITLES,
    METRIC_TITLES,
    PALETTE,
    TERA,
    WorkloadPoints,
    _fmt_decade,
    _fmt_ratio,
    _num,
    _x_label,
    cell_edges,
    check_output,
    check_plottable,
    mesh_masks,
    missing_roofs,
    ratio_levels,
    ratio_scale,
    roofs,
    workload_points,
)
from .roofline import attainable_flops

PLOTLY_SYMBOLS = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "x", "star")
MASK_SYMBOLS = {"a": "line-ne", "b": "line-nw", "neither": "x-thin"}


def _go():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as e:  # pragma: no cover - plotly is a dependency
        raise InputError("interactive figures need plotly: pip install plotly") from e
    return go, make_subplots


def write_html(fig, out, *, plotlyjs: str | bool = True, force: bool = True) -> Path:
    """Write a plotly figure as a full HTML page. plotlyjs: True (inline, opens offline),
    "directory" (a shared plotly.min.js beside the file) or "cdn"."""
    p = check_output(out, ("html", "htm"), force=force)
    try:
        with open_output(p, force=force) as f:  # never through a symbolic link
            fig.write_html(f, include_plotlyjs=plotlyjs, full_html=True,
                           config={"displaylogo": False, "toImageButtonOptions": {"format": "svg"}})
    except OSError as e:
        raise InputError(f"cannot write {str(p)!r}: {e.strerror or e}") from None
    return p


def _log_range(lo: float, hi: float) -> list[float]:
    return [math.log10(lo), math.log10(hi)]


# ---- roofline -------------------------------------------------------------------------------

# Spots for a ridge label around its point: (x shift, y shift in pixels, x anchor, y anchor); the
# first is below and right, under the device's own flat roof and off its slope.
_RIDGE_SPOTS = ((6, -6, "left", "top"), (-6, 6, "right", "bottom"), (6, 6, "left", "bottom"),
                (-6, -6, "right", "top"), (6, -24, "left", "top"), (-6, 24, "right", "bottom"))


def _ridge_label_spots(rs, xmin: float, xmax: float, ymin: float, ymax: float, width: int = 1000,
                       height: int = 440) -> list[tuple[int, int, str, str]]:
    """A spot per ridge label such that the labels' boxes (estimated in pixels of a plot area
    width × height on the figure's log axes) overlap each other as little as possible."""
    px = width / math.log10(xmax / xmin)
    py = height / math.log10(ymax / ymin)
    def centre(r) -> tuple[float, float]:
        return math.log10(r.ridge / xmin) * px, math.log10(r.peak / TERA / ymin) * py

    placed = [(x - 7, y - 7, x + 7, y + 7) for x, y in map(centre, rs)]  # the ridge markers
    chosen = []
    for r in rs:
        cx, cy = centre(r)
        w, h = 6.6 * len(f"{r.ridge:.0f} FLOP/B") + 4, 16.0
        best = None
        for dx, dy, xa, ya in _RIDGE_SPOTS:
            x0 = cx + dx - (w if xa == "right" else 0)
            y0 = cy + dy - (h if ya == "top" else 0)
            box = (x0, y0, x0 + w, y0 + h)
            overlap = sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0])) * max(0.0, min(box[3], b[3]) - max(box[1], b[1]))
                          for b in placed)
            outside = box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height
            score = overlap + 1e6 * outside
            if best is None or score < best[0]:
                best = (score, (dx, dy, xa, ya), box)
            if score == 0:
                break
        assert best is not None
        placed.append(best[2])
        chosen.append(best[1])
    return chosen


def _decade_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Ticks at the powers of ten, written as the static figures write them (0.1, 1, 10, 1k, 10k)."""
    ks = range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)
    vals = [10.0 ** k for k in ks]
    return {"tickvals": vals, "ticktext": [_fmt_decade(v) for v in vals]}


def roofline_figure(devices, precisions=("fp16",), workload: dict[str, Any] | WorkloadPoints | None = None):
    """Interactive roofline: one line per roof, ridge points, optional workload overlay."""
    go, _ = _go()
    rs = roofs(devices, precisions, skip_missing=True)
    gaps = missing_roofs(devices, precisions)
    wp = None
    if workload is not None:
        wp = workload if isinstance(workload, WorkloadPoints) else workload_points(**workload)
    xs = [r.ridge for r in rs] + ([*wp.intensity, wp.whole_intensity] if wp else [])
    xmin = 10 ** math.floor(math.log10(max(min(min(xs) / 4, 1.0), 1e-3)))
    xmax = 10 ** math.ceil(math.log10(max(xs) * 8))
    x = np.geomspace(xmin, xmax, 200)
    fig = go.Figure()
    order = list(dict.fromkeys(d for r in rs for d in r.devices))
    colour = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(order)}
    symbol = {d: PLOTLY_SYMBOLS[i % len(PLOTLY_SYMBOLS)] for i, d in enumerate(order)}
    dash = {"fp16": "solid", "bf16": "solid", "fp8": "dash", "int8": "dashdot", "fp4": "dot", "int4": "dot",
            "tf32": "longdashdot", "fp32": "longdash"}
    for k, r in enumerate(rs):
        c = colour[r.devices[0]]
        name = f"{r.label} {r.precision}"
        # A roof drawn later on the same slope would hide this one's slope: show it as a wide band under it.
        if any(q.bandwidth == r.bandwidth and q.devices[0] != r.devices[0] for q in rs[k + 1:]):
            xs_ = x[x <= r.ridge]
            fig.add_trace(go.Scatter(x=xs_, y=xs_ * r.bandwidth / TERA, mode="lines", legendgroup=name,
                                     showlegend=False, hoverinfo="skip", opacity=0.45,
                                     line={"color": c, "width": 10}))
        fig.add_trace(go.Scatter(
            x=x, y=attainable_flops(x, r.peak, r.bandwidth) / TERA, mode="lines", name=name, legendgroup=name,
            line={"color": c, "width": 3, "dash": dash.get(r.precision, "solid")},
            hovertemplate=f"{name}<br>intensity %{{x:,.3~r}} FLOP/B<br>attainable %{{y:,.4~r}} TFLOP/s<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=[r.ridge], y=[r.peak / TERA], mode="markers", legendgroup=name, showlegend=False,
            marker={"color": c, "size": 11, "symbol": symbol[r.devices[0]], "line": {"color": "black", "width": 1}},
            hovertemplate=(f"<b>{name}</b><br>peak {_num(r.peak / TERA)} TFLOP/s<br>bandwidth "
                           f"{_num(r.bandwidth / 1e9)} GB/s<br>ridge {r.ridge:.1f} FLOP/B<extra></extra>")))
    if wp is not None:
        share = np.clip(wp.time_share, 0, 1)
        fig.add_trace(go.Scatter(
            x=wp.intensity, y=wp.attainable / TERA, mode="markers", name="operators (method 2)",
            marker={"size": 8 + 40 * np.sqrt(share), "color": ["white" if b == "compute" else "#BBBBBB" for b in wp.bound],
                    "line": {"color": colour.get(wp.device, "black"), "width": 2}},
            customdata=np.stack([wp.names, wp.bound, share * 100], axis=-1),
            hovertemplate=("<b>%{customdata[0]}</b><br>%{x:,.3~r} FLOP/B, %{y:,.4~r} TFLOP/s<br>%{customdata[1]}-bound, "
                           "%{customdata[2]:.1f}% of the pass<extra></extra>")))
        fig.add_trace(go.Scatter(
            x=[wp.whole_intensity], y=[wp.whole_attainable / TERA], mode="markers", name="whole model (method 1)",
            marker={"size": 20, "symbol": "star", "color": "#F0E442", "line": {"color": "black", "width": 1.5}},
            hovertemplate="<b>whole model</b><br>%{x:,.3~r} FLOP/B, %{y:,.4~r} TFLOP/s<extra></extra>"))
    title = f"Roofline of {', '.join(order)} ({', '.join(dict.fromkeys(r.precision for r in rs))})"
    if wp is not None:
        title += (f"<br><sub>{wp.model} {wp.phase}, batch {wp.batch}, "
                  f"{'KV length' if wp.phase == 'decode' else 'prompt'} {wp.seq} on {wp.device}, "
                  f"{wp.weight_dtype} weights</sub>")
    notes = [*gaps, *([wp.fit_note] if wp is not None and wp.fit_note else [])]
    if notes:
        fig.add_annotation(x=0.01, y=0.99, xref="paper", yref="paper", xanchor="left", yanchor="top",
                           showarrow=False, align="left", font={"color": "#B00000", "size": 12},
                           text="<br>".join(n[0].upper() + n[1:] for n in notes), bgcolor="rgba(255,255,255,0.9)",
                           bordercolor="#B00000", borderwidth=1)
    ymin = min(r.bandwidth for r in rs) * xmin / TERA
    ymax = max(r.peak for r in rs) / TERA * 3
    for r, (dx, dy, xa, ya) in zip(rs, _ridge_label_spots(rs, xmin, xmax, ymin, ymax), strict=True):
        # On a white box beside the ridge point, where it covers no other label.
        fig.add_annotation(x=math.log10(r.ridge), y=math.log10(r.peak / TERA), text=f"{r.ridge:.0f} FLOP/B",
                           showarrow=False, xanchor=xa, yanchor=ya, xshift=dx, yshift=dy,
                           font={"color": colour[r.devices[0]], "size": 11}, bgcolor="rgba(255,255,255,0.85)",
                           borderpad=1)
    fig.update_layout(
        title=title, template="plotly_white", height=620, hovermode="closest",
        xaxis={"type": "log", "title": "arithmetic intensity (FLOPs per byte of memory traffic)",
               "range": _log_range(xmin, xmax), **_decade_ticks(xmin, xmax)},
        yaxis={"type": "log", "title": "attainable performance (TFLOP/s, dense)", "range": _log_range(ymin, ymax),
               **_decade_ticks(ymin, ymax)},
        legend={"x": 1.01, "y": 1.0, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.85)"},
    )
    return fig


def roofline_html(devices, precisions=("fp16",), workload=None, out=None, *, plotlyjs: str | bool = True,
                  force: bool = True):
    """`roofline_figure`, written to `out` (.html) when given. Returns the plotly figure."""
    if out is not None:
        check_output(out, ("html", "htm"), force=force)
    fig = roofline_figure(devices, precisions, workload)
    if out is not None:
        write_html(fig, out, plotlyjs=plotlyjs)
    return fig


# ---- comparison mesh ------------------------------------------------------------------------

def _mesh_traces(go, c: Comparison, vmax: float, showscale: bool) -> list:
    r = np.asarray(c.ratio, dtype=float)
    lv = math.log2(vmax)
    ticks = ratio_levels(1 / vmax, vmax)
    a, b = c.labels.get("a", c.a), c.labels.get("b", c.b)
    B, S = np.meshgrid(c.batch, c.seq, indexing="ij")
    # Numbers as one float array (sent compactly); the fits words as the cell text.
    custom = np.stack([np.asarray(x, dtype=float) for x in (B, S, c.perf_a, c.perf_b, r)], axis=-1)
    masks = mesh_masks(c)
    m = masks
    words = np.select([m["a"], m["b"], m["neither"]],
                      [f"does NOT fit on {a}", f"does NOT fit on {b}", "fits on neither device"], "fits on both")
    heat = go.Heatmap(
        x=cell_edges(c.seq), y=cell_edges(c.batch), z=np.log2(r), zmin=-lv, zmax=lv, zmid=0,
        colorscale="PuOr", showscale=showscale, customdata=custom, text=words,
        colorbar={"title": {"text": f"{c.a} / {c.b}<br>(> 1: {c.a} faster)", "side": "right"},
                  "tickvals": [math.log2(v) for v in ticks], "ticktext": [_fmt_ratio(v) for v in ticks]},
        hovertemplate=(f"batch %{{customdata[0]:,.0f}}<br>length %{{customdata[1]:,.0f}}<br>"
                       f"{a}: %{{customdata[2]:,.4~r}} {c.unit}<br>"
                       f"{b}: %{{customdata[3]:,.4~r}} {c.unit}<br>"
                       f"<b>ratio %{{customdata[4]:.3f}}</b><br>memory: %{{text}}<extra></extra>"),
    )
    traces = [heat]
    # Wash out what only one device can hold (half) and what neither can (nearly grey); hover passes through.
    for key, wash in (("a", "rgba(255,255,255,0.45)"), ("b", "rgba(255,255,255,0.45)"),
                      ("neither", "rgba(237,237,237,0.85)")):
        if masks[key].any():
            traces.append(go.Heatmap(x=cell_edges(c.seq), y=cell_edges(c.batch),
                                     z=np.where(masks[key], 1.0, np.nan), zmin=0, zmax=1,
                                     colorscale=[[0, wash], [1, wash]], showscale=False, hoverinfo="skip"))
    runnable = ~masks["neither"]
    if r.shape[0] > 1 and r.shape[1] > 1 and np.nanmin(r[runnable], initial=np.inf) < 1 < np.nanmax(r[runnable], initial=0):
        traces.append(go.Contour(  # not across cells that fit on neither device
            x=c.seq, y=c.batch, z=np.where(runnable, np.log2(r), np.nan), showscale=False, hoverinfo="skip",
            name="ratio = 1",
            contours={"start": 0, "end": 0, "size": 1, "coloring": "none", "showlabels": False},
            line={"color": "black", "width": 3}))
    # Hatching by marker symbols at the cell centres; on big grids on a coarser lattice (every
    # step-th cell), so the symbols stay apart. The hover text names every cell's case anyway.
    step = max(1, math.ceil(max(r.shape) / 48))
    size = int(np.clip(420 / max(r.shape) * step, 4, 14))
    lattice = np.zeros(r.shape, dtype=bool)
    lattice[::step, ::step] = True
    names = {"a": f"does not fit on {a}", "b": f"does not fit on {b}", "neither": "fits on neither device"}
    for key, mask in masks.items():
        if mask.any():
            i, j = np.nonzero(mask & lattice) if (mask & lattice).any() else np.nonzero(mask)
            traces.append(go.Scatter(
                x=c.seq[j], y=c.batch[i], mode="markers", name=f"{names[key]} ({int(mask.sum())} cells)",
                legendgroup=key, hoverinfo="skip",
                marker={"symbol": MASK_SYMBOLS[key], "size": size, "line": {"color": "rgba(40,40,40,0.7)", "width": 1}}))
    return traces


def _count_axis(values, title: str) -> dict[str, Any]:
    e = cell_edges(values)
    lo, hi = e[0], e[-1]
    ticks = [2.0 ** k for k in range(math.ceil(math.log2(lo)), math.floor(math.log2(hi)) + 1)]
    step = max(1, math.ceil(len(ticks) / 9))
    ticks = ticks[::step]
    text = [f"{int(t) >> 10}k" if t >= 1024 else f"{t:g}" for t in ticks]
    return {"type": "log", "title": title, "range": _log_range(lo, hi), "tickvals": ticks, "ticktext": text}


def comparison_figure(comparison: Comparison, *, allow_unfit: bool = False):
    """Interactive mesh of one comparison."""
    go, _ = _go()
    c = comparison
    if not allow_unfit:
        check_plottable(c)
    vmax = ratio_scale(c)
    fig = go.Figure(_mesh_traces(go, c, vmax, True))
    a, b = c.labels.get("a", c.a), c.labels.get("b", c.b)
    fig.update_layout(
        title=f"{c.model}: {a} / {b}<br><sub>{METHOD_TITLES.get(c.method, c.method)}, "
              f"{METRIC_TITLES.get(c.metric, c.metric)} ({c.unit})</sub>",
        template="plotly_white", height=640, xaxis=_count_axis(c.seq, _x_label(c)),
        yaxis=_count_axis(c.batch, "batch size (sequences)"),
        legend={"orientation": "h", "y": -0.18, "x": 0.5, "xanchor": "center"})
    return fig


def comparison_pair_figure(ops: Comparison, whole: Comparison, *, allow_unfit: bool = False):
    """Both methods side by side on one colour scale: method 2 left, method 1 right."""
    go, make_subplots = _go()
    if not allow_unfit:
        check_plottable(ops)
    vmax = ratio_scale(ops, whole)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[METHOD_TITLES.get(c.method, c.method) for c in (ops, whole)])
    for col, c in enumerate((ops, whole), start=1):
        for t in _mesh_traces(go, c, vmax, showscale=col == 2):
            if col == 2 and isinstance(t, (go.Scatter, go.Contour)):
                t.showlegend = False
            fig.add_trace(t, row=1, col=col)
        fig.update_xaxes(_count_axis(c.seq, _x_label(c)), row=1, col=col)
        fig.update_yaxes(_count_axis(c.batch, "batch size (sequences)" if col == 1 else ""), row=1, col=col)
    a, b = ops.labels.get("a", ops.a), ops.labels.get("b", ops.b)
    fig.update_layout(
        title=f"{ops.model}: {a} / {b}<br><sub>{METRIC_TITLES.get(ops.metric, ops.metric)} ({ops.unit})</sub>",
        template="plotly_white", height=640, legend={"orientation": "h", "y": -0.18, "x": 0.5, "xanchor": "center"})
    return fig


def comparison_html(comparison: Comparison, out=None, *, plotlyjs: str | bool = True, force: bool = True,
                    allow_unfit: bool = False):
    """`comparison_figure`, written to `out` (.html) when given."""
    if out is not None:
        check_output(out, ("html", "htm"), force=force)
    fig = comparison_figure(comparison, allow_unfit=allow_unfit)
    if out is not None:
        write_html(fig, out, plotlyjs=plotlyjs)
    return fig


def comparison_pair_html(ops: Comparison, whole: Comparison, out=None, *, plotlyjs: str | bool = True,
                         force: bool = True, allow_unfit: bool = False):
    """`comparison_pair_figure`, written to `out` (.html) when given."""
    if out is not None:
        check_output(out, ("html", "htm"), force=force)
    fig = comparison_pair_figure(ops, whole, allow_unfit=allow_unfit)
    if out is not None:
        write_html(fig, out, plotlyjs=plotlyjs)
    return fig
