"""`models list|show` and `hardware list|show`."""

from __future__ import annotations

from typing import Any

import typer

from ..formatting import money
from ..hardware import list_hardware, load_hardware
from ..model import list_models, load_model
from .common import (
    HARDWARE_HELP,
    JSON_HELP,
    MODEL_HELP,
    hardware_app,
    models_app,
    print_json,
    table,
)


@models_app.command("list")
def models_list(json_: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the bundled models."""
    models = list_models()
    if json_:
        print_json([{"id": m.id, "aliases": list(m.aliases),
                     "serves": [*([m.base_id] if m.base_id else []), *m.variants],  # other Hub ids, same file
                     "model_type": m.model_type,
                     "params_total": m.params_total, "params_active": m.params_active,
                     "attention": m.attention_kind, "experts": m.num_experts} for m in models])
        return
    table(f"{len(models)} bundled models", ["id", "alias", "type", "params (B)", "active (B)", "attention", "experts"],
          [[m.id, (m.aliases or ("",))[0], m.model_type, m.params_total / 1e9, m.params_active / 1e9,
            m.attention_kind, m.num_experts or ""] for m in models])


@models_app.command("show")
def models_show(model: str = typer.Argument(..., help=MODEL_HELP),
                json_: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Architecture and derived figures of one model."""
    m = load_model(model)
    s = m.summary()
    if json_:
        print_json(s)
        return
    def text(v: Any, key: str = "") -> Any:
        if key.endswith("_vs_published") and isinstance(v, float):
            return f"{v:+.1%}"  # ours against the publisher's figure
        if isinstance(v, dict):
            return ", ".join(f"{p}: {x:.2f}" if isinstance(x, float) else f"{p}: {text(x)}" for p, x in v.items())
        return ", ".join(map(str, v)) if isinstance(v, list) else v

    rows = [[k, text(v, k)]
            for k, v in s.items() if v not in (None, "", 0, False, []) or k in ("experts", "kv_heads")]
    table(m.id, ["field", "value"], rows)


@hardware_app.command("list")
def hardware_list(json_: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the bundled devices."""
    devices = list_hardware()
    if json_:
        print_json([hw.to_dict() for hw in devices])
        return
    table(f"{len(devices)} bundled devices", ["id", "memory GB", "bandwidth GB/s", "fp16 TFLOPS", "fp8 TFLOPS",
                                                "ridge fp16 FLOP/B", "interconnect", "domain", "scale-out Gb/s",
                                                "confidence"],
          [[hw.id, hw.memory_bytes / 1e9, hw.memory_bandwidth / 1e9,
            hw.peak_flops.get("fp16", hw.peak_flops.get("bf16", float("nan"))) / 1e12,
            hw.peak_flops.get("fp8", float("nan")) / 1e12,
            hw.peak_flops.get("fp16", hw.peak_flops.get("bf16", float("nan"))) / hw.memory_bandwidth,
            hw.interconnect_kind, hw.max_devices,
            ("default " if hw.scale_out_default else "") + f"{hw.scale_out_bandwidth * 8 / 1e9:g}",
            hw.confidence] for hw in devices])


@hardware_app.command("show")
def hardware_show(device: str = typer.Argument(..., help=HARDWARE_HELP),
                  json_: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Specification, ridge points and sources of one device."""
    from ..energy import power_model

    hw = load_hardware(device)
    d = hw.to_dict()
    power = power_model(hw)
    d["power_w"] = power.to_dict()  # board power by activity, the energy model's (docs/energy.md)
    d["power_sources"] = dict(power.sources)
    if json_:
        print_json(d)
        return
    rows = []
    for k, v in d.items():
        if k.endswith("year") and isinstance(v, int):
            v = str(v)  # 2024, not 2,024
        elif k.startswith("price") and isinstance(v, (int, float)):
            v = money(v)
        elif isinstance(v, list):
            v = ", ".join(map(str, v))
        elif isinstance(v, dict):
            v = ", ".join(f"{p}: {x:.4g}" if isinstance(x, float) else f"{p}: {x}" for p, x in v.items())
        rows.append([k, v])
    table(hw.id, ["field", "value"], rows)
