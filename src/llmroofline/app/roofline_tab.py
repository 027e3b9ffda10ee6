"""The Roofline tab: the devices' rooflines with a workload's operators placed on one of them."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..hardware import Hardware
from ..model import ModelSpec
from ..report import table_csv
from .inputs import parse_int, resolve_device, resolve_model
from .layout import (
    Choices,
    View,
    buttons,
    chosen,
    common_inputs,
    dd,
    display_name,
    field_,
    fit_figure,
    graph,
    guard,
    radio,
    text,
)

ROOFLINE_COLUMNS = ["device", "operator", "FLOP/B", "attainable TFLOP/s", "share of pass %", "bound"]


def roofline_view(model: ModelSpec, devices: list[Hardware], precisions: list[str], *, phase: str = "decode",
                  batch: int = 1, seq: int = 1024, weight_dtype: Any = None, tp: int = 1,
                  on: Hardware | None = None) -> View:
    """Rooflines of the devices at the chosen precisions (`interactive.roofline_figure`) with the
    workload's operators placed on device `on` (default: the first). A device that lacks a
    precision is left out at that precision only, with a note."""
    from ..interactive import roofline_figure
    from ..plots import missing_roofs, workload_points

    if not devices:
        raise InputError("roofline: pick at least one device")
    if not precisions:
        raise InputError("roofline: pick at least one precision")
    kept = list(precisions)
    notes = [n[0].upper() + n[1:] + "." for n in missing_roofs(devices, kept)]
    target = on if on is not None else devices[0]
    wp = workload_points(model, target, phase=phase, batch=batch, seq=seq, tp=tp, weight_dtype=weight_dtype)
    fig = fit_figure(roofline_figure(devices, kept, workload=wp), 560)
    rows = [[wp.device, n, float(i), float(a) / 1e12, float(s) * 100, b]
            for n, i, a, s, b in zip(wp.names, wp.intensity, wp.attainable, wp.time_share, wp.bound, strict=True)]
    rows.append([wp.device, "whole model (method 1)", wp.whole_intensity, wp.whole_attainable / 1e12, 100.0, ""])
    summary = [f"Operators of {wp.model} ({phase}, batch {batch}, {'KV length' if phase == 'decode' else 'prompt'} "
               f"{seq}, tp {wp.tp}) on {wp.device}: marker size is the share of the pass time (plain roofline); "
               f"the star is the whole model (method 1)."] + notes
    return View(figures=[fig], summary=summary, columns=ROOFLINE_COLUMNS, rows=rows,
                csv=table_csv(ROOFLINE_COLUMNS, rows), data={"workload": wp.to_dict()})


LABEL, VALUE = "Roofline", "roofline"


def tab(c: Choices) -> Any:
    """The tab's controls (left) and results (right)."""
    from dash import dcc, html

    devices, dev, dtypes, wdtypes = c.devices, c.dev, c.dtypes, c.wdtypes
    return html.Div([
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
            html.Div([html.Div(field_("Weights", dd("rf-weight", wdtypes, "checkpoint"), "weight_dtype")),
                      html.Div(field_("tp", text("rf-tp", 1, "tp")))], className="row2"),
            html.Div("Operators sit on their device's roofline (plain roofline); hover for names and shares.",
                     className="hint"),
        ], className="controls"),
        html.Div([html.Div(id="rf-msg"), html.Div(graph("rf-graph", 560), className="card"),
                  html.Div(id="rf-summary", className="summary"), buttons("rf")], className="results"),
    ], className="tab-body")


def register(app: Any, empty_fig: Any) -> None:
    """This tab's callbacks."""
    from dash import Input, Output, State, html

    common = common_inputs()

    @app.callback(Output("rf-on", "options"), Output("rf-on", "value"), Output("rf-devices-list", "children"),
                  Input("rf-devices", "value"), State("rf-on", "value"))
    def on_roofline_devices(devs, current):
        devs = list(devs or [])
        opts = [{"label": display_name(d), "value": d} for d in devs]
        return opts, current if current in devs else (devs[0] if devs else None), chosen(devs)

    @app.callback(Output("rf-msg", "children"), Output("rf-graph", "figure"), Output("rf-summary", "children"),
                  Output("rf-store", "data"), *common,
                  Input("rf-devices", "value"), Input("rf-precisions", "value"), Input("rf-phase", "value"),
                  Input("rf-batch", "value"), Input("rf-seq", "value"), Input("rf-weight", "value"),
                  Input("rf-tp", "value"), Input("rf-on", "value"))
    @guard(4, (empty_fig, None, None))
    def on_roofline(model, models_, devices_, devs, precs, phase, batch, seq, wd, tp, on):
        devs = list(devs or [])
        v = roofline_view(resolve_model(model, models_), [resolve_device(d, devices_) for d in devs],
                          list(precs or []), phase=phase, batch=int(parse_int(batch, "batch")),
                          seq=int(parse_int(seq, "seq length")), weight_dtype=wd, tp=int(parse_int(tp, "tp")),
                          on=resolve_device(on, devices_) if on in devs else None)
        return None, v.figures[0], [html.P(s) for s in v.summary], {"csv": v.csv, "name": "roofline_operators.csv"}
