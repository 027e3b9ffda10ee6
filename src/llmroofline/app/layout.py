"""Pieces every tab shares: the page's style, messages, tables, headline cards, graphs, form
fields, and the guard that turns a callback's errors into a message on the page."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, clean_name
from ..formatting import cell_text
from ..report import PNG_CONFIG
from .inputs import CUSTOM, HELP

log = logging.getLogger(__name__)


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


def fit_figure(fig: Any, height: int) -> Any:
    """Shared figures are drawn for a full page; fit them to the app's cards."""
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=70, b=40), title_font_size=14)
    return fig


def format_value(v: Any) -> str:
    """A table cell or headline number as text (as the HTML report writes it)."""
    return cell_text(v)


CSS = """
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


TAB_STYLE = {"padding": "8px 12px", "fontWeight": 500, "borderColor": "#d0d7de", "background": "#f6f8fa"}
TAB_SELECTED = {**TAB_STYLE, "background": "#fff", "borderTop": "3px solid #0969da", "color": "#0969da"}


def message(text: str | None, kind: str = "error") -> Any:
    from dash import html

    if not text:
        return None
    return html.Div(text, className=f"msg-{kind}", role="alert" if kind == "error" else None)


def data_table(columns: list[str], rows: list[list[Any]], table_id: str | None = None) -> Any:
    from dash import html

    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody([html.Tr([html.Td(format_value(v)) for v in r]) for r in rows])
    table = html.Table([head, body], className="data", id=table_id) if table_id else html.Table(
        [head, body], className="data")
    return html.Div(table, className="table-scroll")


def kpi_cards(summary: list[dict[str, Any]]) -> Any:
    from dash import html

    cards = []
    fits = next((s["value"] for s in summary if s["key"] == "fits"), "yes") == "yes"
    for s in summary:
        v = s["value"]
        if s["key"] == "fits":
            continue  # shown on the memory card
        interval = s.get("interval")
        sub = ""
        if interval and isinstance(v, float):
            sub = f"interval {format_value(interval[0])} – {format_value(interval[1])}"
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


def graph(graph_id: str, height: int | None = None) -> Any:
    from dash import dcc

    config: Any = {**PNG_CONFIG, "toImageButtonOptions": {**PNG_CONFIG["toImageButtonOptions"],
                                                          "filename": graph_id}}
    return dcc.Graph(id=graph_id, figure=placeholder_figure("computing…", height or 420), config=config)


def display_name(value: str) -> str:
    return value[len(CUSTOM):] + " (custom)" if value.startswith(CUSTOM) else value


def chosen(values: list[str]) -> str:
    """The devices picked in a multi-select, spelled out (the dropdown shows only a count)."""
    return " · ".join(display_name(v) for v in values)


def pick_defaults(options: list[dict[str, str]], wanted: tuple[str, ...], n: int) -> list[str]:
    values = [o["value"] for o in options]
    lowered = {v.lower(): v for v in values}
    out = [lowered[w.lower()] for w in wanted if w.lower() in lowered][:n]
    for v in values:
        if len(out) >= n:
            break
        if v not in out:
            out.append(v)
    return out


@dataclass(frozen=True)
class Choices:
    """What the tabs' controls start with: device options, the default devices, precisions (of
    compute and KV cache: `dtypes`; of weights, with `checkpoint` first: `wdtypes`)."""

    devices: list[dict[str, str]]
    dev: list[str | None]
    dtypes: list[dict[str, str]]
    wdtypes: list[dict[str, str]]


def field_(label: str, comp: Any, help_key: str | None = None) -> list[Any]:
    from dash import html

    return [html.Label(label, className="f", title=HELP.get(help_key or "", "")), comp]


def text(id_: str, value: Any, help_key: str | None = None) -> Any:
    from dash import dcc, html

    return html.Div(dcc.Input(id=id_, type="text", value=str(value), debounce=True),
                    title=HELP.get(help_key or "", ""))


def dd(id_: str, options: Any, value: Any, **kw: Any) -> Any:
    from dash import dcc

    return dcc.Dropdown(id=id_, options=options, value=value, clearable=False, **kw)


def radio(id_: str, options: list[str], value: str) -> Any:
    from dash import dcc

    return dcc.RadioItems(id=id_, options=[{"label": o, "value": o} for o in options], value=value, inline=True,
                          inputStyle={"marginRight": "3px"}, labelStyle={"marginRight": "10px"})


def buttons(prefix: str, extra: list[Any] | None = None) -> Any:
    from dash import dcc, html

    return html.Div([html.Button("Download CSV", id=f"{prefix}-csv-btn", className="btn"),
                     dcc.Download(id=f"{prefix}-csv"), *(extra or [])], className="buttons")


def common_inputs() -> list[Any]:
    """The inputs every tab's main callback reads first: the model and the page's stores."""
    from dash import Input

    return [Input("model", "value"), Input("models-store", "data"), Input("devices-store", "data")]


def guard(n_outputs: int, empties: tuple[Any, ...]):
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
                return (message(str(e)), *empties)
            except Exception as e:  # noqa: BLE001 - the page must keep working
                log.exception("callback %s failed", fn.__name__)
                return (message(f"internal error: {type(e).__name__}: {clean_name(e)}. Please report it with "
                                 "the inputs."),
                        *empties)
        return inner
    if len(empties) != n_outputs - 1:
        raise ValueError(f"guard: {n_outputs} outputs need {n_outputs - 1} empties, got {len(empties)}")
    return wrap
