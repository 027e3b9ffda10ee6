"""The LLMRoofline article's pictures as static figures (matplotlib): roofline chart and A-over-B meshes.

matplotlib is imported inside the functions, and figures are built as `matplotlib.figure.Figure`
objects (no pyplot, no global backend switch), so the core never imports it and a caller's
interactive backend is left alone. Every `out=` path is saved by its extension: .png, .svg or .pdf.

The data behind each picture comes from plain functions (`roofs`, `workload_points`,
`mesh_masks`, `ratio_scale`) that the interactive figures and the tests reuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .compare import Comparison
from .efficiency import Efficiency
from .errors import InputError
from .estimate import make_deployment
from .hardware import Hardware, load_hardware
from .intensity import whole_model
from .memory import memory_use
from .operators import COMM, AttentionGroup
from .precision import normalize
from .roofline import attainable_flops, device_peak, time_ops

TERA = 1e12
STATIC_FORMATS = ("png", "svg", "pdf")
# Okabe-Ito: distinguishable with the common colour-vision deficiencies (yellow left out: too pale).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
PRECISION_DASHES: dict[str, Any] = {
    "fp16": "-", "bf16": "-", "fp8": "--", "int8": "-.", "fp4": ":", "int4": ":",
    "tf32": (0, (5, 1, 1, 1, 1, 1)), "fp32": (0, (1, 1)),
}
METHOD_TITLES = {"ops": "method 2: per operator", "whole": "method 1: whole model"}
METRIC_TITLES = {"decode": "decode throughput", "ttft": "prefill throughput", "e2e": "static-batch throughput"}
# Ratio levels that get a labelled contour line and a colour-bar tick (A/B).
RATIO_LEVELS = (1 / 16, 0.1, 1 / 8, 1 / 6, 0.25, 1 / 3, 0.5, 2 / 3, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0,
                10.0, 16.0)


def ratio_levels(lo: float, hi: float, most: int = 11) -> list[float]:
    """Round ratios inside [lo, hi], thinned so that neighbours are at least 1/most of the log
    range apart (1 is always kept when inside): colour-bar ticks and contour levels."""
    gap = math.log(hi / lo) / most
    kept: list[float] = []
    for v in _LEVEL_PRIORITY:  # the roundest ratios first
        if lo <= v <= hi and all(abs(math.log(v / k)) >= gap * 0.999 for k in kept):
            kept.append(v)
    return sorted(kept)


_LEVEL_PRIORITY = (1.0, 2.0, 0.5, 4.0, 0.25, 8.0, 1 / 8, 16.0, 1 / 16, 1.5, 2 / 3, 3.0, 1 / 3, 1.25, 0.8, 6.0,
                   1 / 6, 10.0, 0.1)
MASK_STYLES = {  # category -> (hatch, face colour RGBA)
    "a": ("////", (1, 1, 1, 0.45)),  # half washed out: only one device can run it
    "b": ("\\\\\\\\", (1, 1, 1, 0.45)),
    "neither": ("xx", (0.93, 0.93, 0.93, 0.85)),  # nearly grey: the roofline's ratio, but not achievable
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


def mesh_masks(c: Comparison) -> dict[str, np.ndarray]:
    """Cells that do not fit in memory, by who fails: `a` (only A), `b` (only B), `neither`."""
    fa, fb = np.asarray(c.fits_a, dtype=bool), np.asarray(c.fits_b, dtype=bool)
    return {"a": ~fa & fb, "b": fa & ~fb, "neither": ~fa & ~fb}


def check_plottable(c: Comparison) -> None:
    """InputError for a mesh with no cell that fits on either device (the picture would say nothing)."""
    if not (np.asarray(c.fits_a, dtype=bool) | np.asarray(c.fits_b, dtype=bool)).any():
        raise InputError(
            f"{c.model} fits in memory on neither {c.labels.get('a', c.a)} nor {c.labels.get('b', c.b)} "
            f"anywhere in the grid (batch {c.batch.min():g}..{c.batch.max():g}, seq {c.seq.min():g}..{c.seq.max():g}); "
            "use more devices (--tp-a/--tp-b), smaller weights (--weight-dtype-a/-b fp8 or int4) or a smaller grid")


def ratio_scale(*comparisons: Comparison) -> float:
    """Half-width v of a colour scale [1/v, v] on a log axis, centred on 1, covering every ratio."""
    worst = 1.0
    for c in comparisons:
        r = np.asarray(c.ratio, dtype=float)
        r = r[np.isfinite(r) & (r > 0)]
        if r.size:
            worst = max(worst, float(r.max()), 1.0 / float(r.min()))
    return max(worst * 1.05, 1.25)


def cell_edges(values) -> np.ndarray:
    """Edges of log-spaced cells centred on `values` (geometric midpoints; one value gets ×/÷ √2)."""
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] / math.sqrt(2), v[0] * math.sqrt(2)])
    mid = np.sqrt(v[:-1] * v[1:])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def mask_runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """Horizontal runs of True cells: (row, first column, last column + 1)."""
    runs = []
    m = np.asarray(mask, dtype=bool)
    for i, row in enumerate(m):
        padded = np.concatenate([[False], row, [False]]).astype(np.int8)
        d = np.diff(padded)
        for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=False):
            runs.append((i, int(s), int(e)))
    return runs


EQUAL = 1e-9  # ratios within this of 1 count as equal, not as a win for either device


def _where(c: Comparison, r: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Who wins among the cells of `mask`: counts, A's region, and each device's best cell."""
    a_wins, b_wins = mask & (r > 1 + EQUAL), mask & (r < 1 - EQUAL)
    out: dict[str, Any] = {"cells": int(mask.sum()), "a_wins": int(a_wins.sum()), "b_wins": int(b_wins.sum())}

    def cell(k: int) -> dict[str, float]:
        i, j = divmod(k, r.shape[1])
        return {"batch": float(c.batch[i]), "seq": float(c.seq[j]), "ratio": float(r[i, j])}

    if a_wins.any():
        i, j = np.nonzero(a_wins)
        out["a_wins_batch_min"] = float(c.batch[i].min())
        out["a_wins_seq_max"] = float(c.seq[j].max())
        out["best_for_a"] = cell(int(np.argmax(np.where(a_wins, r, -np.inf))))
    if b_wins.any():
        out["best_for_b"] = cell(int(np.argmin(np.where(b_wins, r, np.inf))))
    return out


