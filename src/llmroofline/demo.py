"""The LLMRoofline article, end to end, on built-in data: `run_demo(out_dir)`.

Writes the roofline chart of the article's six GPUs, a workload placed on it (both methods),
the A100-over-H20 meshes of Llama-2-13B, Llama-2-70B, Mistral-7B and Mixtral-8x7B by both
methods (the 70B on four and on two devices each and Mixtral on one and two, so that they fit), the article's LLaMA-7B
table against our plain and calibrated estimates, and an `index.html` that shows them all with
a reading of each figure generated from the numbers.
"""

from __future__ import annotations

import csv
import html
import json
import math
import multiprocessing as mp
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .compare import Comparison, compare
from .errors import InputError
from .estimate import estimate
from .files import check_output, open_output, write_text
from .hardware import load_hardware
from .memory import weights_per_device
from .model import load_model
from .plots import mesh_summary, plot_comparison_pair, plot_roofline, roofs, workload_points

MARKER = ".llmroofline-demo"
DEVICES = ("A100-SXM4-80GB", "H20", "A800-SXM4-80GB", "L40S", "L20", "RTX-4090")
A, B = "A100-SXM4-80GB", "H20"
GRID: dict[str, Any] = {"batch": "1:1024:36", "seq": "128:65536:36"}
WORKLOAD: dict[str, Any] = {"model": "meta-llama/Llama-2-13b-hf", "device": A, "phase": "decode", "batch": 16, "seq": 1024}


@dataclass(frozen=True)
class MeshCase:
    slug: str
    model: str
    tp: int = 1


MESHES = (
    MeshCase("llama2-13b", "meta-llama/Llama-2-13b-hf"),
    # 140 GB of fp16 weights fit on no single A100 or H20: the 70B runs on 4 devices each (and on 2,
    # where long sequences no longer fit).
    MeshCase("llama2-70b", "meta-llama/Llama-2-70b-hf", tp=4),
    MeshCase("llama2-70b-tp2", "meta-llama/Llama-2-70b-hf", tp=2),
    MeshCase("mistral-7b", "mistralai/Mistral-7B-v0.1"),
    MeshCase("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1"),
    MeshCase("mixtral-8x7b-tp2", "mistralai/Mixtral-8x7B-v0.1", tp=2),
)

# The article's table: LLaMA-7B on A100, static batches; measured TensorRT-LLM and LLM-Viewer tok/s.
TABLE_MODEL = "meta-llama/Llama-2-7b-hf"
ARTICLE_TABLE = (  # batch, input, output, TensorRT-LLM, LLM-Viewer
    (256, 128, 128, 5353, 8934),
    (32, 128, 2048, 1518, 2796),
    (32, 2048, 128, 547, 788),
    (16, 2048, 2048, 613, 1169),
)
TABLE_COLUMNS = ("batch", "input_len", "output_len", "trt_llm_tok_s", "llm_viewer_tok_s", "llm_viewer_error_pct",
                 "ours_plain_tok_s", "ours_plain_error_pct", "ours_calibrated_tok_s", "ours_calibrated_error_pct")


# ---- the output folder ------------------------------------------------------------------------

def prepare_out_dir(out_dir, force: bool = False) -> Path:
    """Create the demo folder, or reuse one the demo made before (it holds MARKER). A folder
    with other files in it is refused unless `force`."""
    d = Path(out_dir).expanduser()
    if d.exists() and not d.is_dir():
        raise InputError(f"demo output {str(d)!r} is a file, not a folder")
    if d.exists() and any(d.iterdir()) and not (d / MARKER).exists() and not force:
        raise InputError(f"demo output folder {str(d)!r} is not empty and was not made by `llmroofline demo`; "
                         "choose another --out or pass --force")
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / MARKER).write_text("This folder was written by `llmroofline demo`; it may be overwritten.\n")
    except OSError as e:
        raise InputError(f"cannot write to {str(d)!r}: {e.strerror or e}") from None
    return d


