"""The interactive web app (`llmroofline app`): Roofline, Compare, Estimate, Recommend and Serving tabs.

A thin shell: every number comes from the public Python API. `inputs` turns form values into API
inputs (catalog names and the page's own uploads only: never a file named by a request); each
`*_tab` module holds one tab's view (a pure function from API inputs to what the tab shows, which
tests call directly), its controls and its callbacks; `layout` holds what the tabs share,
`controls` the model and custom-device controls above them, `security` the Host header check, and
`server` builds the Dash app. Dash is imported lazily (optional extra `llmroofline[app]`).

Bad input never stops the server: each callback catches `InputError` and shows its message
above the outputs it could not compute; the other tabs keep working.
"""

from __future__ import annotations

from .compare_tab import COMPARE_COLUMNS, compare_view
from .estimate_tab import batch_field_disabled, estimate_report_html, estimate_view
from .inputs import (
    CALIBRATIONS,
    CUSTOM,
    CUSTOM_FIELDS,
    HELP,
    MAX_UPLOAD_BYTES,
    UPLOADED,
    custom_device_spec,
    device_options,
    model_options,
    parse_int,
    parse_optional_float,
    parse_optional_int,
    parse_upload,
    resolve_calibration,
    resolve_device,
    resolve_model,
)
from .layout import View, format_value, guard, placeholder_figure
from .recommend_tab import RECOMMEND_COLUMNS, RECOMMEND_HEADERS, recommend_view
from .roofline_tab import ROOFLINE_COLUMNS, roofline_view
from .security import allowed_hosts, host_allowed, host_name
from .server import _hardware_specs, create_app, serve
from .serving_tab import SERVING_COLUMNS, serving_view

_guard = guard  # the name tests and older code use

__all__ = [
    "CALIBRATIONS", "COMPARE_COLUMNS", "CUSTOM", "CUSTOM_FIELDS", "HELP", "MAX_UPLOAD_BYTES", "RECOMMEND_COLUMNS",
    "RECOMMEND_HEADERS", "ROOFLINE_COLUMNS", "UPLOADED", "View", "_guard", "_hardware_specs", "allowed_hosts",
    "batch_field_disabled",
    "compare_view", "create_app", "custom_device_spec", "device_options", "estimate_report_html", "estimate_view",
    "format_value", "guard", "host_allowed", "host_name", "model_options", "parse_int", "parse_optional_float", "parse_optional_int",
    "parse_upload", "placeholder_figure", "recommend_view", "resolve_calibration", "resolve_device",
    "resolve_model", "roofline_view", "serve", "SERVING_COLUMNS", "serving_view",
]
