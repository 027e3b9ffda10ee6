"""The Compare tab: the A-over-B mesh over batch and sequence length."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compare import METHODS, METRICS, compare, parse_axis
from ..errors import InputError
from ..hardware import Hardware
from ..model import ModelSpec
from ..report import table_csv
from .inputs import parse_int, resolve_device, resolve_model
from .layout import (
    Choices,
    View,
    buttons,
    common_inputs,
    dd,
    field_,
    fit_figure,
    graph,
    guard,
    radio,
    text,
)

COMPARE_COLUMNS = ["batch", "seq", "perf_a", "perf_b", "ratio_a_over_b", "fits_a", "fits_b"]


MAX_APP_CELLS = 128 * 128  # cells of one comparison mesh per request


def compare_view(model: ModelSpec, a: Hardware, b: Hardware, *, batch: str = "1:1024", seq: str = "128:131072",
                 method: str = "whole", metric: str = "decode", weight_dtype_a: Any = None,
                 weight_dtype_b: Any = None, tp_a: int = 1, tp_b: int = 1) -> View:
    """The A-over-B mesh of `llmroofline.compare` as `interactive.comparison_figure` draws it
    (hover: both devices' numbers and whether each fits; marked cells: out of memory)."""
    from ..interactive import comparison_figure
    from ..plots import mesh_summary

    bs, ss = parse_axis(batch, "batch", upper=1e7), parse_axis(seq, "seq")
    if bs.size * ss.size > MAX_APP_CELLS:  # one request's work stays bounded: a shared server stays responsive
        raise InputError(f"the grid has {bs.size} x {ss.size} = {bs.size * ss.size:,} cells; the app draws at most "
                         f"{MAX_APP_CELLS:,} per request (use fewer points, LO:HI:N; the command line takes more)")
    c = compare(model, a, b, batch=bs, seq=ss, method=method, metric=metric, tp_a=tp_a, tp_b=tp_b,
                weight_dtype_a=weight_dtype_a, weight_dtype_b=weight_dtype_b)
    fig = fit_figure(comparison_figure(c), 520)
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


LABEL, VALUE = "Compare", "compare"


def tab(c: Choices) -> Any:
    """The tab's controls (left) and results (right)."""
    from dash import html

    devices, dev, wdtypes = c.devices, c.dev, c.wdtypes
    return html.Div([
        html.Div([
            *field_("Device A", dd("cmp-a", devices, dev[0]), "device"),
            *field_("Device B", dd("cmp-b", devices, dev[2] or dev[1]), "device"),
            html.Div([html.Div(field_("A weights", dd("cmp-wa", wdtypes, "checkpoint"), "weight_dtype")),
                      html.Div(field_("B weights", dd("cmp-wb", wdtypes, "checkpoint"), "weight_dtype"))], className="row2"),
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
                  html.Div(graph("cmp-graph", 540), className="card"), buttons("cmp")], className="results"),
    ], className="tab-body")


def register(app: Any, empty_fig: Any) -> None:
    """This tab's callbacks."""
    from dash import Input, Output, html

    common = common_inputs()

    @app.callback(Output("cmp-msg", "children"), Output("cmp-graph", "figure"), Output("cmp-summary", "children"),
                  Output("cmp-store", "data"), *common,
                  Input("cmp-a", "value"), Input("cmp-b", "value"), Input("cmp-wa", "value"), Input("cmp-wb", "value"),
                  Input("cmp-tpa", "value"), Input("cmp-tpb", "value"), Input("cmp-method", "value"),
                  Input("cmp-metric", "value"), Input("cmp-batch", "value"), Input("cmp-seq", "value"))
    @guard(4, (empty_fig, None, None))
    def on_compare(model, models_, devices_, a, b, wa, wb, tpa, tpb, method, metric, batch, seq):
        v = compare_view(resolve_model(model, models_), resolve_device(a, devices_), resolve_device(b, devices_),
                         batch=batch, seq=seq, method=method, metric=metric, weight_dtype_a=wa, weight_dtype_b=wb,
                         tp_a=int(parse_int(tpa, "A tp")), tp_b=int(parse_int(tpb, "B tp")))
        return (None, v.figures[0], [html.P(s, id=f"cmp-summary-{i}") for i, s in enumerate(v.summary)],
                {"csv": v.csv, "name": "compare_mesh.csv", "data": v.data})