# ---- the article's table -------------------------------------------------------------------------

TABLE_RUNTIME = "trtllm@0.8"


def article_table(calibration: str = "default") -> list[dict[str, Any]]:
    """The article's LLaMA-7B / A100 rows with our plain-roofline and calibrated estimates.
    Errors in % relative to TensorRT-LLM's measured throughput (positive: we predict faster)."""
    b, i, o, trt, viewer = (np.array(col, dtype=float) for col in zip(*ARTICLE_TABLE, strict=False))
    # The measurements are TensorRT-LLM v0.8 runs: the calibrated estimate uses that stack's profile.
    kw: dict[str, Any] = dict(batch=b, input_len=i, output_len=o, mode="static", runtime=TABLE_RUNTIME)
    plain = estimate(TABLE_MODEL, A, calibration="none", **kw).throughput_tok_s
    cal = estimate(TABLE_MODEL, A, calibration=calibration, **kw).throughput_tok_s

    def err(x):
        return (x - trt) / trt * 100

    rows = []
    for k in range(len(trt)):
        values = (b[k], i[k], o[k], trt[k], viewer[k], err(viewer)[k], plain[k], err(plain)[k], cal[k], err(cal)[k])
        rows.append({c: (int(v) if c in ("batch", "input_len", "output_len") else round(float(v), 1))
                     for c, v in zip(TABLE_COLUMNS, values, strict=False)})
    return rows


def _write_table(rows: list[dict[str, Any]], d: Path) -> tuple[Path, Path]:
    csv_path, md_path = d / "llama2-7b_a100_table.csv", d / "llama2-7b_a100_table.md"
    with open_output(check_output(csv_path, None, owned=True), force=True) as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    head = ["batch", "input", "output", "TRT-LLM tok/s (measured)", "LLM-Viewer tok/s", "LLM-Viewer error",
            "ours, plain roofline", "error", "ours, calibrated", "error"]
    lines = [f"LLaMA-7B ({TABLE_MODEL}) on {A}, static batches, fp16 weights and KV cache; llmroofline plain "
             "roofline and calibrated. Errors relative to TensorRT-LLM.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["batch"], r["input_len"], r["output_len"], f"{r['trt_llm_tok_s']:,.0f}",
                 f"{r['llm_viewer_tok_s']:,.0f}", f"{r['llm_viewer_error_pct']:+.0f}%",
                 f"{r['ours_plain_tok_s']:,.0f}", f"{r['ours_plain_error_pct']:+.0f}%",
                 f"{r['ours_calibrated_tok_s']:,.0f}", f"{r['ours_calibrated_error_pct']:+.0f}%"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    write_text(md_path, "\n".join(lines) + "\n", force=True)
    return csv_path, md_path


def _plot_table(rows: list[dict[str, Any]]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series = (("trt_llm_tok_s", "TensorRT-LLM (measured)", "#000000", ""),
              ("llm_viewer_tok_s", "LLM-Viewer (roofline)", "#999999", "//"),
              ("ours_plain_tok_s", "llmroofline, plain roofline", "#56B4E9", ".."),
              ("ours_calibrated_tok_s", "llmroofline, calibrated", "#0072B2", ""))
    x = np.arange(len(rows))
    w = 0.2
    for k, (key, label, colour, hatch) in enumerate(series):
        vals = [r[key] for r in rows]
        bars = ax.bar(x + (k - 1.5) * w, vals, w, label=label, color=colour, hatch=hatch, edgecolor="black", lw=0.6)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in vals], fontsize=7.5, padding=2)
    ax.set_xticks(x, [f"batch {r['batch']}\nin {r['input_len']} / out {r['output_len']}" for r in rows])
    ax.set_ylabel("throughput (output tokens/s)")
    ax.set_title(f"LLaMA-7B on {A}, static batches, fp16 weights and KV cache:\nmeasured throughput against "
                 "the plain and the calibrated roofline", fontsize=11)
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # 8,000 as on the bars
    ax.legend(fontsize=9)
    ax.margins(y=0.12)
    return fig


