"""The Dash app: the page (controls above five tabs) and its server."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..hardware import Hardware
from ..precision import PRECISIONS, RATES
from . import compare_tab, controls, estimate_tab, recommend_tab, roofline_tab, serving_tab
from .inputs import DEFAULT_DEVICES, DEFAULT_MODELS, MAX_UPLOAD_BYTES, device_options, model_options
from .layout import CSS, TAB_SELECTED, TAB_STYLE, Choices, pick_defaults, placeholder_figure
from .security import ANY_ADDRESS, allowed_hosts, check_host_header

TABS = (roofline_tab, compare_tab, estimate_tab, recommend_tab, serving_tab)
PREFIXES = ("rf", "cmp", "est", "rec", "srv")  # each tab's id prefix (its CSV download and store)


def _hardware_specs(devices: list[Hardware] | None) -> dict[str, Any]:
    """Hardware objects given to create_app become custom entries (their catalog-schema dicts)."""
    out: dict[str, Any] = {}
    for hw in devices or []:
        d = hw.to_dict()
        d = {k: v for k, v in d.items() if k != "ridge_flops_per_byte"}
        out[hw.id] = d
    return out


def page(extra_devices: dict[str, Any], extra_models: dict[str, Any]) -> Any:
    """The whole page: the controls above the tabs, and the page's stores."""
    from dash import dcc, html

    models = model_options(extra_models)
    devices = device_options(extra_devices)
    model0: str | None = (pick_defaults(models, DEFAULT_MODELS, 1) or [None])[0]  # type: ignore[list-item]
    dev: list[str | None] = list(pick_defaults(devices, DEFAULT_DEVICES, 5))
    dev += [None] * (5 - len(dev))
    # Weights: as the checkpoint stores them (its quantization_config), or one precision for the linear layers.
    choices = Choices(devices=devices, dev=dev, dtypes=[{"label": p, "value": p} for p in RATES],
                      wdtypes=[{"label": "checkpoint", "value": "checkpoint"}]
                      + [{"label": p, "value": p} for p in PRECISIONS])
    return html.Div([
        *controls.top(models, model0),
        dcc.Store(id="models-store", data=extra_models),
        dcc.Store(id="devices-store", data=extra_devices),
        *[dcc.Store(id=f"{prefix}-store") for prefix in PREFIXES],
        html.Div(dcc.Tabs(id="tabs", value="compare", style={"height": "38px", "marginTop": "8px"}, children=[
            dcc.Tab(label=t.LABEL, value=t.VALUE, children=t.tab(choices), style=TAB_STYLE,
                    selected_style=TAB_SELECTED) for t in TABS
        ]), className="tabs-wrap"),
    ])


def create_app(devices: list[Hardware] | None = None, models: dict[str, dict[str, Any]] | None = None, *,
               bind_host: str | None = "127.0.0.1", allow_hosts: tuple[str, ...] | list[str] = ()) -> Any:
    """The Dash app. `devices` (Hardware) and `models` (name -> config mapping) are added to the
    catalog's entries, as if typed in or uploaded. Requests must name the server by an allowed
    host (`allowed_hosts(bind_host, allow_hosts)`); others get 400."""
    try:
        import dash
    except ImportError:  # pragma: no cover - checked by the CLI
        raise InputError("the web app needs Dash: pip install 'llmroofline[app]'") from None

    app = dash.Dash("llmroofline.app", title="llmroofline", update_title="", suppress_callback_exceptions=False)
    app.server.config["MAX_CONTENT_LENGTH"] = 16 * MAX_UPLOAD_BYTES  # the server refuses larger requests
    check_host_header(app.server, allowed_hosts(bind_host, allow_hosts), any_address=bind_host in ANY_ADDRESS)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")
    app.layout = page(_hardware_specs(devices), dict(models or {}))
    controls.register(app, PREFIXES)
    empty_fig = placeholder_figure("fix the input on the left")
    for t in TABS:
        t.register(app, empty_fig)
    return app


def serve(host: str = "127.0.0.1", port: int = 8050, debug: bool = False,
          allow_hosts: tuple[str, ...] | list[str] = (), **kwargs: Any) -> None:
    """Start the app's development server (blocks until interrupted). `debug`: Dash's dev tools
    and reloading, never Werkzeug's interactive console (it runs Python for whoever reaches it)."""
    app = create_app(bind_host=host, allow_hosts=allow_hosts, **kwargs)
    app.run(host=host, port=port, debug=debug, use_debugger=False)
