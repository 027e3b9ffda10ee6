"""Figures of the throughput-latency trade-off (`recommend.pareto`) and the recommend report.

x: tokens/s per user (1 / TPOT), y: output tokens/s per GPU, both higher-is-better; each
device's frontier is drawn as a line over its cloud of configurations and the frontier across
devices as a thick dashed line. matplotlib (Agg canvas, no display needed) and plotly are
imported only when a figure is drawn.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import files
from .errors import InputError

if TYPE_CHECKING:
    from .recommend import Choice, Pareto, Recommendation, Workload

X_LABEL = "tokens/s per user (1 / TPOT)"
Y_LABEL = "throughput per GPU (output tokens/s)"
X_KEY, Y_KEY = "tokens_per_s_per_user", "throughput_per_gpu_tok_s"


def _title(w: Workload) -> str:
    slo = ", ".join(s for s in (f"TTFT ≤ {w.ttft_slo:g} s" if w.ttft_slo else "",
                                f"TPOT ≤ {w.tpot_slo * 1e3:g} ms" if w.tpot_slo else "") if s)
    return (f"{w.model.id}: {w.input_len:,} in / {w.output_len:,} out, {w.weight_dtype} weights, {w.kv_dtype} KV, "
            f"{'calibrated' if w.calibrated else 'plain roofline (an upper bound)'}" + (f" ({slo})" if slo else ""))


def _xy(choices: list[Choice]) -> tuple[list[float], list[float]]:
    return [getattr(c, X_KEY) for c in choices], [getattr(c, Y_KEY) for c in choices]


def pareto_png(result: Pareto, path: str | Path, *, dpi: int = 150, force: bool = True) -> Path:
    """Draw the Pareto chart to a PNG file (log-log axes). Returns the path."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p = files.check_output(path, ("png",), force=force)
    fig = Figure(figsize=(10, 6.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["tab10" if len(result.points) <= 10 else "tab20"]
    for i, (dev, pts) in enumerate(result.points.items()):
        color = cmap(i % cmap.N)
        ax.scatter(pts.tokens_per_s_per_user, pts.throughput_per_gpu_tok_s, s=7, alpha=0.25, color=color,
                   linewidths=0)
        fx, fy = _xy(result.frontier(dev))
        ax.plot(fx, fy, "-o", ms=3, lw=1.2, color=color, label=dev)
    ox, oy = _xy(result.overall_frontier())
    if ox:
        ax.plot(ox, oy, "--", lw=3, color="black", alpha=0.8, label="frontier, all devices", zorder=5)
    if result.workload.tpot_slo:
        ax.axvline(1 / result.workload.tpot_slo, color="red", lw=1, ls=":", label="TPOT SLO")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    for axis, values in ((ax.xaxis, [v for p in result.points.values() for v in p.tokens_per_s_per_user]),
                         (ax.yaxis, [v for p in result.points.values() for v in p.throughput_per_gpu_tok_s])):
        ticks = _ticks_125([v for v in values if v > 0])
        if ticks:  # 20, 50, 100, 1k: the same words as every other figure, no 2×10^1
            axis.set_major_locator(FixedLocator(ticks["tickvals"]))
            axis.set_ticklabels(ticks["ticktext"])
            axis.set_minor_locator(NullLocator())
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.set_title(_title(result.workload), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    n = len(result.points) + 1
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 if n <= 25 else 2, frameon=False)
    try:
        with files.open_output(p, force=force, binary=True) as f:  # never through a symbolic link
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}") from None
    return p


def pareto_figure(result: Pareto) -> Any:
    """A plotly Figure of the Pareto chart: one trace per device (cloud and frontier) plus the
    frontier across devices; hover shows the configuration."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    palette = qualitative.Dark24
    fig = go.Figure()
    hover = ("%{customdata[0]}<br>tp %{customdata[1]}, pp %{customdata[2]}, ep %{customdata[3]}, batch "
             "%{customdata[4]}<br>TTFT %{customdata[5]:,.3~r} s, TPOT %{customdata[6]:,.3~r} ms<br>"
             "%{x:,.3~r} tok/s per user, %{y:,.4~r} tok/s per GPU<br>$%{customdata[7]:,.3~r} per M tokens, %{customdata[8]:,.3~r} J per token"
             "<extra></extra>")

    def custom(choices: list[Choice]) -> list[list[Any]]:
        return [[c.device, c.tp, c.pp, c.ep, c.batch, c.ttft_s, c.tpot_s * 1e3, c.cost_per_million_tokens,
                 c.energy_j_per_token] for c in choices]

    for i, (dev, pts) in enumerate(result.points.items()):
        color = palette[i % len(palette)]
        cloud = [pts.choice(j) for j in range(len(pts))]
        fig.add_trace(go.Scatter(x=pts.tokens_per_s_per_user, y=pts.throughput_per_gpu_tok_s, mode="markers",
                                 marker=dict(size=4, color=color, opacity=0.3), name=f"{dev} (all)",
                                 legendgroup=dev, showlegend=False, customdata=custom(cloud), hovertemplate=hover))
        front = result.frontier(dev)
        fx, fy = _xy(front)
        fig.add_trace(go.Scatter(x=fx, y=fy, mode="lines+markers", line=dict(color=color, width=2),
                                 marker=dict(size=6, color=color), name=dev, legendgroup=dev,
                                 customdata=custom(front), hovertemplate=hover))
    overall = result.overall_frontier()
    ox, oy = _xy(overall)
    fig.add_trace(go.Scatter(x=ox, y=oy, mode="lines", line=dict(color="black", width=4, dash="dash"),
                             name="frontier, all devices", customdata=custom(overall), hovertemplate=hover))
    if result.workload.tpot_slo:
        # A shape's x on a log axis is the value itself, an annotation's is its log10: an annotation at
        # the value (as add_vline's annotation_text puts it) would stretch the axis to 10^value.
        x_slo = 1 / result.workload.tpot_slo
        fig.add_vline(x=x_slo, line=dict(color="red", dash="dot"))
        fig.add_annotation(x=math.log10(x_slo), y=1, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"TPOT SLO ({x_slo:g} tok/s per user)", font=dict(color="red", size=11))
    fig.update_layout(title=_title(result.workload), xaxis_title=X_LABEL, yaxis_title=Y_LABEL, template="plotly_white",
                      height=650, legend=dict(font=dict(size=10)))
    xs = [v for t in fig.data for v in (t.x if t.x is not None else ()) if v and v > 0]
    ys = [v for t in fig.data for v in (t.y if t.y is not None else ()) if v and v > 0]
    fig.update_xaxes(type="log", **_ticks_125(xs))
    fig.update_yaxes(type="log", **_ticks_125(ys))
    return fig


def _ticks_125(values: list[float]) -> dict[str, Any]:
    """Ticks at 1, 2, 5 × 10^k over the values, written 20, 500, 1k, 2k: one format on both axes."""
    if not values:
        return {}
    from .plots import _fmt_decade

    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    ticks = [m * 10.0 ** k for k in range(lo, hi + 1) for m in (1, 2, 5)
             if min(values) / 1.5 <= m * 10.0 ** k <= max(values) * 1.5]
    return {"tickvals": ticks, "ticktext": [_fmt_decade(t) for t in ticks]} if len(ticks) >= 2 else {}


def pareto_html(result: Pareto) -> str:
    """A self-contained HTML page (plotly.js inline) of the Pareto chart."""
    return pareto_figure(result).to_html(full_html=True, include_plotlyjs=True)


_RANK_COLUMNS = (("device", "device", "{}"), ("GPUs", "gpus", "{}"), ("tp", "tp", "{}"), ("pp", "pp", "{}"),
                 ("ep", "ep", "{}"), ("batch", "batch", "{}"), ("TTFT s", "ttft_s", "{:.3g}"),
                 ("TPOT ms", "tpot_ms", "{:.3g}"), ("tok/s per user", "tokens_per_s_per_user", "{:.3g}"),
                 ("tok/s per GPU", "throughput_per_gpu_tok_s", "{:,.0f}"),
                 ("$ per GPU-hour", "price_per_gpu_hour", "{:,.2f}"),
                 ("$ per M tokens", "cost_per_million_tokens", "{:.3f}"), ("J per token", "energy_j_per_token", "{:.3g}"),
                 ("J per token at TDP", "energy_j_per_token_tdp", "{:.3g}"))


def _choice_row(c: Choice) -> str:
    d = {**c.to_dict(), "tpot_ms": c.tpot_s * 1e3}
    return "".join(f"<td>{html.escape(fmt.format(d[key]))}</td>" for _, key, fmt in _RANK_COLUMNS)


def recommendation_html(rec: Recommendation, *, note: str = "") -> str:
    """A self-contained HTML report: the ranking, the exclusions and the Pareto chart."""
    w = rec.workload
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in _RANK_COLUMNS)
    ranking = "".join(f"<tr><td>{i}</td>{_choice_row(c)}</tr>" for i, c in enumerate(rec.ranking, 1))
    excluded = "".join(f"<tr><td>{html.escape(e.device)}</td><td>{html.escape(e.reason)}</td></tr>"
                       for e in rec.excluded)
    excluded_section = ("<h2>Excluded devices</h2>\n<table><tr><th>device</th><th>reason</th></tr>"
                        f"{excluded}</table>" if excluded else "")
    from .recommend import objective_text

    notes = "".join(f"<p><b>Note:</b> {html.escape(n)}.</p>" for n in ([note] if note else []))
    front = rec.pareto()
    figure = pareto_figure(front).to_html(full_html=False, include_plotlyjs=True)
    none = ("<p><b>No configuration meets the SLOs on any device.</b> The closest ones are listed under "
            "excluded devices.</p>" if not rec.ranking else "")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>llmroofline recommend: {html.escape(w.model.id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:nth-child(2),th:nth-child(2){{text-align:left}}</style>
</head><body>
<h1>Cheapest configuration per device</h1>
<p>{html.escape(_title(w))}; {html.escape(w.gpu_limit)}; continuous batching.
Cost per million output tokens = price per GPU-hour × GPUs / (3600 × tokens/s) × 10<sup>6</sup>;
J per token from the power model (idle, compute-bound and memory-bound board power over the
predicted operator times); J per token at TDP is the ceiling at full board power.</p>
<p>{html.escape(objective_text(w)[0].upper() + objective_text(w)[1:])}.</p>
{notes}{none}<table><tr><th>#</th>{head}</tr>{ranking}</table>
{excluded_section}
<h2>Throughput per GPU against speed per user</h2>
{figure}
</body></html>
"""


def write_text(path: str | Path, text: str, *, force: bool = True) -> Path:
    """Write a text file under the output rule of `files.check_output` (an existing file only
    with `force`, never through a symbolic link); OS errors become InputError."""
    return files.write_text(path, text, force=force)


# ---- the request-rate view (fleet sizing) ----------------------------------------------------------

RATE_POINTS = 240


def _rate_view_data(fleet: dict[str, Any]) -> dict[str, Any]:
    """What both renderings of the request-rate view draw (see rate_view_png)."""
    import numpy as np

    from .serving.fleet import devices_needed

    out_len = float(fleet["output_len"])
    lines = []
    for c in fleet.get("curves", []):
        line: dict[str, Any] = {"label": c["label"] + (" (disaggregated)" if c["disaggregated"] else "")}
        if not c["disaggregated"]:
            side = c["sides"][0]
            r = np.asarray(c["rate"], dtype=float)
            ttft = np.array([np.inf if v is None else v for v in c["ttft_p90_s"]])
            tpot = np.array([np.inf if v is None else v for v in c["tpot_p90_s"]])
            lim = side["limit_req_s"]
            keep = np.isfinite(ttft) & np.isfinite(tpot) & (r >= lim / 100)
            # The sweep's rates, the highest within the targets and the capacity, in order: solid up
            # to the limit, dotted from it to the capacity.
            r = np.unique(np.concatenate([r[keep], [lim, c["capacity_req_s"]]]))
            ok = r <= lim * (1 + 1e-12)
            cost = side["gpus"] * side["usd_per_gpu_hour"] / (r * out_len * 3600) * 1e6
            line.update(rate=r, cost=cost, ok=ok, beyond=~ok | np.isclose(r, lim), limit=lim,
                        limit_cost=side["gpus"] * side["usd_per_gpu_hour"] / (lim * out_len * 3600) * 1e6)
        lines.append(line)
    lows = [s["limit_req_s"] for c in fleet.get("curves", []) for s in c["sides"]]
    top = float(fleet["rate"]) * 3
    bottom = min([float(fleet["rate"]) / 30] + [v / 4 for v in lows])
    total = np.geomspace(bottom, top, RATE_POINTS)
    for line, c in zip(lines, fleet.get("curves", []), strict=True):
        line["total"], line["devices"] = total, devices_needed(c, total)
    return {"lines": lines, "rate": float(fleet["rate"])}


def _rate_view_title(fleet: dict[str, Any], model: str) -> str:
    slo = ", ".join(([f"TTFT p90 ≤ {fleet['ttft_slo']:g} s"] if fleet.get("ttft_slo") else [])
                    + ([f"TPOT p90 ≤ {fleet['tpot_slo'] * 1e3:g} ms"] if fleet.get("tpot_slo") else []))
    return f"{model}: {fleet['input_len']:,} in / {fleet['output_len']:,} out, {slo}"


def rate_view_png(fleet: dict[str, Any], path: str | Path, *, model: str, dpi: int = 150, force: bool = True) -> Path:
    """The request-rate view as a PNG: left, one replica's cost per million output tokens against
    its request rate (solid where its p90 TTFT and TPOT meet the targets, the SLO-feasible part;
    dotted beyond, up to capacity; a dot at the highest feasible rate); right, the devices a fleet
    needs against the total request rate (whole instances, each within the targets), with the
    rate asked for marked. `fleet` is `size_fleet(..., curves=True)`."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p = files.check_output(path, ("png",), force=force)
    data = _rate_view_data(fleet)
    fig = Figure(figsize=(13, 5.5))
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    cmap = matplotlib.colormaps["tab10" if len(data["lines"]) <= 10 else "tab20"]
    for i, line in enumerate(data["lines"]):
        color = cmap(i % cmap.N)
        if "rate" in line:
            ok = line["ok"]
            left.plot(line["rate"][ok], line["cost"][ok], "-", lw=2, color=color, label=line["label"])
            left.plot(line["rate"][line["beyond"]], line["cost"][line["beyond"]], ":", lw=1.5, color=color)
            left.plot([line["limit"]], [line["limit_cost"]], "o", ms=6, color=color)
        right.step(line["total"], line["devices"], where="post", lw=1.5, color=color, label=line["label"],
                   ls="-" if "rate" in line else "--")
    right.axvline(data["rate"], color="red", lw=1, ls=":", label=f"{data['rate']:g} req/s asked for")
    for ax, x, y, t in ((left, "request rate of one replica (req/s)", "$ per million output tokens",
                         "One replica: solid = within the targets (SLO-feasible), dotted = misses them"),
                        (right, "total request rate (req/s)", "devices needed",
                         "Fleet: devices needed to stay within the targets")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(t, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    for ax in (left, right):
        xs = np.concatenate([np.asarray(ln.get_xdata(), dtype=float).ravel() for ln in ax.get_lines()])
        ys = np.concatenate([np.asarray(ln.get_ydata(), dtype=float).ravel() for ln in ax.get_lines()])
        for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
            ticks = _ticks_125([float(v) for v in values if np.isfinite(v) and v > 0])
            if ticks:
                axis.set_major_locator(FixedLocator(ticks["tickvals"]))
                axis.set_ticklabels(ticks["ticktext"])
                axis.set_minor_locator(NullLocator())
                axis.set_minor_formatter(NullFormatter())
    left.legend(fontsize=7, frameon=False)
    right.legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(_rate_view_title(fleet, model), fontsize=10)
    try:
        with files.open_output(p, force=force, binary=True) as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}") from None
    return p


def rate_view_figure(fleet: dict[str, Any], *, model: str) -> Any:
    """The request-rate view as a plotly Figure (two panels, as rate_view_png draws them)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    data = _rate_view_data(fleet)
    palette = qualitative.Dark24
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "One replica: $ per M output tokens (solid: within the targets)", "Fleet: devices needed"))
    for i, line in enumerate(data["lines"]):
        color = palette[i % len(palette)]
        if "rate" in line:
            ok = line["ok"]
            fig.add_trace(go.Scatter(x=line["rate"][ok], y=line["cost"][ok], mode="lines", name=line["label"],
                                     legendgroup=line["label"], line=dict(color=color, width=3),
                                     hovertemplate="%{x:.3~r} req/s: $%{y:.3~r} per M tokens<extra></extra>"),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=line["rate"][line["beyond"]], y=line["cost"][line["beyond"]], mode="lines",
                                     showlegend=False,
                                     legendgroup=line["label"], line=dict(color=color, width=1, dash="dot"),
                                     hovertemplate="%{x:.3~r} req/s: misses the targets<extra></extra>"), row=1, col=1)
            fig.add_trace(go.Scatter(x=[line["limit"]], y=[line["limit_cost"]], mode="markers", showlegend=False,
                                     legendgroup=line["label"], marker=dict(color=color, size=9),
                                     hovertemplate="highest rate within the targets: %{x:.3~r} req/s<extra></extra>"),
                          row=1, col=1)
        fig.add_trace(go.Scatter(x=line["total"], y=line["devices"], mode="lines", line_shape="hv",
                                 name=line["label"], legendgroup=line["label"], showlegend="rate" not in line,
                                 line=dict(color=color, dash="solid" if "rate" in line else "dash"),
                                 hovertemplate="%{x:.3~r} req/s: %{y} devices<extra></extra>"), row=1, col=2)
    fig.add_vline(x=data["rate"], line=dict(color="red", dash="dot"), row=1, col=2)
    import numpy as np

    for col, (xt, yt) in ((1, ("request rate of one replica (req/s)", "$ per million output tokens")),
                          (2, ("total request rate (req/s)", "devices needed"))):
        traces = [t for t in fig.data if t.xaxis == ("x" if col == 1 else f"x{col}")]
        xs = [float(v) for t in traces for v in np.ravel(t.x) if np.isfinite(v) and v > 0]
        ys = [float(v) for t in traces for v in np.ravel(t.y) if np.isfinite(v) and v > 0]
        fig.update_xaxes(type="log", title_text=xt, row=1, col=col, **_ticks_125(xs))
        fig.update_yaxes(type="log", title_text=yt, row=1, col=col, **_ticks_125(ys))
    fig.update_layout(title=_rate_view_title(fleet, model), template="plotly_white", height=560,
                      legend=dict(font=dict(size=10)))
    return fig


