"""What the page's controls hold, turned into API inputs: catalog names, uploaded configs, custom
devices and form numbers. Pure (no Dash needed): the callbacks and the tests call these.

Only catalog names and the page's own uploads and custom devices ever reach a loader: a request
cannot name a file on the server, nor learn which files exist from an error message.
"""

from __future__ import annotations

import base64
import binascii
import math
import warnings
from datetime import date
from pathlib import PurePath
from typing import Any

from ..errors import InputError, clean_name, show
from ..files import parse_json
from ..hardware import Hardware, catalog_hardware, hardware_from_dict, list_hardware
from ..model import ModelSpec, catalog_model, list_models, model_from_config

MAX_UPLOAD_BYTES = 1_000_000  # an uploaded config.json is a few kB; refuse anything above 1 MB
CUSTOM = "custom:"  # option values of devices typed into the page
UPLOADED = "upload:"  # option values of uploaded model configs
DEFAULT_MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-2-7b-hf")
DEFAULT_DEVICES = ("A100-SXM4-80GB", "H100-SXM5-80GB", "H20", "MI300X", "L40S")

# Help texts written once and shown as tooltips (STYLE 9: one source of truth for options).
HELP = {
    "model": "Model: a bundled architecture, or upload a Hugging Face config.json (up to 1 MB).",
    "device": "Device: a catalog id, or one added under 'Custom device'.",
    "weight_dtype": ("Weight precision of the linear layers; checkpoint: as the model's checkpoint stores them "
                     "(its quantization_config, e.g. mxfp4 experts for gpt-oss, fp8 for DeepSeek-V3)."),
    "kv_dtype": "KV-cache precision.",
    "tp": "Tensor-parallel degree: GPUs that split every layer.",
    "pp": "Pipeline-parallel degree: GPUs that split the layers.",
    "ep": ("Expert-parallel degree (MoE): GPUs the routed experts spread over. Empty: tp x dp when dp > 1, else 1; "
           "it divides tp x dp and the experts."),
    "dp": ("Data-parallel attention replicas of tp GPUs, each with its own sequences (GPUs = tp x dp x pp); a dense "
           "model runs plain replicas. Empty: ep / tp when ep > tp, else 1."),
    "batch": "Batch size (sequences), or 'max' for the largest batch that fits.",
    "input": "Prompt tokens per sequence.",
    "output": "Output tokens per sequence.",
    "images": ("Images per request, at the model's default size (vision-language models: Qwen2.5-VL, Gemma 3, "
               "Llama 4): their tokens join the prompt and their encoder pass the prefill. 0 for text."),
    "mode": "static: the batch starts together; continuous: requests kept in flight; max: continuous at the largest batch that fits.",
    "calibration": "default: the tool's best estimate (calibrated efficiencies); none: the plain roofline, an upper bound on speed.",
    "axis": "A range LO:HI (log-spaced, 24 points), LO:HI:N (N points), or a list 1,8,64.",
    "method": "whole: the whole model as one kernel (method 1); ops: per-operator roofline (method 2).",
    "metric": "decode: output tok/s of one decode step at KV length seq; ttft: prompt tok/s of the prefill; e2e: a static batch with 128 output tokens.",
    "phase": "prefill: one pass over batch prompts of length seq; decode: one step at KV length seq.",
    "slo": "Service-level objective in seconds; leave empty for none.",
    "runtime": ("Serving stack: its overheads, decode kernels and KV-cache sizing (generic: an unspecified modern "
                "stack; id@version: the profile nearest that release)."),
}


# ---- names: catalog entries, uploaded configs and custom devices ---------------------------

def _short_number(v: float) -> str:
    """128 -> '128', 4096 -> '4.1k', 131072 -> '131k'."""
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.0f}"


