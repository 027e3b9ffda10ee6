"""The A-over-B comparison mesh: colour = ratio on a batch x length grid, contours at round ratios,
cells that fit on one device or neither marked. `mesh_masks`, `ratio_scale` and `mesh_summary`
feed the interactive figures, the demo text and the tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..compare import Comparison
from ..errors import InputError
from .axes import (
    _fmt_ratio,
    _label_box,
    _mpl,
    _set_count_axis,
    check_output,
    save_figure,
)

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
