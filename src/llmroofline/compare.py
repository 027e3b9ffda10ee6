"""The LLMRoofline article's comparison mesh: performance of device A over device B on a batch × length grid.

Sequence (KV) length runs along x, batch along y; ratio > 1 means A is faster. Cells where the
workload does not fit in a device's memory are flagged (`fits_a`, `fits_b`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .efficiency import load_calibration
from .errors import InputError
from .estimate import (
    Deployment,
    estimate,
    make_deployment,
    p2p_time,
    parallelism_fields,
    pass_time,
    sum_max_affine,
    vision_seconds,
)
from .intensity import whole_model
from .memory import memory_use
from .operators import AttentionGroup
from .roofline import device_peak, roofline_time
from .vision import check_images

METHODS = ("whole", "ops")
METRICS = ("decode", "ttft", "e2e")
METRIC_UNITS = {"decode": "output tokens/s", "ttft": "prompt tokens/s", "e2e": "output tokens/s"}


def parse_axis(text: str | list | np.ndarray, name: str, points: int = 24, upper: float = 1e8) -> np.ndarray:
    """`LO:HI` (log-spaced whole numbers), `LO:HI:N` (N points) or a list `1,8,64` taken as given."""
    if isinstance(text, (list, tuple, np.ndarray)):
        flat = np.asarray(text, dtype=object).ravel() if not isinstance(text, np.ndarray) else text.ravel()
        if any(isinstance(v, (bool, np.bool_)) for v in flat):
            raise InputError(f"{name}: values must be whole numbers, got booleans in {text!r}")
        try:
            values = np.asarray(text, dtype=float).ravel()
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{name}: {text!r} is not a flat list of numbers") from None
    else:
        s = str(text).strip()
        try:
            if ":" in s:
                parts = [float(p) for p in s.split(":")]
                if len(parts) not in (2, 3):
                    raise ValueError
                lo, hi = parts[0], parts[1]
                if len(parts) == 3 and not (math.isfinite(parts[2]) and parts[2].is_integer()):
                    raise InputError(f"{name}: range {s!r}: the number of points N in LO:HI:N must be a whole "
                                     f"number, got {parts[2]:g}")
                n = int(parts[2]) if len(parts) == 3 else points
                if not (lo >= 1 and hi > lo and 2 <= n <= 4096):
                    raise InputError(f"{name}: range {s!r} must be LO:HI with 1 <= LO < HI (and 2 to 4096 points)")
                values = np.unique(np.round(np.geomspace(lo, hi, n)))
            else:
                values = np.asarray([float(p) for p in s.split(",") if p.strip()], dtype=float)
        except InputError:  # a ValueError too: keep its precise message
            raise
        except (ValueError, OverflowError):  # OverflowError: a point count of inf
            raise InputError(f"{name}: {s!r} is neither a range LO:HI nor a list of numbers") from None
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 1) or np.any(values != np.round(values)):
        raise InputError(f"{name}: values must be whole numbers >= 1, got {text!r}")
    if np.any(values > upper):
        raise InputError(f"{name}: values above {upper:g} are absurd, got {text!r}")
    return values


@dataclass(frozen=True)
class Comparison:
    """A mesh of A-over-B performance. Arrays are (len(batch), len(seq))."""

    model: str
    a: str
    b: str
    method: str
    metric: str
    batch: np.ndarray
    seq: np.ndarray
    perf_a: np.ndarray
    perf_b: np.ndarray
    fits_a: np.ndarray
    fits_b: np.ndarray
    labels: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # per side: tp, pp, ep, dp (JSON echo)
    images: int = 0  # images per sequence (vision-language models)
    image_tokens: int = 0  # prompt tokens they add per sequence

    @property
    def ratio(self) -> np.ndarray:
        return self.perf_a / self.perf_b

    @property
    def unit(self) -> str:
        return METRIC_UNITS[self.metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "a": self.a, "b": self.b, "method": self.method, "metric": self.metric,
            "unit": self.unit, "labels": dict(self.labels),
            **{f"layout_{k}": dict(v) for k, v in self.layouts.items()},
            "batch": self.batch.tolist(), "seq": self.seq.tolist(),
            "ratio": self.ratio.tolist(), "perf_a": self.perf_a.tolist(), "perf_b": self.perf_b.tolist(),
            "fits_a": self.fits_a.tolist(), "fits_b": self.fits_b.tolist(),
            **({"images": self.images, "image_tokens": self.image_tokens} if self.images else {}),
        }


def _whole_time(dep: Deployment, batch, new, past):
    """Method 1 time of one pass: max(FLOPs / peak, bytes / bandwidth) of the whole model."""
    w = whole_model(dep.model, batch, new, past, weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype, tp=dep.tp)
    peak = device_peak(dep.hardware, dep.gemm_precision)
    return roofline_time(w.flops, w.bytes, peak, dep.hardware.memory_bandwidth), w


def _whole_decode_sum(dep: Deployment, batch, first_kv, last_kv):
    """Method 1 over consecutive decode steps, summed exactly: FLOPs and bytes are affine in the
    KV length below the sliding window and affine again (with the global layers' slope) above it."""
    peak = device_peak(dep.hardware, dep.gemm_precision)
    bw = dep.hardware.memory_bandwidth

    def coefficients(kv: float) -> tuple[Any, Any, Any, Any]:
        w1, w2 = (whole_model(dep.model, batch, 1, kv + d - 1, weight_dtype=dep.weight_dtype,
                              kv_dtype=dep.kv_dtype, tp=dep.tp) for d in (0, 1))
        c1, m1 = (w2.flops - w1.flops) / peak, (w2.bytes - w1.bytes) / bw
        return w1.flops / peak - c1 * kv, c1, w1.bytes / bw - m1 * kv, m1

    first_kv, last_kv = np.asarray(first_kv, dtype=float), np.asarray(last_kv, dtype=float)
    # The kink in the KV length: the sliding window, or the sparse-attention top-k.
    window = float(dep.model.sliding_window) if dep.model.num_sliding_layers else dep.model.attention_span
    below = sum_max_affine(*coefficients(1.0), first_kv, np.minimum(last_kv, window))
    if np.isinf(window):
        return below
    return below + sum_max_affine(*coefficients(window + 1), np.maximum(first_kv, window + 1), last_kv)


def performance(dep: Deployment, batch, seq, *, method: str, metric: str, output_len: int = 128,
                calibration="none", runtime=None, images: int = 0, image_size: Any = None) -> np.ndarray:
    """Throughput of one deployment on the grid (see METRIC_UNITS). With images (method ops), a
    prompt is seq text tokens plus the images' tokens (prompt tokens/s counts both), and the
    prefill (ttft) encodes the images first."""
    b, s = np.asarray(batch, dtype=float), np.asarray(seq, dtype=float)
    img_tokens = images * dep.model.vision.layout(image_size).tokens if images and dep.model.vision else 0
    prompt = s + img_tokens
    # The batch is the whole instance's: each attention replica and pipeline micro-batch runs its share.
    micro = b / (dep.dp * dep.pp)
    if metric == "decode":
        if method == "whole":
            t, _ = _whole_time(dep, b, 1, s - 1)
        else:
            eff = load_calibration(calibration).for_device(dep.hardware, runtime)
            t = pass_time(dep, eff, [AttentionGroup(micro, 1, prompt - 1)]) + p2p_time(dep, eff, micro)
        return b / t
    if metric == "ttft":
        if method == "whole":
            t, _ = _whole_time(dep, b, s, 0)
        else:
            eff = load_calibration(calibration).for_device(dep.hardware, runtime)
            t = pass_time(dep, eff, [AttentionGroup(micro, prompt, 0)]) + p2p_time(dep, eff, micro * prompt)
            if img_tokens:  # each attention replica encodes its sequences' images first
                t = t + vision_seconds(dep, eff, b / dep.dp * images, image_size)
        return b * prompt / t
    # e2e: a static batch with prompt s and output_len tokens
    if method == "whole":
        prefill, _ = _whole_time(dep, b, s, 0)
        total = prefill + _whole_decode_sum(dep, b, s + 1, s + output_len - 1)
        return b * output_len / total
    r = estimate(dep.model, dep.hardware, batch=b, input_len=s, output_len=output_len, tp=dep.tp, pp=dep.pp,
                 ep=dep.ep, dp=dep.dp, weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype, mode="static",
                 calibration=calibration, runtime=runtime, redundant_experts=dep.redundant_experts,
                 moe_imbalance=dep.moe_imbalance, images=images,
                 image_size=image_size)
    return r.throughput_tok_s


def _fits(dep: Deployment, batch, seq, metric: str, output_len: int) -> np.ndarray:
    context = seq + (output_len if metric == "e2e" else 0)
    replica = np.asarray(batch, dtype=float) / dep.dp  # sequences each attention replica holds
    mem = memory_use(dep.model, dep.hardware, batch=replica, context=context, prefill_tokens=seq,
                     weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype, tp=dep.tp, pp=dep.pp, ep=dep.ep,
                     redundant_experts=dep.redundant_experts)
    return np.broadcast_to(mem.fits, np.broadcast_shapes(np.shape(batch), np.shape(seq))).copy()


def compare(model, a, b, *, batch: Any = "1:1024", seq: Any = "128:131072", method: str = "whole",
            metric: str = "decode", tp_a: int = 1, tp_b: int = 1, weight_dtype_a: Any = None,
            weight_dtype_b: Any = None, kv_dtype_a: str | None = None, kv_dtype_b: str | None = None,
            output_len: int = 128, calibration: str = "none", runtime: str | None = None, pp: int = 1,
            ep: int | None = None, dp: int | None = None, moe_imbalance: float | None = None,
            redundant_experts: int = 0, images: int = 0, image_size: Any = None) -> Comparison:
    """The A-over-B mesh. `batch` and `seq` are ranges `LO:HI`, lists or arrays; the batch is the
    whole instance's (split over dp attention replicas). pp, ep, dp, moe_imbalance and
    redundant_experts apply to both devices (make_deployment) and need method ops: method 1 (whole)
    is the article's whole-model roofline with tensor parallelism only. images (vision-language
    models, method ops): each sequence's prompt is `seq` text tokens plus its images' tokens, and
    its prefill encodes the images first."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if metric not in METRICS:
        raise InputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if (isinstance(output_len, bool) or not isinstance(output_len, (int, float, np.integer, np.floating))
            or not 1 <= output_len <= 1e7 or output_len != int(output_len)):  # range first: 10**400 has no float
        raise InputError(f"output_len must be a whole number from 1 to 1e7, got {output_len!r}")
    output_len = int(output_len)
    layout: dict[str, Any] = dict(pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance,
                                  redundant_experts=redundant_experts)
    dep_a = make_deployment(model, a, tp=tp_a, weight_dtype=weight_dtype_a, kv_dtype=kv_dtype_a, **layout)
    dep_b = make_deployment(model, b, tp=tp_b, weight_dtype=weight_dtype_b, kv_dtype=kv_dtype_b, **layout)
    if method == "whole" and any(d.pp > 1 or d.ep > 1 or d.dp > 1 for d in (dep_a, dep_b)):
        raise InputError("method whole (the whole-model roofline) models tensor parallelism only; pp, ep and dp need "
                         "method ops")
    bs = parse_axis(batch, "batch", upper=1e7)
    ss = parse_axis(seq, "seq")
    n_img = int(check_images(images)) if np.ndim(images) == 0 else -1
    if n_img < 0:
        raise InputError(f"images must be one whole number for a comparison, got {images!r}")
    if n_img and method == "whole":
        raise InputError("images: method 1 (whole) has no vision encoder; compare with method ops")
    if n_img and dep_a.model.vision is None:
        raise InputError(f"images = {n_img}: {dep_a.model.id} has no vision tower this tool models (a text-only model)")
    img_tokens = n_img * dep_a.model.vision.layout(image_size).tokens if n_img and dep_a.model.vision else 0
    B, S = bs[:, None], ss[None, :]
    kw: dict[str, Any] = dict(method=method, metric=metric, output_len=output_len, calibration=calibration,
                              runtime=runtime, images=n_img, image_size=image_size)
    perf_a = np.broadcast_to(performance(dep_a, B, S, **kw), (bs.size, ss.size))
    perf_b = np.broadcast_to(performance(dep_b, B, S, **kw), (bs.size, ss.size))

    def label(dep: Deployment) -> str:
        tp = f"{dep.gpus}×" if dep.gpus > 1 else ""
        return f"{tp}{dep.hardware.id} {dep.weight_dtype}"

    return Comparison(
        model=dep_a.model.id, a=dep_a.hardware.id, b=dep_b.hardware.id, method=method, metric=metric,
        batch=bs, seq=ss, perf_a=np.array(perf_a), perf_b=np.array(perf_b),
        fits_a=_fits(dep_a, B, S + img_tokens, metric, output_len),
        fits_b=_fits(dep_b, B, S + img_tokens, metric, output_len),
        labels={"a": label(dep_a), "b": label(dep_b)}, images=n_img, image_tokens=img_tokens,
        layouts={"a": parallelism_fields(dep_a), "b": parallelism_fields(dep_b)},
    )