def model_options(uploaded: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Dropdown options: uploaded configs first, then the bundled models with their size."""
    opts = [{"label": f"{name} (uploaded)", "value": UPLOADED + name} for name in (uploaded or {})]
    for m in list_models():
        active = f", {m.params_active / 1e9:.3g}B active" if m.is_moe else ""
        opts.append({"label": f"{m.id} ({m.params_total / 1e9:.3g}B{active})", "value": m.id})
    return opts


def device_options(custom: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Dropdown options: custom devices first, then the catalog with memory and bandwidth."""
    opts = [{"label": f"{name} (custom)", "value": CUSTOM + name} for name in (custom or {})]
    for hw in list_hardware():
        fp16 = hw.peak_flops.get("fp16", hw.peak_flops.get("bf16", 0.0))
        opts.append({"label": hw.id, "value": hw.id,
                     "title": f"{hw.name}: {hw.memory_bytes / 1e9:.0f} GB, {hw.memory_bandwidth / 1e12:.2f} TB/s, "
                              f"{fp16 / 1e12:.0f} TFLOPS fp16"})
    return opts


def store_mapping(data: Any) -> dict[str, Any]:
    """A page store as a mapping (a request may carry anything)."""
    return data if isinstance(data, dict) else {}


def resolve_model(value: str | None, uploaded: dict[str, Any] | None = None) -> ModelSpec:
    """A dropdown value to a ModelSpec: an uploaded config or a catalog name, never a file: what a
    request names cannot make the server read a file, nor tell which files exist."""
    if not value:
        raise InputError("model: pick a model or upload a config.json")
    if not isinstance(value, str):
        raise InputError("model: pick a model from the list")
    if value.startswith(UPLOADED):
        name = value[len(UPLOADED):]
        cfg = store_mapping(uploaded).get(name)
        if cfg is None:
            raise InputError(f"model: the uploaded config {clean_name(name, 80)!r} is gone (reload the page and "
                             "upload it again)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_from_config(cfg, model_id=name)
    return catalog_model(value)


def resolve_device(value: str | None, custom: dict[str, Any] | None = None) -> Hardware:
    """A dropdown value to a Hardware: a custom spec (validated again) or a catalog name, never a
    file (see `resolve_model`)."""
    if not value:
        raise InputError("device: pick a device")
    if not isinstance(value, str):
        raise InputError("device: pick a device from the list")
    if value.startswith(CUSTOM):
        name = value[len(CUSTOM):]
        spec = store_mapping(custom).get(name)
        if spec is None:
            raise InputError(f"device: the custom device {clean_name(name, 80)!r} is gone (add it again)")
        return hardware_from_dict(spec, where="custom device")
    return catalog_hardware(value)


CALIBRATIONS = ("default", "none")  # the app offers these only: a file name from a request is refused


# Serving stacks the app offers: catalog profiles only (runtime.py never reads a file).
RUNTIMES = ("generic", "trtllm", "trtllm@0.17", "trtllm@0.8", "vllm", "vllm@0.6", "sglang", "lmdeploy", "llama.cpp")


def resolve_runtime(value: Any) -> str:
    if value not in RUNTIMES:
        raise InputError(f"serving stack must be one of {', '.join(RUNTIMES)}, got {show(value)}")
    return str(value)


def resolve_calibration(value: Any) -> str:
    if value not in CALIBRATIONS:
        raise InputError(f"calibration must be {' or '.join(CALIBRATIONS)}, got {show(value)}")
    return str(value)


def parse_upload(contents: str | None, filename: str | None) -> tuple[str, dict[str, Any], list[str]]:
    """An uploaded file (a `data:...;base64,` URL) to (name, config mapping, warnings).

    Accepts a Hugging Face config.json or a catalog entry ({"id": ..., "config": {...}}); the
    config is checked by `model_from_config`. Raises InputError for anything else."""
    fname = clean_name(filename or "upload", 120)
    if not contents or "," not in str(contents):
        raise InputError(f"upload {fname}: no file content received")
    try:
        raw = base64.b64decode(str(contents).split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        raise InputError(f"upload {fname}: the file could not be decoded") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError(f"upload {fname}: {len(raw) / 1e6:.1f} MB is too large for a config.json "
                         f"(allowed up to {MAX_UPLOAD_BYTES / 1e6:.0f} MB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"upload {fname}: not a text file (a config.json is UTF-8 JSON)") from None
    data = parse_json(text, f"upload {fname}")  # too deep or absurd numbers: InputError too
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "id" in data:
        name, cfg = str(data["id"]), data["config"]
    else:
        cfg = data
        stem = PurePath(fname).stem
        guess = cfg.get("_name_or_path") if isinstance(cfg, dict) else None
        name = str(guess) if guess and stem == "config" else stem
    name = name.strip() or "uploaded"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_from_config(cfg, model_id=fname)  # validate now; InputError names the file and the field
    return name, cfg, [str(w.message) for w in caught]


CUSTOM_FIELDS = (  # (form field, label, unit, default shown in the page)
    ("id", "name", "", "MyGPU"),
    ("memory_gb", "memory", "GB", 80),
    ("memory_bandwidth_gbps", "bandwidth", "GB/s", 3000),
    ("fp16", "fp16/bf16 peak", "TFLOPS", 500),
    ("fp8", "fp8 peak", "TFLOPS", None),
    ("int8", "int8 peak", "TOPS", None),
    ("interconnect_gbps", "interconnect", "GB/s, both ways", 900),
    ("max_devices", "devices per node", "", 8),
    ("tdp_w", "power", "W", 700),
    ("price_per_hour_usd", "price", "USD/h", 2.0),
)


def _number_field(label: str, value: Any, *, optional: bool = False) -> float | None:
    """A form value to a float; empty -> None if optional. Positivity is checked by hardware_from_dict."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise InputError(f"custom device: {label} is missing")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"custom device: {label} must be a number, got {value!r}") from None


def custom_device_spec(values: dict[str, Any]) -> dict[str, Any]:
    """The custom-device form (keys of CUSTOM_FIELDS) to a spec mapping in the catalog schema,
    validated by `hardware_from_dict`. Raises InputError naming the field."""
    name = str(values.get("id") or "").strip()
    if not name:
        raise InputError("custom device: name is missing")
    if len(name) > 60 or any(c in name for c in "<>\"'`"):
        raise InputError(f"custom device: name {name!r} must be up to 60 characters without quotes or < >")
    labels = {k: f"{lab} ({unit})" if unit else lab for k, lab, unit, _ in CUSTOM_FIELDS}
    num = {k: _number_field(labels[k], values.get(k), optional=k in ("fp8", "int8")) for k, *_ in CUSTOM_FIELDS
           if k != "id"}
    peaks = {"fp16": num["fp16"], "bf16": num["fp16"]}
    for p in ("fp8", "int8"):
        if num[p] is not None:
            peaks[p] = num[p]
    spec = {
        "id": name, "name": name, "vendor": "custom", "family": "custom", "aliases": [], "release_year": date.today().year,
        "memory_gb": num["memory_gb"], "memory_type": "", "memory_bandwidth_gbps": num["memory_bandwidth_gbps"],
        "peak_tflops": peaks, "onchip_buffer_mb": 50,
        "interconnect": {"kind": "custom", "bandwidth_gbps": num["interconnect_gbps"],
                         "max_devices": num["max_devices"]},
        "tdp_w": num["tdp_w"], "price_per_hour_usd": num["price_per_hour_usd"], "confidence": "low",
        "notes": "typed into the web app", "source": "typed into the web app", "sources": {},
    }
    hardware_from_dict(spec, where="custom device")
    return spec


def parse_int(value: Any, name: str, *, allow_max: bool = False) -> int | str:
    """A form value to a whole number (or 'max')."""
    if allow_max and str(value).strip().lower() == "max":
        return "max"
    try:
        f = float(str(value).strip())
    except ValueError:
        raise InputError(f"{name} must be a whole number{' or max' if allow_max else ''}, got {value!r}") from None
    if not math.isfinite(f) or f != round(f):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    return int(f)


def parse_images(value: Any) -> int:
    """Images per request from a form value: empty is 0 (a text prompt)."""
    if value is None or not str(value).strip():
        return 0
    n = int(parse_int(value, "images"))
    if n < 0:
        raise InputError(f"images must be a whole number >= 0, got {value!r}")
    return n


def parse_optional_int(value: Any, name: str) -> int | None:
    """A form value to a whole number, or None when the field is empty (the API's default)."""
    if value is None or not str(value).strip():
        return None
    return int(parse_int(value, name))


def parse_optional_float(value: Any, name: str) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        raise InputError(f"{name} must be a number of seconds or empty, got {value!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise InputError(f"{name} must be positive, got {value!r}")
    return f