# ---- readings: each figure in words, from its numbers ----------------------------------------------

def _pct(n: int, total: int) -> str:
    return f"{100 * n / max(total, 1):.0f}%"


def _fmt_len(v: float) -> str:
    v = float(v)
    return f"{v / 1024:.0f}k" if v >= 4096 else f"{v:,.0f}"


def _roofline_reading() -> str:
    rs = {r.devices[0]: r for r in roofs(DEVICES)}
    shared = [r for r in rs.values() if len(r.devices) > 1]
    a, b = rs[A], rs[B]
    fastest_bw = max(rs.values(), key=lambda r: r.bandwidth)
    top = max(rs.values(), key=lambda r: r.peak)
    cross = b.peak / a.bandwidth  # above this intensity A's roof is higher than B's
    text = (f"{fastest_bw.label} has the steepest line ({fastest_bw.bandwidth / 1e12:.1f} TB/s): below "
            f"{cross:.0f} FLOP/B it beats {A} ({a.bandwidth / 1e12:.2f} TB/s) by up to "
            f"{b.bandwidth / a.bandwidth:.2f}×, and it reaches its low {b.peak / 1e12:.0f} TFLOP/s roof already at "
            f"{b.ridge:.0f} FLOP/B. Above {cross:.0f} FLOP/B {A}'s {a.peak / 1e12:.0f} TFLOP/s roof wins by up to "
            f"{a.peak / b.peak:.2f}×. {top.label} has the highest fp16 roof ({top.peak / 1e12:.0f} TFLOP/s) but only "
            f"{top.bandwidth / 1e12:.3f} TB/s, so it needs {top.ridge:.0f} FLOP/B to use it; a decode pass, at a few "
            f"to a few hundred FLOP/B, is memory-bound on it.")
    for r in shared:
        text += (f" {' and '.join(r.devices)} share one roof: the A800 differs from the A100 only in its "
                 f"NVLink speed, which a roofline of one device does not see.")
    return text


def _workload_reading() -> str:
    wp = workload_points(**WORKLOAD)
    hw = load_hardware(WORKLOAD["device"])
    ridge = hw.ridge_intensity("fp16")
    gemm = [i for i, n in enumerate(wp.names) if n.endswith("_proj")]
    attn = [i for i, n in enumerate(wp.names) if n.startswith("attn/") and not n.endswith("_proj") and "norm" not in n]
    g_int = float(np.median(wp.intensity[gemm])) if gemm else float("nan")
    a_int = float(np.median(wp.intensity[attn])) if attn else float("nan")
    a_share = float(wp.time_share[attn].sum()) if attn else 0.0
    g_share = float(wp.time_share[gemm].sum()) if gemm else 0.0
    return (f"One decode step of {wp.model} (batch {wp.batch}, {wp.seq} tokens in the KV cache) on {wp.device}. "
            f"Method 2 places every operator: the linear layers sit at about {g_int:.0f} FLOP/B (≈ batch: each "
            f"weight byte is used once per sequence) and take {g_share:.0%} of the time; attention sits at "
            f"{a_int:.1f} FLOP/B whatever the batch, since every sequence reads its own KV cache, and takes "
            f"{a_share:.0%}. Method 1 lumps them into one point at {wp.whole_intensity:.1f} FLOP/B. All of it is "
            f"far left of the {ridge:.0f} FLOP/B ridge: the step is memory-bound and runs at "
            f"{wp.whole_attainable / 1e12:.0f} of {hw.peak('fp16') / 1e12:.0f} TFLOP/s.")


