"""What the static and interactive figures share: palette, output rule, tick and label text,
label placement that keeps labels off each other and off the lines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import files
from ..errors import InputError

TERA = 1e12
STATIC_FORMATS = ("png", "svg", "pdf")
# Okabe-Ito: distinguishable with the common colour-vision deficiencies (yellow left out: too pale).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


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


def _num(v: float) -> str:
    """3 significant digits without exponents: 0.606, 10.8, 153, 2,250."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _label_box(texts, bold: bool = False) -> None:
    """Contour labels on a white box, readable over any colour or hatch."""
    for t in texts:
        t.set_bbox({"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
        if bold:
            t.set_fontweight("bold")
