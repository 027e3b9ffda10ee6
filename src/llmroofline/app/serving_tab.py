"""The Serving tab: a request-rate sweep, TTFT and TPOT percentiles against the latency targets,
and the disaggregated layout when prefill runs on its own devices."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware import Hardware
from ..model import ModelSpec
from ..report import rate_sweep_figure, table_csv
from .inputs import (
    RUNTIMES,
    parse_int,
    parse_optional_float,
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
    fit_figure,
    graph,
    guard,
    text,
)

SERVING_COLUMNS = ["rate", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_s", "tpot_p90_s", "e2e_p90_s",
                   "concurrency", "saturated"]
SERVING_HEADERS = ["req/s", "TTFT p50 s", "TTFT p90 s", "TTFT p99 s", "TPOT ms", "TPOT p90 ms", "E2E p90 s",
                   "in flight", "saturated"]
SWEEP_POINTS = 32


def serving_view(model: ModelSpec, hardware: Hardware, *, input_len: int = 1024, output_len: int = 256, tp: int = 1,
                 runtime: str = "generic", ttft_slo: float | None = None, tpot_slo: float | None = None,
                 max_rate: float | None = None, prefill_hardware: Hardware | None = None,
                 prefill_tp: int | None = None, prefill_count: int = 1) -> View:
    """`serving.serve` over a rate sweep up to capacity (or max_rate): TTFT and TPOT percentiles
    on two panels with the SLOs as horizontal lines; saturated rates are left blank."""
    from ..serving import serve

    extra: dict[str, Any] = {}
    if prefill_hardware is not None:
        extra = {"prefill_hardware": prefill_hardware, "prefill_tp": prefill_tp or tp, "prefill_count": prefill_count}
    common = dict(input_len=input_len, output_len=output_len, tp=tp, runtime=runtime, **extra)
    cap = serve(model, hardware, 1e-3, **common).capacity_req_s
    top = max_rate if max_rate else cap * 1.05
    rates = np.linspace(top / SWEEP_POINTS, top, SWEEP_POINTS)
    s = serve(model, hardware, rates, **common)
    d = s.to_dict()
    layout = (f"prefill {prefill_count}x {prefill_hardware.id} tp{prefill_tp or tp} → decode {hardware.id} tp{tp}"
              if prefill_hardware is not None else f"{hardware.id} tp{tp}")
    fig = rate_sweep_figure(s, title=f"{model.id} on {layout}: latency against request rate", ttft_slo=ttft_slo,
                            tpot_slo=tpot_slo)
    fig = fit_figure(fig, 480)
    rows = [[d["rate"][i], d["ttft_p50_s"][i], d["ttft_p90_s"][i], d["ttft_p99_s"][i],
             None if d["tpot_s"][i] is None else d["tpot_s"][i] * 1e3,
             None if d["tpot_p90_s"][i] is None else d["tpot_p90_s"][i] * 1e3, d["e2e_p90_s"][i],
             d["concurrency"][i], d["saturated"][i]] for i in range(len(rates))]
    meets = np.ones(len(rates), dtype=bool)
    if ttft_slo:
        meets &= np.nan_to_num(s.percentiles["ttft_p90_s"], nan=np.inf) <= ttft_slo
    if tpot_slo:
        meets &= np.nan_to_num(s.percentiles["tpot_p90_s"], nan=np.inf) <= tpot_slo
    best = float(rates[meets].max()) if meets.any() else 0.0
    summary = [f"Capacity {s.capacity_req_s:.3g} requests/s ({layout}, {input_len} in / {output_len} out); "
               "above it the queue grows without limit (blank points).",
               (f"Highest swept rate meeting the p90 targets: {best:.3g} requests/s." if (ttft_slo or tpot_slo)
                else "Type TTFT/TPOT targets to see the highest rate that meets them (p90).")]
    ok = ~s.saturated
    if s.interval and ok.any():
        i = int(np.flatnonzero(ok)[-1])
        t_lo, t_hi = (float(np.asarray(v)[i]) * 1e3 for v in s.interval["tpot_s"])
        summary.append(f"At {rates[i]:.3g} requests/s the mean TPOT is {s.tpot_s[i] * 1e3:.3g} ms "
                       f"({s.interval['level']:.0%} interval {t_lo:.3g} to {t_hi:.3g} ms).")
    if prefill_hardware is not None:
        summary.append(f"KV cache moves {d['kv_transfer_s'] * 1e3:.3g} ms per request over {d['kv_link']}; "
                       f"prefill capacity {d['prefill']['capacity_req_s']:.3g} req/s, decode "
                       f"{d['decode']['capacity_req_s']:.3g} req/s.")
    summary += list(s.warnings[:3])
    csv_rows = [[d[k][i] for k in SERVING_COLUMNS] for i in range(len(rates))]
    return View(figures=[fig], summary=summary, columns=SERVING_HEADERS, rows=rows,
                csv=table_csv(SERVING_COLUMNS, csv_rows), data=d)


LABEL, VALUE = "Serving", "serving"


def tab(c: Choices) -> Any:
    """The tab's controls (left) and results (right)."""
    from dash import html

    devices, dev = c.devices, c.dev
    return html.Div([
        html.Div([
            *field_("Device (decode)", dd("srv-device", devices, dev[0]), "device"),
            html.Div([html.Div(field_("tp", text("srv-tp", 1, "tp"))),
                      html.Div(field_("Serving stack", dd("srv-runtime", list(RUNTIMES), "generic"), "runtime"))],
                     className="row2"),
            html.Div([html.Div(field_("Input tokens", text("srv-input", 1024, "input"))),
                      html.Div(field_("Output tokens", text("srv-output", 256, "output")))], className="row2"),
            html.Div([html.Div(field_("TTFT SLO s", text("srv-ttft", "1", "slo"))),
                      html.Div(field_("TPOT SLO s", text("srv-tpot", "0.05", "slo")))], className="row2"),
            *field_("Highest rate req/s (empty: capacity)", text("srv-max", "", "slo")),
            *field_("Prefill device (empty: aggregated)", dd("srv-pdevice", devices, None), "device"),
            html.Div([html.Div(field_("Prefill tp", text("srv-ptp", 1, "tp"))),
                      html.Div(field_("Prefill instances", text("srv-pcount", 1, "tp")))], className="row2"),
            html.Div("Requests arrive as a Poisson stream. Lines: p50 (dotted), p90 (solid), p99 (dashed); "
                     "dash-dot: the targets; grey: capacity.", className="hint"),
        ], className="controls"),
        html.Div([html.Div(id="srv-msg"), html.Div(id="srv-summary", className="summary"),
                  html.Div(graph("srv-graph", 480), className="card"), html.Div(id="srv-table", className="card"),
                  buttons("srv")], className="results"),
    ], className="tab-body")