def _a_region(c: Comparison) -> str:
    s = mesh_summary(c)
    if not s["a_wins"]:
        return (f"{c.a} is slower in every cell (ratio {s['ratio_min']:.2f}–{s['ratio_max']:.2f}: "
                f"{c.b} is {1 / s['ratio_max']:.2f}× to {1 / s['ratio_min']:.2f}× faster)")
    return (f"{c.a} is faster in {_pct(s['a_wins'], s['cells'])} of the grid (up to {s['ratio_max']:.2f}×), all at "
            f"batch ≥ {s['a_wins_batch_min']:,.0f} and length ≤ {_fmt_len(s['a_wins_seq_max'])}; "
            f"{c.b} wins the rest, by up to {1 / s['ratio_min']:.2f}×")


def _memory_sentence(c: Comparison) -> str:
    s = mesh_summary(c)
    la, lb = c.labels.get("a", c.a), c.labels.get("b", c.b)
    if s["fit_neither"] == s["cells"]:
        return (f"Memory: the model fits on neither {la} nor {lb} anywhere in this grid, so the whole mesh is "
                "washed out and cross-hatched: it shows the roofline's verdict, not a runnable deployment.")
    if s["not_fit_a"] == 0 and s["not_fit_b"] == 0:
        return "Memory: every cell fits on both devices."
    return (f"Memory: {s['not_fit_a']} of {s['cells']} cells do not fit on {la} and {s['not_fit_b']} not on {lb} "
            f"({s['fit_neither']} on neither: washed out and cross-hatched; one device short: single-hatched).")


def _mesh_reading(case: MeshCase, ops: Comparison, whole: Comparison, ref: Comparison | None,
                  single: Comparison | None) -> str:
    """ref: Llama-2-13B by method 1 (the article's reference); single: this model on one device each."""
    m = load_model(case.model)
    s_whole = mesh_summary(whole)
    text = (f"Method 2 (per operator): {_a_region(ops)}. Method 1 (whole model): {_a_region(whole)}. "
            f"{_memory_sentence(ops)} ")
    if s_whole["a_wins"] and case.slug == "llama2-13b":
        text += (f"Where {A} wins, sequences are short and batches large: the weights are read once for many "
                 f"tokens and the KV cache is small, so the pass is compute-bound and {A}'s 312 TFLOP/s beat "
                 f"{B}'s 148; everywhere else {B}'s 4.0 TB/s against 2.04 TB/s decides. ")
    pct_w = s_whole["a_wins"] / s_whole["cells"]
    if case.slug.startswith("llama2-70b") and ref is not None:
        ref_pct = mesh_summary(ref)["a_wins"] / ref.ratio.size
        text += (f"GQA ({m.num_kv_heads} KV heads for {m.num_heads} query heads) makes the KV cache "
                 f"{m.num_heads // m.num_kv_heads}× smaller per token than multi-head attention, so the pass stays "
                 f"compute-bound to longer sequences: {A}'s region is {pct_w:.0%} of the grid by method 1, against "
                 f"{ref_pct:.0%} for Llama-2-13B (no GQA){' — it grows, as in the LLMRoofline article' if pct_w > ref_pct else ''}. ")
    if case.slug.startswith("mistral") and ref is not None:
        ref_pct = mesh_summary(ref)["a_wins"] / ref.ratio.size
        verdict = "smaller than" if pct_w < ref_pct else "larger than"
        text += (f"By method 1 {A}'s region is {pct_w:.0%} of the grid, {verdict} Llama-2-13B's {ref_pct:.0%}. "
                 f"The LLMRoofline article found it smaller and put that down to the smaller hidden size ({m.hidden_size} vs "
                 f"5120); ")
        if pct_w >= ref_pct:
            text += (f"here GQA ({m.num_heads // m.num_kv_heads}:1) and the {m.sliding_window}-token sliding window "
                     "(the KV cache read per step stops growing) weigh more, so the region does not shrink. ")
        else:
            text += "our numbers agree. "
    if m.is_moe:
        ratio = m.params_active / m.params_total
        grid_b = whole.batch
        wins = whole.ratio > 1
        max_b_all_lose = float(grid_b[~wins.any(axis=1)].max()) if (~wins.any(axis=1)).any() else 0.0
        text += (f"MoE: every pass reads all {m.num_experts} experts' weights ({m.params_total / 1e9:.0f} B "
                 f"parameters) but computes only top-{m.experts_per_token} ({m.params_active / 1e9:.0f} B), so "
                 f"method 1's intensity is about {ratio:.2f} × batch FLOP/B, {1 / ratio:.1f}× below a dense model "
                 f"of the same size. {A} stays behind in every cell up to batch {max_b_all_lose:,.0f}")
        if wins.any():
            both = ops.fits_a & ops.fits_b
            text += (f"; it pulls ahead only at batch ≥ {mesh_summary(whole)['a_wins_batch_min']:,.0f} with short "
                     f"sequences ({int((wins & both).sum())} of those cells fit on both devices"
                     f"{' here' if case.tp > 1 else ''}). The LLMRoofline article's grid stopped at batch 256, where {A} is behind everywhere. ")
        else:
            text += ", i.e. everywhere, as the LLMRoofline article says. "
        wa = weights_per_device(m, "fp16", case.tp) / 1e9
        text += f"The 16-bit weights take {wa:.0f} GB per device at tp = {case.tp}. "
    if case.tp > 1 and single is not None:
        change = float(np.max(np.abs(np.log(ops.ratio / single.ratio))))
        text += (f"On {case.tp} devices each, tensor parallelism divides FLOPs and bytes alike, so method 1's "
                 f"ratio is unchanged and method 2's moves by at most {math.expm1(change):.1%} (all-reduce over "
                 f"NVLink); what changes is memory: {mesh_summary(ops)['fit_both']} cells fit on both instead "
                 f"of {mesh_summary(single)['fit_both']} on one device each.")
    return text.strip()


