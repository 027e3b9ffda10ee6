"""The Estimate tab: one workload's headline numbers, memory, batch sweep and operator breakdown."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..estimate import MODES, estimate
from ..hardware import Hardware
from ..model import ModelSpec
from ..report import BREAKDOWN_COLUMNS, breakdown_rows, estimate_sections, html_report, table_csv
from .inputs import (
    RUNTIMES,
    parse_images,
    parse_int,
    parse_optional_int,
    resolve_calibration,
    resolve_device,
    resolve_model,
    resolve_runtime,
)
from .layout import (
    Choices,
    View,
    buttons,
    common_inputs,
    data_table,
    dd,
    field_,
    graph,
    guard,
    kpi_cards,
    placeholder_figure,
    radio,
    text,
)


def estimate_view(model: ModelSpec, device: Hardware, *, batch: int | str = 1, input_len: int = 512,
                  output_len: int = 128, tp: int = 1, pp: int = 1, weight_dtype: Any = None,
                  kv_dtype: str = "fp16", mode: str = "static", calibration: str = "default",
                  runtime: str = "generic", ep: int | None = None, dp: int | None = None, images: int = 0) -> View:
    """One workload: headline numbers with prediction intervals, memory bar, per-operator breakdown,
    batch sweep. images: per request (vision-language models)."""
    r = estimate(model, device, batch=batch, input_len=input_len, output_len=output_len, tp=tp, pp=pp, ep=ep,
                 dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype, mode=mode, calibration=calibration, runtime=runtime,
                 images=images)
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


def batch_field_disabled(mode: str | None) -> bool:
    """The Batch field is greyed out in max mode, which chooses the batch itself."""
    return mode == "max"


LABEL, VALUE = "Estimate", "estimate"


def tab(c: Choices) -> Any:
    """The tab's controls (left) and results (right)."""
    from dash import dcc, html

    devices, dev, dtypes, wdtypes = c.devices, c.dev, c.dtypes, c.wdtypes
    return html.Div([
        html.Div([
            *field_("Device", dd("est-device", devices, dev[0]), "device"),
            html.Div([html.Div(field_("tp", text("est-tp", 1, "tp"))),
                      html.Div(field_("pp", text("est-pp", 1, "pp")))], className="row2"),
            html.Div([html.Div(field_("ep", text("est-ep", "", "ep"))),
                      html.Div(field_("dp", text("est-dp", "", "dp")))], className="row2"),
            *field_("Batch", text("est-batch", 8, "batch"), "batch"),
            html.Div(id="est-batch-note", className="hint"),
            html.Div([html.Div(field_("Input tokens", text("est-input", 2048, "input"))),
                      html.Div(field_("Output tokens", text("est-output", 256, "output")))], className="row2"),
            *field_("Images per request", text("est-images", 0, "images"), "images"),
            html.Div([html.Div(field_("Weights", dd("est-weight", wdtypes, "checkpoint"), "weight_dtype")),
                      html.Div(field_("KV cache", dd("est-kv", dtypes, "fp16"), "kv_dtype"))], className="row2"),
            *field_("Mode", radio("est-mode", list(MODES), "static"), "mode"),
            *field_("Calibration", radio("est-cal", ["default", "none"], "default"), "calibration"),
            *field_("Serving stack", dd("est-runtime", list(RUNTIMES), "generic"), "runtime"),
        ], className="controls"),
        html.Div([
            html.Div(id="est-msg"), html.Div(id="est-kpis"),
            html.Div(graph("est-mem", 200), className="card"),
            html.Div(graph("est-sweep", 340), className="card"),
            html.Div(graph("est-ops", 420), className="card"),
            buttons("est", [html.Button("Download HTML report", id="est-html-btn", className="btn"),
                            dcc.Download(id="est-html")]),
            html.Div(id="est-table", className="card"),
            html.Div(id="est-notes", className="hint"),
        ], className="results"),
    ], className="tab-body")


def register(app: Any, empty_fig: Any) -> None:
    """This tab's callbacks."""
    from dash import Input, Output, State, html, no_update

    common = common_inputs()

    est_inputs = [Input("est-device", "value"), Input("est-tp", "value"), Input("est-pp", "value"),
                  Input("est-batch", "value"), Input("est-input", "value"), Input("est-output", "value"),
                  Input("est-weight", "value"), Input("est-kv", "value"), Input("est-mode", "value"),
                  Input("est-cal", "value"), Input("est-runtime", "value"), Input("est-ep", "value"),
                  Input("est-dp", "value"), Input("est-images", "value")]

    def _est_args(device, tp, pp, batch, inp, outp, wd, kd, mode, cal, runtime, ep, dp, images) -> dict[str, Any]:
        if batch_field_disabled(mode):
            batch = "max"  # the field is greyed out: max mode chooses the batch
        return dict(batch=parse_int(batch, "batch", allow_max=True), input_len=parse_int(inp, "input tokens"),
                    output_len=parse_int(outp, "output tokens"), tp=int(parse_int(tp, "tp")),
                    pp=int(parse_int(pp, "pp")), weight_dtype=wd, kv_dtype=kd, mode=mode,
                    calibration=resolve_calibration(cal), runtime=resolve_runtime(runtime),
                    ep=parse_optional_int(ep, "ep"), dp=parse_optional_int(dp, "dp"), images=parse_images(images))

    @app.callback(Output("est-batch", "disabled"), Output("est-batch-note", "children"), Input("est-mode", "value"))
    def on_estimate_mode(mode):
        return batch_field_disabled(mode), ("max mode picks the batch: the largest that fits"
                                            if batch_field_disabled(mode) else "")

    @app.callback(Output("est-msg", "children"), Output("est-kpis", "children"), Output("est-mem", "figure"),
                  Output("est-sweep", "figure"), Output("est-ops", "figure"), Output("est-table", "children"),
                  Output("est-notes", "children"), Output("est-store", "data"), *common, *est_inputs)
    @guard(8, (None, placeholder_figure("", 200), placeholder_figure("", 340), empty_fig, None, None, None))
    def on_estimate(model, models_, devices_, device, *rest):
        m, hw = resolve_model(model, models_), resolve_device(device, devices_)
        v = estimate_view(m, hw, **_est_args(device, *rest))
        mem, ops, sweep = v.figures
        table = [html.Div("Per-operator breakdown", style={"fontWeight": 600, "margin": "2px 4px 6px"}),
                 data_table(v.columns, v.rows, "est-ops-table")]
        return (None, kpi_cards(v.summary), mem, sweep, ops, table, v.data["notes"],
                {"csv": v.csv, "name": "estimate_operators.csv"})

    @app.callback(Output("est-html", "data"), Input("est-html-btn", "n_clicks"),
                  State("model", "value"), State("models-store", "data"), State("devices-store", "data"),
                  *[State(i.component_id, i.component_property) for i in est_inputs], prevent_initial_call=True)
    def on_estimate_report(_n, model, models_, devices_, device, *rest):
        try:
            m, hw = resolve_model(model, models_), resolve_device(device, devices_)
            report = estimate_report_html(m, hw, **_est_args(device, *rest))
        except InputError:
            return no_update  # the tab already shows the message
        name = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in f"estimate_{m.id}_{hw.id}")
        return {"content": report, "filename": f"{name}.html", "type": "text/html"}