def register(app: Any, empty_fig: Any) -> None:
    """This tab's callbacks."""
    from dash import Input, Output, html, no_update

    common = common_inputs()

    @app.callback(Output("srv-msg", "children"), Output("srv-graph", "figure"), Output("srv-summary", "children"),
                  Output("srv-table", "children"), Output("srv-store", "data"), *common,
                  Input("srv-device", "value"), Input("srv-tp", "value"), Input("srv-runtime", "value"),
                  Input("srv-input", "value"), Input("srv-output", "value"), Input("srv-ttft", "value"),
                  Input("srv-tpot", "value"), Input("srv-max", "value"), Input("srv-pdevice", "value"),
                  Input("srv-ptp", "value"), Input("srv-pcount", "value"), Input("tabs", "value"))
    @guard(5, (empty_fig, None, None, None))
    def on_serving(model, models_, devices_, device, tp, runtime, inp, outp, ttft, tpot, top, pdev, ptp, pcount, tab):
        if tab != "serving":
            return no_update, no_update, no_update, no_update, no_update
        v = serving_view(resolve_model(model, models_), resolve_device(device, devices_),
                         input_len=int(parse_int(inp, "input tokens")), output_len=int(parse_int(outp, "output tokens")),
                         tp=int(parse_int(tp, "tp")), runtime=resolve_runtime(runtime),
                         ttft_slo=parse_optional_float(ttft, "TTFT SLO"), tpot_slo=parse_optional_float(tpot, "TPOT SLO"),
                         max_rate=parse_optional_float(top, "highest rate"),
                         prefill_hardware=resolve_device(pdev, devices_) if pdev else None,
                         prefill_tp=int(parse_int(ptp, "prefill tp")), prefill_count=int(parse_int(pcount, "prefill instances")))
        return (None, v.figures[0], [html.P(s) for s in v.summary], data_table(v.columns, v.rows, "srv-rows"),
                {"csv": v.csv, "name": "serving_sweep.csv"})