def fleet_html(fleet: dict[str, Any], *, model: str, note: str = "") -> str:
    """A self-contained HTML report of `recommend --rate`: the fleets, cheapest first, and the
    request-rate view."""
    from .report import html_report
    from .serving.fleet import layout_text

    rows = []
    for e in fleet["ranking"]:
        rows.append([e["device"], layout_text(e), e["devices_needed"], e["ttft_p90_s"], e["tpot_p90_s"] * 1e3,
                     e["cost_per_hour"], e["cost_per_million_tokens"]])
    tables = [("Fleets, cheapest first", ["device", "layout", "devices", "TTFT p90 s", "TPOT p90 ms", "$/h",
                                          "$/M tok"], rows)]
    if fleet["excluded"]:
        tables.append(("Excluded", ["device", "reason"], [[e["device"], e["reason"]] for e in fleet["excluded"]]))
    inputs = {"model": model, "input / output tokens": f"{fleet['input_len']} / {fleet['output_len']}",
              "request rate": f"{fleet['rate']:g} req/s (Poisson)", "TTFT p90 target": fleet.get("ttft_slo"),
              "TPOT p90 target": fleet.get("tpot_slo")}
    notes = ("Each replica is swept in request rate up to its capacity; the highest rate whose p90 TTFT and TPOT "
             "meet the targets sets the replicas (devices) needed at any total rate. Disaggregated layouts size "
             "prefill and decode instances apart (dashed staircases); the table's entries are re-checked as whole "
             "fleets at the rate asked for, which can add an instance." + (f"\nNote: {note}" if note else ""))
    return html_report(f"Fleet sizing: {model} at {fleet['rate']:g} req/s", inputs,
                       [rate_view_figure(fleet, model=model)], tables, notes)