def _table_reading(rows: list[dict[str, Any]]) -> str:
    plain = [r["ours_plain_error_pct"] for r in rows]
    cal = [r["ours_calibrated_error_pct"] for r in rows]
    view = [r["llm_viewer_error_pct"] for r in rows]
    mean_abs = lambda xs: sum(abs(x) for x in xs) / len(xs)  # noqa: E731
    return (f"A roofline is an upper bound: LLM-Viewer overestimates TensorRT-LLM by {min(view):+.0f}% to "
            f"{max(view):+.0f}%, our plain roofline by {min(plain):+.0f}% to {max(plain):+.0f}% (mean |error| "
            f"{mean_abs(plain):.0f}%; ours counts the prefill and every decode step with its growing KV cache). "
            f"The calibrated estimate for the measured stack (--runtime {TABLE_RUNTIME}: kernel fractions from "
            f"published benchmarks, that stack's overheads fitted to public measurements) is off by {min(cal):+.0f}% to {max(cal):+.0f}% (mean |error| {mean_abs(cal):.0f}%). "
            f"These four rows are among the measurements the bundled calibration was fitted on, so this is "
            f"in-sample; errors on devices and models held out of the fit are in docs/accuracy.md.")


# ---- index.html ---------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.5}img{max-width:100%;border:1px solid #ddd}h2{margin-top:2em;
border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.92em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:right}th{background:#f4f4f4}.links a{margin-right:1em}p.reading{background:#f8f8f8;
padding:.8em 1em;border-left:4px solid #0072B2}"""


def _section(title: str, reading: str, png: str, html_file: str | None, extra: str = "") -> str:
    links = f'<a href="{html.escape(png)}">PNG</a>'
    if html_file:
        links += f' <a href="{html.escape(html_file)}">interactive (HTML)</a>'
    return (f"<h2>{html.escape(title)}</h2>\n<p class='reading'>{html.escape(reading)}</p>\n"
            f"<p class='links'>{links}</p>\n{extra}<a href='{html.escape(png)}'><img src='{html.escape(png)}' "
            f"alt='{html.escape(title)}'></a>\n")


def _table_html(rows: list[dict[str, Any]]) -> str:
    head = ["batch", "input", "output", "TRT-LLM (measured)", "LLM-Viewer", "error", "ours, plain", "error",
            "ours, calibrated", "error"]
    body = ""
    for r in rows:
        cells = [r["batch"], r["input_len"], r["output_len"], f"{r['trt_llm_tok_s']:,.0f}",
                 f"{r['llm_viewer_tok_s']:,.0f}", f"{r['llm_viewer_error_pct']:+.0f}%",
                 f"{r['ours_plain_tok_s']:,.0f}", f"{r['ours_plain_error_pct']:+.0f}%",
                 f"{r['ours_calibrated_tok_s']:,.0f}", f"{r['ours_calibrated_error_pct']:+.0f}%"]
        body += "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>\n"
    return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>\n" + body +
            "</table><p>Throughput in output tokens/s; errors relative to TensorRT-LLM.</p>\n")


