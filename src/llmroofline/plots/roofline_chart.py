"""The roofline chart: each device's roofs per precision, a workload's operators placed on them
(method 2) beside the whole model (method 1). The data (`roofs`, `workload_points`) feed the
interactive figures and the tests too."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..efficiency import Efficiency
from ..errors import InputError
from ..estimate import make_deployment
from ..hardware import Hardware, load_hardware
from ..intensity import whole_model
from ..memory import memory_use
from ..operators import COMM, AttentionGroup
from ..precision import normalize
from ..roofline import attainable_flops, device_peak, time_ops
from .axes import (
    MARKERS,
    OP_SPOTS,
    PALETTE,
    RIDGE_SPOTS,
    TERA,
    _mpl,
    _num,
    _place_labels,
    _plain_log_axis,
    check_output,
    save_figure,
)

PRECISION_DASHES: dict[str, Any] = {
    "fp16": "-", "bf16": "-", "fp8": "--", "int8": "-.", "fp4": ":", "int4": ":",
    "tf32": (0, (5, 1, 1, 1, 1, 1)), "fp32": (0, (1, 1)),
}


# ---- data behind the pictures ------------------------------------------------------------

@dataclass(frozen=True)
class Roof:
    """One roof: a device at one precision. SI units."""

    devices: tuple[str, ...]  # devices sharing this exact roof (e.g. A100 and A800)
    precision: str
    peak: float  # FLOP/s
    bandwidth: float  # bytes/s

    @property
    def ridge(self) -> float:
        """FLOPs per byte where memory-bound turns compute-bound."""
        return self.peak / self.bandwidth

    @property
    def label(self) -> str:
        return " = ".join(self.devices)

    def to_dict(self) -> dict[str, Any]:
        return {"devices": list(self.devices), "precision": self.precision, "peak_tflops": self.peak / TERA,
                "memory_bandwidth_gbps": self.bandwidth / 1e9, "ridge_flops_per_byte": self.ridge}


def _roof_inputs(devices, precisions) -> tuple[list[Hardware], list[str]]:
    if isinstance(devices, (str, Hardware)):
        devices = [devices]
    if isinstance(precisions, str):
        precisions = [precisions]
    hws = [load_hardware(d) for d in devices]
    if not hws:
        raise InputError("roofline: name at least one device")
    precs = list(dict.fromkeys(normalize(p, field="precision") for p in precisions))
    if not precs:
        raise InputError("roofline: name at least one precision")
    return list({hw.id: hw for hw in hws}.values()), precs


def missing_roofs(devices, precisions=("fp16",)) -> list[str]:
    """One line per device that lacks a requested precision (fp16 and bf16 stand in for each other):
    the roofs `roofs(..., skip_missing=True)` leaves out."""
    hws, precs = _roof_inputs(devices, precisions)
    notes = []
    for p in precs:
        lacking = [hw.id for hw in hws if not _has_peak(hw, p)]
        if lacking:
            notes.append(f"no {p} roof for {', '.join(lacking)}: {'it has' if len(lacking) == 1 else 'they have'} "
                         f"no {p} peak")
    return notes


def _has_peak(hw: Hardware, precision: str) -> bool:
    try:
        device_peak(hw, precision)
    except InputError:
        return False
    return True


def roofs(devices, precisions=("fp16",), *, skip_missing: bool = False) -> list[Roof]:
    """A roof per device and precision; devices with identical roofs share one entry.

    A device that lacks a requested precision (fp16 and bf16 stand in for each other) is an
    InputError, or with `skip_missing` is left out at that precision only (`missing_roofs` says
    which); InputError if nothing is left.
    """
    hws, precs = _roof_inputs(devices, precisions)
    out: dict[tuple[str, float, float], list[str]] = {}
    for hw in hws:
        for p in precs:
            if not _has_peak(hw, p):
                if skip_missing:
                    continue
                raise InputError(f"device {hw.id} has no {p} peak (it has {', '.join(sorted(hw.peak_flops))}); "
                                 f"drop --precision {p} or this device")
            out.setdefault((p, device_peak(hw, p), hw.memory_bandwidth), []).append(hw.id)
    if not out:
        raise InputError(f"roofline: none of {', '.join(hw.id for hw in hws)} has a {' or '.join(precs)} peak")
    return [Roof(tuple(ids), p, peak, bw) for (p, peak, bw), ids in out.items()]


@dataclass(frozen=True)
class WorkloadPoints:
    """A workload placed on one device's roofline: operators (method 2) and the whole model (method 1)."""

    model: str
    device: str
    phase: str
    batch: int
    seq: int
    tp: int
    names: list[str]
    intensity: np.ndarray  # FLOPs per byte, per operator
    attainable: np.ndarray  # FLOP/s on the device's roof at the operator's precision
    time_share: np.ndarray  # fraction of the pass time (plain roofline)
    bound: list[str]
    whole_intensity: float
    whole_attainable: float
    weight_dtype: str = "fp16"
    memory_gb: float = 0.0  # per device: weights, KV cache and activations of the pass
    capacity_gb: float = math.inf

    @property
    def fits(self) -> bool:
        return self.memory_gb <= self.capacity_gb

    @property
    def fit_note(self) -> str:
        """'' when the pass fits in memory, else a sentence saying by how much it does not."""
        if self.fits:
            return ""
        gpus = f"{self.tp} × {self.device}" if self.tp > 1 else f"one {self.device}"
        return (f"does not fit in memory on {gpus}: {self.memory_gb:,.0f} GB per device against "
                f"{self.capacity_gb:,.0f} GB (the points show the roofline, not a runnable pass)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "device": self.device, "phase": self.phase, "batch": self.batch,
            "seq": self.seq, "tp": self.tp, "fits": self.fits, "memory_gb": self.memory_gb,
            "capacity_gb": self.capacity_gb,
            "operators": [{"name": n, "intensity_flops_per_byte": float(i), "attainable_tflops": float(a) / TERA,
                           "time_share": float(s), "bound": b}
                          for n, i, a, s, b in zip(self.names, self.intensity, self.attainable, self.time_share,
                                                   self.bound, strict=False)],
            "whole_model": {"intensity_flops_per_byte": self.whole_intensity,
                            "attainable_tflops": self.whole_attainable / TERA},
        }


