"""The Recommend tab: devices ranked for a workload, and the throughput-latency Pareto chart."""

from __future__ import annotations

from typing import Any

from ..hardware import Hardware
from ..model import ModelSpec
from ..report import table_csv
from .inputs import (
    RUNTIMES,
    parse_images,
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
    chosen,
    common_inputs,
    data_table,
    dd,
    field_,
    fit_figure,
    graph,
    guard,
    text,
)

RECOMMEND_COLUMNS = ["device", "gpus", "tp", "pp", "ep", "dp", "batch", "ttft_s", "tpot_s", "throughput_per_gpu_tok_s",
                     "tokens_per_s_per_user", "price_per_gpu_hour", "cost_per_million_tokens", "energy_j_per_token",
                     "energy_j_per_token_tdp"]
RECOMMEND_HEADERS = ["device", "GPUs", "tp", "pp", "ep", "dp", "batch", "TTFT s", "TPOT ms", "tok/s per GPU",
                     "tok/s per user", "$ per GPU-hour", "$ per M tokens", "J per token", "J per token at TDP"]


def recommend_view(model: ModelSpec, *, input_len: int = 1024, output_len: int = 256,
                   devices: list[Hardware] | None = None, ttft_slo: float | None = None,
                   tpot_slo: float | None = None, runtime: str = "generic", images: int = 0) -> View:
    """Devices ranked by `recommend.recommend` (cheapest per token first) and the throughput-latency
    Pareto chart of the same search (`pareto_plot.pareto_figure`). images: per request
    (vision-language models)."""
    from ..pareto_plot import pareto_figure
    from ..recommend import interactive_default, objective_text, recommend

    ttft_slo, tpot_slo, note = interactive_default(ttft_slo, tpot_slo)  # none given: an interactive service
    rec = recommend(model, input_len, output_len, devices=devices or None, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                    runtime=runtime, images=images)
    rows = [[c.to_dict().get(k) for k in RECOMMEND_COLUMNS] for c in rec.ranking]
    tpot = RECOMMEND_COLUMNS.index("tpot_s")
    shown = [[*r[:tpot], c.tpot_s * 1e3, *r[tpot + 1:]] for r, c in zip(rows, rec.ranking, strict=True)]  # TPOT in ms
    fig = fit_figure(pareto_figure(rec.pareto()), 520)
    fig.update_layout(legend=dict(font=dict(size=10), x=1.01, y=1, xanchor="left"))
    n_ex = len(rec.excluded)
    summary = [f"{len(rec.ranking)} device(s) ranked, cheapest per million output tokens first"
               + (f"; {n_ex} excluded:" if n_ex else ".")]
    summary += [f"{e.device}: {e.reason}" for e in rec.excluded[:8]]
    if n_ex > 8:
        summary.append(f"… and {n_ex - 8} more.")
    text = objective_text(rec.workload)
    summary.append(text[0].upper() + text[1:] + ".")
    summary.append("J per token: board energy from a power model (idle, compute-bound and memory-bound power over "
                   "the predicted operator times; docs/energy.md); J per token at TDP is the ceiling at full board "
                   "power.")
    if note:  # the app has no 'none': an empty field means the interactive default
        summary.append("No latency target given: ranked for an interactive service, TPOT ≤ 50 ms (20 tokens/s per "
                       "user). Type a TPOT SLO to change it.")
    return View(figures=[fig], summary=summary, columns=RECOMMEND_HEADERS, rows=shown,
                csv=table_csv(RECOMMEND_COLUMNS, rows), data=rec.to_dict())


LABEL, VALUE = "Recommend", "recommend"


def tab(c: Choices) -> Any:
    """The tab's controls (left) and results (right)."""
    from dash import dcc, html

    devices, dev = c.devices, c.dev
    return html.Div([
        html.Div([
            *field_("Devices (empty: the whole catalog)", dcc.Dropdown(id="rec-devices", options=devices, value=[d for d in dev if d],
                                                                       multi=True), "device"),
            html.Div(id="rec-devices-list", className="chosen"),
            html.Div([html.Div(field_("Input tokens", text("rec-input", 1024, "input"))),
                      html.Div(field_("Output tokens", text("rec-output", 256, "output")))], className="row2"),
            *field_("Images per request", text("rec-images", 0, "images"), "images"),
            html.Div([html.Div(field_("TTFT SLO s", text("rec-ttft", "", "slo"))),
                      html.Div(field_("TPOT SLO s", text("rec-tpot", "", "slo")))], className="row2"),
            *field_("Serving stack", dd("rec-runtime", list(RUNTIMES), "generic"), "runtime"),
        ], className="controls"),
        html.Div([html.Div(id="rec-msg"), html.Div(id="rec-summary", className="summary"),
                  html.Div(id="rec-table", className="card"), buttons("rec"),
                  html.Div(graph("rec-graph", 520), className="card")], className="results"),
    ], className="tab-body")


def register(app: Any, empty_fig: Any) -> None:
    """This tab's callbacks."""
    from dash import Input, Output, html, no_update

    common = common_inputs()

    @app.callback(Output("rec-devices-list", "children"), Input("rec-devices", "value"))
    def on_recommend_devices(devs):
        return chosen(list(devs or [])) or "all catalog devices"

    @app.callback(Output("rec-msg", "children"), Output("rec-graph", "figure"), Output("rec-summary", "children"),
                  Output("rec-table", "children"), Output("rec-store", "data"), *common,
                  Input("rec-devices", "value"), Input("rec-input", "value"), Input("rec-output", "value"),
                  Input("rec-ttft", "value"), Input("rec-tpot", "value"), Input("rec-runtime", "value"),
                  Input("rec-images", "value"), Input("tabs", "value"))
    @guard(5, (empty_fig, None, None, None))
    def on_recommend(model, models_, devices_, devs, inp, outp, ttft, tpot, runtime, images, tab):
        if tab != "recommend":  # ranking the whole catalog is the slowest view: only when shown
            return no_update, no_update, no_update, no_update, no_update
        v = recommend_view(resolve_model(model, models_), input_len=int(parse_int(inp, "input tokens")),
                           output_len=int(parse_int(outp, "output tokens")),
                           devices=[resolve_device(d, devices_) for d in devs or []] or None,
                           ttft_slo=parse_optional_float(ttft, "TTFT SLO"),
                           tpot_slo=parse_optional_float(tpot, "TPOT SLO"), runtime=resolve_runtime(runtime),
                           images=parse_images(images))
        return (None, v.figures[0], [html.P(s) for s in v.summary], data_table(v.columns, v.rows, "rec-ranking"),
                {"csv": v.csv, "name": "recommend_ranking.csv"})