# ---- the demo ---------------------------------------------------------------------------------------

def _render(job: tuple[str, str, str, dict[str, Any], bool]) -> list[str]:
    """Draw one figure as PNG (and HTML): (kind, name, folder, arguments, html). Runs in a worker."""
    kind, name, folder, args, with_html = job
    d = Path(folder)
    if kind == "roofline":
        fig = plot_roofline(args["devices"], workload=args.get("workload"), title=args.get("title"))
    elif kind == "mesh":
        fig = plot_comparison_pair(args["ops"], args["whole"], allow_unfit=True)
    else:
        fig = _plot_table(args["rows"])
    fig.savefig(d / f"{name}.png", dpi=110)
    written = [f"{name}.png"]
    if with_html and kind in ("roofline", "mesh"):
        from . import interactive as ia

        hfig = (ia.roofline_figure(args["devices"], workload=args.get("workload")) if kind == "roofline"
                else ia.comparison_pair_figure(args["ops"], args["whole"], allow_unfit=True))
        ia.write_html(hfig, d / f"{name}.html", plotlyjs="directory")
        written.append(f"{name}.html")
    return written


def _run_jobs(jobs: list, workers: int) -> list[list[str]]:
    """Render in forked worker processes (matplotlib takes ~0.4 s a figure); serially where fork
    is missing or a pool cannot start."""
    if workers > 1 and len(jobs) > 1 and "fork" in mp.get_all_start_methods():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with idle BLAS threads
                with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("fork")) as ex:
                    return list(ex.map(_render, jobs))
        except (OSError, BrokenProcessPool):
            pass
    return [_render(j) for j in jobs]


