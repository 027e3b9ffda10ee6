"""The controls above the tabs: the model picker with its config upload, the custom-device form,
and the page's stores of uploaded models and custom devices."""

from __future__ import annotations

from typing import Any

from .inputs import (
    CUSTOM_FIELDS,
    HELP,
    MAX_UPLOAD_BYTES,
    UPLOADED,
    custom_device_spec,
    device_options,
    model_options,
    parse_upload,
    resolve_model,
    store_mapping,
)
from .layout import guard, message


def top(models: list[dict[str, str]], model0: str | None) -> list[Any]:
    """The model bar and the custom-device panel."""
    from dash import dcc, html

    custom_inputs = [html.Label([lab + (f" ({unit})" if unit else ""),
                                 dcc.Input(id=f"cd-{key}", type="text", value="" if default is None else str(default),
                                           placeholder="optional" if default is None else "")])
                     for key, lab, unit, default in CUSTOM_FIELDS]
    return [
        html.Div([
            html.Div(["llmroofline", html.Small("LLM inference speed from the roofline")], className="brand"),
            html.Div(dcc.Dropdown(id="model", options=models, value=model0, clearable=False, searchable=True),
                     className="model-pick", title=HELP["model"]),
            dcc.Upload(id="upload", children=html.Span("Upload config.json"), className="upload",
                       accept=".json,application/json", max_size=4 * MAX_UPLOAD_BYTES, multiple=False),
            html.Div(id="upload-msg", className="topmsg"),
        ], className="topbar"),
        html.Details([
            html.Summary("Custom device: type a spec to add it to every device list"),
            html.Div([*custom_inputs, html.Button("Add device", id="cd-add", className="btn primary")],
                     className="custom-grid"),
            html.Div(id="cd-msg", style={"paddingBottom": "6px"}),
        ], className="custom", id="custom-details"),
    ]


def register(app: Any, prefixes: tuple[str, ...]) -> None:
    """Upload, custom devices, the device lists they feed, and each tab's CSV download."""
    from dash import Input, Output, State, dcc, html, no_update

    @app.callback(Output("upload-msg", "children"), Output("models-store", "data"), Output("model", "options"),
                  Output("model", "value"), Input("upload", "contents"), State("upload", "filename"),
                  State("models-store", "data"), prevent_initial_call=True)
    @guard(4, (no_update, no_update, no_update))
    def on_upload(contents, filename, store):
        name, cfg, notes = parse_upload(contents, filename)
        store = dict(store_mapping(store))
        store[name] = cfg
        spec = resolve_model(UPLOADED + name, store)
        msg = html.Div([
            html.Div(f"Loaded {spec.id}: {spec.params_total / 1e9:.3g}B parameters, {spec.num_layers} layers, "
                     f"{spec.attention_kind}.", className="msg-ok"),
            *[html.Div(n, className="msg-note") for n in notes],
        ])
        return msg, store, model_options(store), UPLOADED + name

    @app.callback(Output("cd-msg", "children"), Output("devices-store", "data"),
                  Input("cd-add", "n_clicks"), *[State(f"cd-{k}", "value") for k, *_ in CUSTOM_FIELDS],
                  State("devices-store", "data"), prevent_initial_call=True)
    @guard(2, (no_update,))
    def on_add_device(_n, *values):
        store = dict(store_mapping(values[-1]))
        spec = custom_device_spec(dict(zip([k for k, *_ in CUSTOM_FIELDS], values[:-1], strict=True)))
        store[spec["id"]] = spec
        return message(f"Added {spec['id']}: it is now in every device list (as “{spec['id']} (custom)”).",
                        "ok"), store

    @app.callback(Output("rf-devices", "options"), Output("cmp-a", "options"), Output("cmp-b", "options"),
                  Output("est-device", "options"), Output("rec-devices", "options"),
                  Input("devices-store", "data"), prevent_initial_call=True)
    def on_devices(store):
        opts = device_options(store)
        return opts, opts, opts, opts, opts

    for prefix in prefixes:
        @app.callback(Output(f"{prefix}-csv", "data"), Input(f"{prefix}-csv-btn", "n_clicks"),
                      State(f"{prefix}-store", "data"), prevent_initial_call=True)
        def on_csv(_n, store):
            if not store or not store.get("csv"):
                return no_update
            return dcc.send_string(store["csv"], store["name"])