def workload_points(model, device, *, phase: str = "decode", batch: int = 1, seq: int = 1024, tp: int = 1,
                    weight_dtype: Any = None, kv_dtype: str | None = None) -> WorkloadPoints:
    """Operators of one pass at their intensity and attainable FLOP/s (method 2), plus the whole
    model's intensity (method 1). Decode: `batch` sequences attending `seq` positions; prefill:
    `batch` prompts of `seq` tokens. Operators without FLOPs or bytes (all-reduce, lookups) are left out."""
    if phase not in ("decode", "prefill"):
        raise InputError(f"phase must be decode or prefill, got {phase!r}")
    for name, v, hi in (("batch", batch, 1e7), ("seq", seq, 1e8)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
            raise InputError(f"{name} must be a whole number from 1 to {hi:g}, got {v!r}")
    dep = make_deployment(model, device, tp=tp, weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    new, past = (1, seq - 1) if phase == "decode" else (seq, 0)
    ops = dep.ops([AttentionGroup(float(batch), float(new), float(past))])
    times = time_ops(ops, dep.hardware, Efficiency.plain())
    per_pass = times.counts * times.time_s
    share = per_pass / max(per_pass.sum(), 1e-300)
    bounds = times.bound()
    keep = [i for i, op in enumerate(ops) if op.kind != COMM and float(op.flops) > 0 and float(op.bytes) > 0]
    hw = dep.hardware
    inten = np.array([float(ops[i].intensity) for i in keep])
    peaks = np.array([device_peak(hw, ops[i].precision) for i in keep])
    w = whole_model(dep.model, batch, new, past, weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype, tp=dep.tp)
    wi = float(w.intensity)
    mem = memory_use(dep.model, hw, batch=batch, context=seq, prefill_tokens=batch * new, weight_dtype=dep.weight_dtype,
                     kv_dtype=dep.kv_dtype, tp=dep.tp)
    return WorkloadPoints(
        weight_dtype=dep.weights.label, memory_gb=float(np.max(mem.total)) / 1e9, capacity_gb=mem.capacity / 1e9,
        model=dep.model.id, device=hw.id, phase=phase, batch=int(batch), seq=int(seq), tp=dep.tp,
        names=[ops[i].name for i in keep], intensity=inten,
        attainable=np.minimum(peaks, inten * hw.memory_bandwidth),
        time_share=np.asarray([float(share[i]) for i in keep]), bound=[str(bounds[i]) for i in keep],
        whole_intensity=wi,
        whole_attainable=float(attainable_flops(wi, device_peak(hw, dep.gemm_precision), hw.memory_bandwidth)),
    )


# ---- roofline chart -------------------------------------------------------------------------

def plot_roofline(devices, precisions=("fp16",), workload: dict[str, Any] | WorkloadPoints | None = None,
                  out=None, *, title: str | None = None, force: bool = True):
    """Log-log roofline: attainable TFLOP/s against arithmetic intensity (FLOPs/byte).

    One roof per device and precision (identical roofs are drawn once and named together),
    ridge points marked and labelled. `workload` (a dict of `workload_points` arguments:
    model, device, phase, batch, seq, tp, weight_dtype, or a WorkloadPoints) overlays each
    operator at its intensity and attainable FLOP/s (method 2; marker area ∝ share of the pass
    time) and the whole model (method 1, a star). Returns the Figure; saves it when `out` is given.
    """
    Figure = _mpl()
    from matplotlib.lines import Line2D

    rs = roofs(devices, precisions, skip_missing=True)
    gaps = missing_roofs(devices, precisions)
    wp = None
    if workload is not None:
        wp = workload if isinstance(workload, WorkloadPoints) else workload_points(**workload)
    if out is not None:
        check_output(out, force=force)

    ridges = [r.ridge for r in rs]
    xs = list(ridges)
    if wp is not None:
        xs += list(wp.intensity) + [wp.whole_intensity]
    xmin = 10 ** math.floor(math.log10(max(min(min(xs) / 4, 1.0), 1e-3)))
    xmax = 10 ** math.ceil(math.log10(max(xs) * 8))
    ymin_flops = min(r.bandwidth for r in rs) * xmin
    ymax_flops = max(r.peak for r in rs)

    fig = Figure(figsize=(10, 6.4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    device_order = list(dict.fromkeys(d for r in rs for d in r.devices))
    colour = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(device_order)}
    marker = {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(device_order)}
    texts: list[tuple[Any, tuple]] = []  # (annotation, candidate spots), most important first
    markers: list[tuple[float, float, float]] = []  # (x, y, radius in points) that labels must not cover
    x = np.geomspace(xmin, xmax, 400)
    roof_lines = []
    handles, labels = [], []
    for k, r in enumerate(rs):
        c = colour[r.devices[0]]
        ls = PRECISION_DASHES.get(r.precision, "-")
        y = attainable_flops(x, r.peak, r.bandwidth) / TERA
        ax.plot(x, y, color=c, lw=2.2, ls=ls, zorder=3 + 0.01 * k)
        roof_lines.append((np.geomspace(xmin, xmax, 1500), attainable_flops(np.geomspace(xmin, xmax, 1500),
                                                                            r.peak, r.bandwidth) / TERA))
        # A roof drawn later on the same slope would hide this one's slope: show it as a wide band.
        if any(q.bandwidth == r.bandwidth and q.devices[0] != r.devices[0] for q in rs[k + 1:]):
            xs_ = x[x <= r.ridge]
            ax.plot(xs_, xs_ * r.bandwidth / TERA, color=c, lw=7, alpha=0.55, zorder=2.5, solid_capstyle="butt")
        ax.plot([r.ridge], [r.peak / TERA], marker=marker[r.devices[0]], ms=8, color=c, mec="black", mew=0.8,
                ls="none", zorder=5)
        handles.append(Line2D([], [], color=c, lw=2.2, ls=ls, marker=marker[r.devices[0]], ms=7, mec="black",
                              mew=0.8))
        labels.append(f"{r.label} {r.precision}: {_num(r.peak / TERA)} TFLOP/s, {r.bandwidth / 1e12:.3g} TB/s, "
                      f"ridge {r.ridge:.0f} FLOP/B")
        markers.append((r.ridge, r.peak / TERA, 5.0))
        texts.append((ax.annotate(f"{r.ridge:.0f} FLOP/B", (r.ridge, r.peak / TERA), xytext=(-6, 7),
                                  textcoords="offset points", ha="right", va="bottom", fontsize=8.5, color=c,
                                  fontweight="bold", zorder=6, annotation_clip=True,
                                  bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}),
                      RIDGE_SPOTS))
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin_flops / TERA, ymax_flops / TERA * 3)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of memory traffic)")
    ax.set_ylabel("attainable performance (TFLOP/s, dense)")
    _plain_log_axis(ax.xaxis)
    _plain_log_axis(ax.yaxis)
    ax.grid(True, which="major", color="0.85", lw=0.8)
    ax.grid(True, which="minor", color="0.93", lw=0.5)
    if wp is not None:
        _overlay_workload(ax, wp, texts, markers, colour.get(wp.device, "black"))
        handles2, labels2 = ax.get_legend_handles_labels()
        handles += handles2
        labels += labels2
    handles.append(Line2D([], [], marker="o", color="0.4", mec="black", ls="none", ms=7))
    labels.append("ridge point: memory-bound to its left, compute-bound to its right")
    ax.legend(handles, labels, loc="lower right", fontsize=8, framealpha=0.92)
    if title is None:
        devs = ", ".join(device_order)
        title = f"Roofline of {devs} ({', '.join(dict.fromkeys(r.precision for r in rs))})"
        if wp is not None:
            title += (f"\n{wp.model} {wp.phase}, batch {wp.batch}, {'KV length' if wp.phase == 'decode' else 'prompt'} "
                      f"{wp.seq}{f', tp {wp.tp}' if wp.tp > 1 else ''} on {wp.device}, {wp.weight_dtype} weights")
    ax.set_title(title, fontsize=11)
    notes = [*gaps, *([wp.fit_note] if wp is not None and wp.fit_note else [])]
    if notes:
        ax.text(0.01, 0.99, "\n".join(n[0].upper() + n[1:] for n in notes), transform=ax.transAxes, ha="left",
                va="top", fontsize=8.5, color="#B00000", zorder=10,
                bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#B00000", "alpha": 0.9})
    _place_labels(fig, ax, texts, markers, roof_lines)
    if out is not None:
        save_figure(fig, out, force=True)
    return fig


def _short_op(name: str) -> str:
    return name.split("/")[-1]


def _overlay_workload(ax, wp: WorkloadPoints, texts: list, markers: list, colour: str) -> None:
    """Operators as circles (area ∝ time share, filled by bound) and the whole model as a star."""
    kinds = {"compute": "#FFFFFF", "memory": "#BBBBBB"}
    sizes = 30 + 500 * np.sqrt(np.clip(wp.time_share, 0, 1))
    for bound, face in kinds.items():
        sel = [i for i, b in enumerate(wp.bound) if b == bound]
        if sel:
            ax.scatter(wp.intensity[sel], wp.attainable[sel] / TERA, s=sizes[sel], c=face, edgecolors=colour,
                       linewidths=1.5, zorder=7, label=f"operator, {bound}-bound (method 2; area ∝ share of time)")
    for k in range(len(wp.names)):  # marker radius in points: area s = (2r)^2
        markers.append((float(wp.intensity[k]), float(wp.attainable[k]) / TERA, math.sqrt(sizes[k]) / 2 + 1))
    # Group operators that sit on the same spot into one label; the biggest share is placed first.
    groups: list[tuple[float, float, list[str], float]] = []
    for n, i, a, s in zip(wp.names, wp.intensity, wp.attainable, wp.time_share, strict=True):
        for g in groups:
            if abs(math.log(i / g[0])) < 0.03 and abs(math.log(a / g[1])) < 0.03:
                g[2].append(_short_op(n))
                groups[groups.index(g)] = (g[0], g[1], g[2], g[3] + s)
                break
        else:
            groups.append((i, a, [_short_op(n)], s))
    for i, a, names, _ in sorted(groups, key=lambda g: -g[3]):
        names = list(dict.fromkeys(names))
        lines, line = [], ""
        for n in names:  # wrap at about 32 characters
            if line and len(line) + len(n) > 32:
                lines.append(line.rstrip(", "))
                line = ""
            line += n + ", "
        lines.append(line.rstrip(", "))
        t = ax.annotate("\n".join(lines), (i, a / TERA), xytext=(10, -8), textcoords="offset points", ha="left",
                        va="top", fontsize=7.5, color="0.15", zorder=8, annotation_clip=True,
                        arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.7, "shrinkA": 0, "shrinkB": 2},
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.7", "alpha": 0.85})
        texts.append((t, OP_SPOTS))
    ax.scatter([wp.whole_intensity], [wp.whole_attainable / TERA], marker="*", s=380, c="#F0E442",
               edgecolors="black", linewidths=1.2, zorder=9,
               label=f"whole model (method 1): {_num(wp.whole_intensity)} FLOP/B, {_num(wp.whole_attainable / TERA)} TFLOP/s")
    markers.append((wp.whole_intensity, wp.whole_attainable / TERA, 11.0))
    ax.axvline(wp.whole_intensity, color="0.5", lw=0.8, ls=":", zorder=2)