def run_demo(out_dir="out/demo", *, force: bool = False, interactive: bool = True,
             jobs: int | None = None) -> dict[str, Any]:
    """Reproduce the article into `out_dir` (created; a folder not made by the demo is refused
    unless `force`). `jobs`: worker processes for drawing (default: up to 8). Returns
    {"out_dir", "files": {name: path}, "readings": {figure: text}, "table": rows, "meshes": numbers,
    "seconds"}."""
    t0 = time.perf_counter()
    d = prepare_out_dir(out_dir, force=force)
    readings: dict[str, str] = {}
    sections: list[str] = []
    todo: list[tuple[str, str, str, dict[str, Any], bool]] = []

    def section(title: str, name: str, extra: str = "", with_html: bool = True) -> None:
        sections.append(_section(title, readings[name], f"{name}.png",
                                 f"{name}.html" if interactive and with_html else None, extra))

    # 1. The roofline of the six GPUs.
    todo.append(("roofline", "roofline", str(d),
                 {"devices": DEVICES, "title": "Roofline of the LLMRoofline article's GPUs (fp16 dense tensor peak)"}, interactive))
    readings["roofline"] = _roofline_reading()
    section("Roofline of A100, H20, A800, L40S, L20 and RTX 4090", "roofline")

    # 2. A workload on it: methods 2 and 1.
    wp = workload_points(**WORKLOAD)
    todo.append(("roofline", "roofline_llama2-13b_decode", str(d), {"devices": (A, B), "workload": wp}, interactive))
    readings["roofline_llama2-13b_decode"] = _workload_reading()
    section("Method 1 and method 2 on the roofline: Llama-2-13B decode", "roofline_llama2-13b_decode")

    # 3. The meshes.
    ops_by_slug: dict[str, Comparison] = {}
    ref_whole: Comparison | None = None  # Llama-2-13B by method 1, the article's reference
    meshes: dict[str, dict[str, Any]] = {}
    for case in MESHES:
        kw: dict[str, Any] = dict(tp_a=case.tp, tp_b=case.tp, **GRID)
        ops = compare(case.model, A, B, method="ops", **kw)
        whole = compare(case.model, A, B, method="whole", **kw)
        if case.slug == "llama2-13b":
            ref_whole = whole
        name = f"mesh_{case.slug}"
        todo.append(("mesh", name, str(d), {"ops": ops, "whole": whole}, interactive))
        single = None
        if case.tp > 1:  # the same model on one device each, for the reading (drawn or not)
            single = ops_by_slug.get(f"{case.model}@1") or compare(case.model, A, B, method="ops", **GRID)
            ops_by_slug[f"{case.model}@1"] = single
        readings[name] = _mesh_reading(case, ops, whole, ref_whole, single)
        ops_by_slug[case.slug] = ops
        if case.tp == 1:
            ops_by_slug[f"{case.model}@1"] = ops
        meshes[case.slug] = {"ops": mesh_summary(ops), "whole": mesh_summary(whole), "tp": case.tp,
                             "model": case.model}
        tp = f", {case.tp} devices each (tensor parallel)" if case.tp > 1 else ""
        section(f"{case.model}: {A} / {B}{tp}", name)

    # 4. The article's table.
    rows = article_table()
    csv_path, md_path = _write_table(rows, d)
    name = "llama2-7b_a100_table"
    todo.append(("table", name, str(d), {"rows": rows}, False))
    readings["table"] = _table_reading(rows)
    sections.append(_section(f"LLaMA-7B on {A}: measured, LLM-Viewer and llmroofline", readings["table"],
                             f"{name}.png", None,
                             extra=_table_html(rows) + f"<p class='links'><a href='{csv_path.name}'>CSV</a> "
                                                       f"<a href='{md_path.name}'>Markdown</a></p>\n"))

    if interactive:  # one shared copy of plotly.js beside the pages (they open offline)
        from plotly.offline import get_plotlyjs

        write_text(d / "plotly.min.js", get_plotlyjs(), force=True)
    written = _run_jobs(todo, jobs if jobs is not None else min(8, os.cpu_count() or 1))
    files: dict[str, Path] = {n: d / n for names in written for n in names}
    files[csv_path.name], files[md_path.name] = csv_path, md_path
    if interactive:
        files["plotly.min.js"] = d / "plotly.min.js"

    summary = {"meshes": meshes, "table": rows, "readings": readings, "grid": GRID, "a": A, "b": B}
    write_text(d / "summary.json", json.dumps(summary, indent=2), force=True)
    files["summary.json"] = d / "summary.json"

    intro = ("The pictures of the LLMRoofline article (GPUs compared for LLM inference with the roofline "
             "model), regenerated by <code>llmroofline demo</code> from the bundled catalogs. Meshes: sequence "
             "length on x, batch on y, colour = A100 / H20 decode throughput (purple: A100 faster, orange: H20 "
             "faster, thick line: equal), left method 2 (per operator), right method 1 (whole model). "
             "Cells that do not fit in memory are hatched (one device) or washed out and cross-hatched (both).")
    page = (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>llmroofline demo</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>llmroofline: the LLMRoofline article, reproduced</h1>\n<p>{intro}</p>\n"
            + "".join(sections) + "</body></html>\n")
    write_text(d / "index.html", page, force=True)
    files["index.html"] = d / "index.html"
    return {"out_dir": d, "files": files, "readings": readings, "table": rows, "meshes": meshes,
            "seconds": time.perf_counter() - t0}