def mesh_summary(c: Comparison) -> dict[str, Any]:
    """Numbers that describe a mesh in words: where A wins, the range of ratios, cells that do not fit.

    The headline numbers over the whole grid (`a_wins`, `best_for_a`, ...) are the roofline's,
    memory ignored; `fit_both_summary` repeats them over the cells that fit on both devices, the
    ones a deployment can run. Ratios within 1e-9 of 1 are equal (`equal`: every cell is).
    """
    r = np.asarray(c.ratio, dtype=float)
    both = np.asarray(c.fits_a, dtype=bool) & np.asarray(c.fits_b, dtype=bool)
    masks = mesh_masks(c)
    out: dict[str, Any] = {
        "cells": int(r.size), "fit_both": int(both.sum()),
        "not_fit_a": int((~np.asarray(c.fits_a, dtype=bool)).sum()),
        "not_fit_b": int((~np.asarray(c.fits_b, dtype=bool)).sum()),
        "fit_neither": int(masks["neither"].sum()),
        "ratio_min": float(np.nanmin(r)), "ratio_max": float(np.nanmax(r)),
        "a_wins": int((r > 1 + EQUAL).sum()), "a_wins_fit_both": int(((r > 1 + EQUAL) & both).sum()),
        "equal": bool(np.all(np.abs(r - 1) <= EQUAL)),
    }
    if both.any():
        out["ratio_min_fit_both"] = float(r[both].min())
        out["ratio_max_fit_both"] = float(r[both].max())
        out["fit_both_summary"] = _where(c, r, both)
    whole = _where(c, r, np.ones_like(both))
    out["grid_summary"] = whole
    for key in ("a_wins_batch_min", "a_wins_seq_max", "best_for_a"):
        if key in whole:
            out[key] = whole[key]
    k = int(np.argmin(r))
    out["best_for_b"] = {"batch": float(c.batch[k // r.shape[1]]), "seq": float(c.seq[k % r.shape[1]]),
                         "ratio": float(r.flat[k])}
    return out


# ---- helpers -------------------------------------------------------------------------------

def _mpl():
    """matplotlib, imported on first use (Agg canvas; pyplot is never touched)."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - matplotlib is a dependency
        raise InputError("figures need matplotlib: pip install matplotlib") from e
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def new_figure(**kwargs):
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)  # a canvas that can measure text; savefig picks the writer by format
        return fig

    return new_figure


def check_output(path, formats=STATIC_FORMATS, *, force: bool = False, owned: bool = False) -> Path:
    """A path we may write (`files.check_output`: known extension, existing folder, no symbolic
    link, no existing file in the way unless `force` or `owned`, i.e. written by us, e.g. inside
    the demo folder)."""
    return files.check_output(path, formats, force=force, owned=owned)


def save_figure(fig, out, *, force: bool = True, dpi: int = 150) -> Path:
    """Save a matplotlib figure by extension (.png, .svg, .pdf); InputError if it cannot be written.
    A symbolic link is never written through."""
    p = check_output(out, STATIC_FORMATS, force=force)
    try:
        with files.open_output(p, force=force, binary=True) as f:
            fig.savefig(f, format=p.suffix.lower().lstrip("."), dpi=dpi, bbox_inches="tight",
                        metadata={"Creator": "llmroofline"} if p.suffix.lower() != ".png" else {"Software": "llmroofline"})
    except OSError as e:
        raise InputError(f"cannot write {str(p)!r}: {e.strerror or e}") from None
    return p


# Candidate spots for a label around its point: (dx, dy) in points, horizontal and vertical alignment.
RIDGE_SPOTS = ((-6, 7, "right", "bottom"), (6, 7, "left", "bottom"), (6, -9, "left", "top"),
               (-6, -9, "right", "top"), (-6, 22, "right", "bottom"), (6, 22, "left", "bottom"),
               (6, -24, "left", "top"), (-6, -24, "right", "top"), (-14, 0, "right", "center_baseline"),
               (14, 0, "left", "center_baseline"))
OP_SPOTS = ((10, -8, "left", "top"), (10, 8, "left", "bottom"), (-10, 8, "right", "bottom"),
            (-10, -8, "right", "top"), (16, -26, "left", "top"), (-16, 26, "right", "bottom"),
            (16, 26, "left", "bottom"), (-16, -26, "right", "top"), (28, -46, "left", "top"),
            (-28, 46, "right", "bottom"), (28, 46, "left", "bottom"), (-28, -46, "right", "top"))


def _place_labels(fig, ax, labels, markers, lines=()) -> None:
    """Put each annotation at the first candidate spot that stays inside the axes and overlaps no
    label placed before it, no marker, no line and not the legend (else at the least bad spot).

    labels: [(Annotation, spots)] in order of importance; markers: [(x, y, radius in points)];
    lines: [(xs, ys)] arrays of points along lines, in data coordinates.
    Runs the layout first, so the geometry measured here is the final one; labels are kept out
    of the layout so they can never squeeze the axes.
    """
    from matplotlib.transforms import Bbox

    for t, _ in labels:
        t.set_in_layout(False)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    obstacles = []  # (box, weight): covering a label or the legend is worse than a marker or a line
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append((legend.get_window_extent(renderer), 10))
    for x, y, r in markers:
        cx, cy = ax.transData.transform((x, y))
        obstacles.append((Bbox.from_bounds(cx - r * px, cy - r * px, 2 * r * px, 2 * r * px), 4))
    from matplotlib.text import Text

    pieces = [ax.transData.transform(np.column_stack([xs, ys])) for xs, ys in lines]
    line_px = np.concatenate(pieces) if pieces else np.zeros((0, 2))

    for t, spots in labels:
        # The box of each spot is computed from the text's size and its point: an annotation's own
        # extent lags behind changes of its offset until it is drawn.
        size = Text.get_window_extent(t, renderer)
        pad = 0.3 * t.get_fontsize() * px
        w, h = size.width + 2 * pad, size.height + 2 * pad
        ax_, ay_ = ax.transData.transform(t.xy)
        best = None
        for dx, dy, ha, va in spots:
            x0 = ax_ + dx * px - (w if ha == "right" else 0.0)
            y0 = ay_ + dy * px - {"top": h, "bottom": 0.0}.get(va, h / 2)
            bb = Bbox.from_bounds(x0, y0, w, h)
            outside = bb.x0 < frame.x0 or bb.x1 > frame.x1 or bb.y0 < frame.y0 or bb.y1 > frame.y1
            crossed = bool(np.any((line_px[:, 0] > x0) & (line_px[:, 0] < x0 + w)
                                  & (line_px[:, 1] > y0) & (line_px[:, 1] < y0 + h)))
            score = 100 * outside + sum(wt for o, wt in obstacles if bb.overlaps(o)) + crossed
            if best is None or score < best[0]:
                best = (score, dx, dy, ha, va, bb)
            if score == 0:
                break
        assert best is not None
        _, dx, dy, ha, va, bb = best
        t.xyann = (dx, dy)
        t.set_horizontalalignment(ha)
        t.set_verticalalignment(va)
        obstacles.append((bb, 10))


def _fmt_count(v: float) -> str:
    """128 -> '128', 2048 -> '2k', 131072 -> '128k', 1048576 -> '1M'."""
    v = float(v)
    if v >= 1 << 20 and v % (1 << 20) == 0:
        return f"{int(v) >> 20}M"
    if v >= 1024 and v % 1024 == 0:
        return f"{int(v) >> 10}k"
    if v >= 10000:
        return f"{v / 1000:.0f}k"
    return f"{v:g}"


def _fmt_ratio(v: float) -> str:
    return f"{v:.3g}×"


def _log2_ticks(lo: float, hi: float, max_ticks: int = 8) -> list[float]:
    """Powers of two inside [lo, hi], thinned to at most max_ticks."""
    k0, k1 = math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9)
    ks = list(range(k0, k1 + 1))
    step = max(1, math.ceil(len(ks) / max_ticks))
    return [2.0 ** k for k in ks[::step]] or [lo, hi]


def _fmt_decade(v: float) -> str:
    """Plain numbers on log axes (0.1, 1, 10, 1k, 10k): cheaper and easier to read than 10^k."""
    if v >= 1000:
        return _fmt_count(v) if v % 1024 == 0 else f"{v / 1000:g}k"
    return f"{v:g}"


def _plain_log_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_decade(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    axis.set_minor_formatter(NullFormatter())


def _set_count_axis(axis, values, lo, hi) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = _log2_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_count(v)))
    axis.set_minor_locator(NullLocator())


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


def _num(v: float) -> str:
    """3 significant digits without exponents: 0.606, 10.8, 153, 2,250."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


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


# ---- comparison mesh ----------------------------------------------------------------------

def _mesh_title(c: Comparison) -> str:
    a, b = c.labels.get("a", c.a), c.labels.get("b", c.b)
    return (f"{c.model}: {a} / {b}\n{METHOD_TITLES.get(c.method, c.method)}, "
            f"{METRIC_TITLES.get(c.metric, c.metric)} ({c.unit})")


def _x_label(c: Comparison) -> str:
    if c.metric == "decode":
        return "sequence length (tokens in the KV cache)"
    if c.metric == "ttft":
        return "prompt length (tokens)"
    return "prompt length (tokens; then a fixed number of output tokens)"


def _draw_mesh(fig, ax, c: Comparison, vmax: float, *, colorbar: bool = True):
    """One mesh panel; returns (QuadMesh, legend handles for the masks present)."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch, PathPatch
    from matplotlib.path import Path

    r = np.asarray(c.ratio, dtype=float)
    xe, ye = cell_edges(c.seq), cell_edges(c.batch)
    norm = LogNorm(vmin=1 / vmax, vmax=vmax)
    qm = ax.pcolormesh(xe, ye, np.ma.masked_invalid(r), cmap="PuOr", norm=norm, shading="flat",
                       rasterized=True)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    _set_count_axis(ax.xaxis, c.seq, xe[0], xe[-1])
    _set_count_axis(ax.yaxis, c.batch, ye[0], ye[-1])
    ax.set_xlabel(_x_label(c))
    ax.set_ylabel("batch size (sequences)")

    # Contours of the ratio on the log scale (smooth between cell centres); 1 is drawn thick. They are
    # drawn only where at least one device can hold the workload: not across cells that fit on neither.
    runnable = np.asarray(c.fits_a, dtype=bool) | np.asarray(c.fits_b, dtype=bool)
    if r.shape[0] > 1 and r.shape[1] > 1 and np.isfinite(r).all() and runnable.sum() >= 4:
        lr = np.ma.masked_array(np.log(r), mask=~runnable)
        levels = [v for v in ratio_levels(1 / vmax, vmax, most=9) if lr.min() < math.log(v) < lr.max()]
        thin = [v for v in levels if v != 1.0]
        if thin:
            cs = ax.contour(c.seq, c.batch, lr, levels=[math.log(v) for v in thin], colors="0.25",
                            linewidths=0.8, linestyles="--", zorder=4)
            _label_box(ax.clabel(cs, fmt=lambda v: _fmt_ratio(math.exp(v)), fontsize=7.5, inline=True))
        if 1.0 in levels:
            cs1 = ax.contour(c.seq, c.batch, lr, levels=[0.0], colors="black", linewidths=2.2, zorder=5)
            _label_box(ax.clabel(cs1, fmt=lambda v: "1× (equal)", fontsize=8.5, inline=True), bold=True)

    # Cells that do not fit in memory: hatched (only one device fails) or grey and cross-hatched (both).
    handles = []
    masks = mesh_masks(c)
    names = {"a": f"does not fit on {c.labels.get('a', c.a)}", "b": f"does not fit on {c.labels.get('b', c.b)}",
             "neither": "fits on neither device"}
    for key, mask in masks.items():
        if not mask.any():
            continue
        hatch, face = MASK_STYLES[key]
        # One compound path of rectangles per category: one draw call, seamless hatching.
        verts, codes = [], []
        for i, j0, j1 in mask_runs(mask):
            x0, x1, y0, y1 = xe[j0], xe[j1], ye[i], ye[i + 1]
            verts += [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
            codes += [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
        ax.add_patch(PathPatch(Path(verts, codes), facecolor=face, edgecolor="0.2", hatch=hatch, lw=0, zorder=3))
        handles.append(Patch(facecolor=face if face[3] else "white", edgecolor="0.2", hatch=hatch,
                             label=f"{names[key]} ({int(mask.sum())} cells)"))
    cb = None
    if colorbar:
        cb = _ratio_colorbar(fig, qm, [ax], c, vmax)
    return qm, handles, cb


def _label_box(texts, bold: bool = False) -> None:
    """Contour labels on a white box, readable over any colour or hatch."""
    for t in texts:
        t.set_bbox({"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
        if bold:
            t.set_fontweight("bold")


def _ratio_colorbar(fig, mappable, axes, c: Comparison, vmax: float):
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    cb = fig.colorbar(mappable, ax=axes, shrink=0.9, pad=0.02)
    ticks = ratio_levels(1 / vmax, vmax)
    cb.ax.yaxis.set_major_locator(FixedLocator(ticks))
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_ratio(v)))
    cb.ax.yaxis.set_minor_locator(NullLocator())
    a, b = c.labels.get("a", c.a), c.labels.get("b", c.b)
    cb.set_label(f"{a} / {b} ({c.unit})\n> 1: {c.a} faster · < 1: {c.b} faster", fontsize=9)
    return cb


def plot_comparison(comparison: Comparison, out=None, ax=None, *, vmax: float | None = None,
                    force: bool = True, allow_unfit: bool = False):
    """The LLMRoofline article's mesh: sequence length (x, log) × batch (y, log), colour = A/B ratio on a
    diverging log scale centred on 1 (purple: A faster, orange: B faster), dashed labelled
    contours at round ratios and a thick one at 1. Cells that do not fit in memory are hatched
    (`///` A, `\\\\\\` B) or greyed and cross-hatched (neither), as the legend says.

    Draws into `ax` when given (no colour bar then; the caller adds one), else into a new
    Figure. InputError when no cell fits on either device, unless `allow_unfit`.
    """
    Figure = _mpl()
    if not allow_unfit:
        check_plottable(comparison)
    if out is not None:
        check_output(out, force=force)
    vmax = vmax or ratio_scale(comparison)
    if ax is None:
        fig = Figure(figsize=(8.6, 6.6), layout="constrained")
        ax = fig.add_subplot()
        _, handles, _ = _draw_mesh(fig, ax, comparison, vmax)
        ax.set_title(_mesh_title(comparison), fontsize=10.5)
        _mask_legend(ax, handles)
    else:
        fig = ax.figure
        _, handles, _ = _draw_mesh(fig, ax, comparison, vmax, colorbar=False)
        _mask_legend(ax, handles)
    if out is not None:
        save_figure(fig, out, force=True)
    return fig


def _mask_legend(ax, handles) -> None:
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(len(handles), 2),
                  fontsize=8.5, frameon=False, handleheight=1.6, handlelength=2.4)


def plot_comparison_pair(ops: Comparison, whole: Comparison, out=None, *, force: bool = True,
                         allow_unfit: bool = False):
    """Both methods side by side on one colour scale, as in the article: method 2 (per operator)
    on the left, method 1 (whole model) on the right."""
    Figure = _mpl()
    if not allow_unfit:
        check_plottable(ops)
    if out is not None:
        check_output(out, force=force)
    vmax = ratio_scale(ops, whole)
    fig = Figure(figsize=(15, 6.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    qm = None
    legend: dict[str, Any] = {}
    for ax, c in zip(axes, (ops, whole), strict=False):
        qm, handles, _ = _draw_mesh(fig, ax, c, vmax, colorbar=False)
        ax.set_title(METHOD_TITLES.get(c.method, c.method), fontsize=10.5)
        legend.update({h.get_label(): h for h in handles})
    axes[1].set_ylabel("")
    if legend:
        fig.legend(handles=list(legend.values()), loc="outside lower center", ncol=min(len(legend), 3),
                   fontsize=9, frameon=False, handleheight=1.6, handlelength=2.4)
    _ratio_colorbar(fig, qm, list(axes), ops, vmax)
    a, b = ops.labels.get("a", ops.a), ops.labels.get("b", ops.b)
    fig.suptitle(f"{ops.model}: {a} / {b}, {METRIC_TITLES.get(ops.metric, ops.metric)} ({ops.unit})",
                 fontsize=12)
    if out is not None:
        save_figure(fig, out, force=True)
    return fig
