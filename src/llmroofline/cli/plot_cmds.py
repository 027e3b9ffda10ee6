"""`roofline` (the chart, optionally with a workload on it), `compare` (the A-over-B mesh) and
`demo` (the LLMRoofline article, end to end)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import typer

from ..compare import METHODS, METRICS, Comparison, compare, parse_axis
from ..efficiency import load_calibration
from ..errors import InputError, clean_name
from ..files import open_output
from ..plots import (
    STATIC_FORMATS,
    check_output,
    check_plottable,
    mesh_summary,
    missing_roofs,
    roofs,
    workload_points,
)
from .common import (
    CALIBRATION_HELP,
    DP_HELP,
    EP_HELP,
    FORCE_HELP,
    IMAGE_SIZE_HELP,
    IMAGES_HELP,
    JSON_HELP,
    KV_DTYPE_HELP,
    MODEL_HELP,
    MOE_IMBALANCE_HELP,
    PP_HELP,
    REDUNDANT_HELP,
    RUNTIME_HELP,
    WEIGHT_DTYPE_HELP,
    app,
    console,
    console_err,
    print_json,
    say,
    table,
)

MAX_CELLS = 1 << 20  # a 1024 × 1024 mesh; more is slow and unreadable
OUT_HELP = "Write the figure to this file: .png, .svg or .pdf (an existing file needs --force)."
HTML_HELP = "Write the interactive figure as one self-contained .html file (opens offline)."
METHOD_HELP = ("whole (method 1: the model as one kernel), ops (method 2: per operator) or both (side by side; "
               "with --json the ops mesh is at the top level, as for --method ops, and both meshes are under "
               "'ops' and 'whole').")
METRIC_HELP = ("decode (output tokens/s of one decode step at KV length = seq), ttft (prompt tokens/s of a prefill "
               "of seq tokens) or e2e (output tokens/s of a static batch: prompt seq, then --output-len tokens).")


def _outputs(force: bool, **paths: tuple[Path | None, tuple[str, ...]]) -> dict[str, Path]:
    """Check every requested output before any work: extension, folder, no foreign file in the way."""
    out: dict[str, Path] = {}
    for name, (path, formats) in paths.items():
        if path is not None:
            p = check_output(path, formats, force=force)
            if p.resolve() in {q.resolve() for q in out.values()}:
                raise InputError(f"--{name} {str(path)!r} is also another output")
            out[name] = p
    return out


def _split(values: list[str]) -> list[str]:
    """Repeated options and comma-separated lists alike: ['fp16,fp8', 'int8'] -> ['fp16', 'fp8', 'int8']."""
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


def _say(json_: bool, message: str) -> None:
    """Progress lines: on stderr when stdout is reserved for JSON."""
    if json_:
        console_err(message)
    else:
        say(message)


# ---- roofline -------------------------------------------------------------------------------------

@app.command("roofline")
def roofline_cmd(
    devices: list[str] = typer.Argument(..., help="Devices: catalog ids or aliases, or spec YAML files."),
    precision: list[str] = typer.Option(["fp16"], "--precision", "-p",
                                        help="Precisions of the roofs, comma-separated or repeated: fp16, bf16, fp8, int8, ... "
                                             "A device without one is left out at that precision, with a note."),
    model: str = typer.Option(None, "--model", "-m", help="Place a workload's operators on the chart. " + MODEL_HELP),
    phase: str = typer.Option("decode", "--phase", help="prefill | decode (with --model)."),
    batch: int = typer.Option(1, "--batch", "-b", help="Sequences in the pass (with --model)."),
    seq: int = typer.Option(1024, "--seq", "-s", help="KV length (decode) or prompt length (prefill)."),
    on: str = typer.Option(None, "--on", help="Device the workload is placed on (default: the first)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree of the workload."),
    weight_dtype: str = typer.Option(None, "--weight-dtype", help=WEIGHT_DTYPE_HELP),
    out: Path = typer.Option(None, "--out", "-o", help=OUT_HELP),
    html: Path = typer.Option(None, "--html", help=HTML_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The LLMRoofline article's roofline chart: attainable TFLOP/s against FLOPs per byte, one roof per device and
    precision; with --model, each operator (method 2) and the whole model (method 1) placed on it."""
    outputs = _outputs(force, out=(out, STATIC_FORMATS), html=(html, ("html", "htm")))
    devices = _split(devices)
    precision = _split(precision)  # -p fp16,fp8 as well as -p fp16 -p fp8
    rs = roofs(devices, precision, skip_missing=True)
    notes = missing_roofs(devices, precision)
    wp = None
    if model:
        wp = workload_points(model, on or devices[0], phase=phase, batch=batch, seq=seq, tp=tp,
                             weight_dtype=weight_dtype)
    elif on:
        raise InputError("--on needs --model (the workload to place)")
    written = []
    if "out" in outputs:
        from ..plots import plot_roofline

        plot_roofline(devices, precision, workload=wp, out=outputs["out"])
        written.append(str(outputs["out"]))
    if "html" in outputs:
        from ..interactive import roofline_html

        roofline_html(devices, precision, workload=wp, out=outputs["html"])
        written.append(str(outputs["html"]))
    if wp is not None and wp.fit_note:
        notes.append(f"{wp.model} {wp.fit_note}")
    if json_:
        print_json({"roofs": [r.to_dict() for r in rs], "workload": wp.to_dict() if wp else None, "files": written,
                    "warnings": notes})
        for line in notes:
            console_err(f"note: {line}")
        return
    table("Roofs (dense peaks)", ["devices", "precision", "peak TFLOP/s", "bandwidth GB/s", "ridge FLOP/B"],
          [[r.label, r.precision, r.peak / 1e12, r.bandwidth / 1e9, r.ridge] for r in rs])
    if wp is not None:
        table(f"{wp.model} {wp.phase}, batch {wp.batch}, seq {wp.seq}, tp {wp.tp} on {wp.device}",
              ["operator", "FLOP/B", "attainable TFLOP/s", "bound", "share of time"],
              [[n, float(i), float(a) / 1e12, b, f"{s:.1%}"]
               for n, i, a, b, s in zip(wp.names, wp.intensity, wp.attainable, wp.bound, wp.time_share, strict=False)]
              + [["whole model (method 1)", wp.whole_intensity, wp.whole_attainable / 1e12, "", ""]])
    for line in notes:
        console.print(f"[yellow]note:[/] {line}", highlight=False)
    for path in written:
        _say(json_, f"wrote {path}")


# ---- compare --------------------------------------------------------------------------------------

def _win_lines(c: Comparison, w: dict[str, Any], scope: str) -> list[str]:
    """Where each device wins among `w["cells"]` cells (a `mesh_summary` region)."""
    n = w["cells"]
    lines = []
    if w["a_wins"]:
        best = w["best_for_a"]
        lines.append(f"{scope} ({n} cells): {c.a} faster in {w['a_wins']} ({w['a_wins'] / n:.0%}), at batch ≥ "
                     f"{w['a_wins_batch_min']:g} and length ≤ {w['a_wins_seq_max']:g}; best {best['ratio']:.2f}× at "
                     f"batch {best['batch']:g}, length {best['seq']:g}")
    else:
        lines.append(f"{scope} ({n} cells): {c.a} is faster in none")
    if w.get("b_wins"):
        best = w["best_for_b"]
        lines.append(f"{scope}: {c.b} faster in {w['b_wins']} ({w['b_wins'] / n:.0%}), by up to "
                     f"{1 / best['ratio']:.2f}× (batch {best['batch']:g}, length {best['seq']:g})")
    return lines


def _summary_lines(c: Comparison) -> list[str]:
    s = mesh_summary(c)
    la, lb = c.labels.get("a", c.a), c.labels.get("b", c.b)
    lines = [f"{clean_name(c.model)}: {clean_name(la)} / {clean_name(lb)}, {'method 1 (whole model)' if c.method == 'whole' else 'method 2 (per operator)'}, "
             f"{c.metric} ({c.unit})",
             f"grid: {c.batch.size} batches ({c.batch.min():g}–{c.batch.max():g}) × {c.seq.size} lengths "
             f"({c.seq.min():g}–{c.seq.max():g}) = {s['cells']} cells; ratio from {s['ratio_min']:.3g} to {s['ratio_max']:.3g}"]
    if s["equal"]:
        lines.append(f"{la} and {lb} are equal in every cell (ratio 1)")
    elif "fit_both_summary" in s:  # the headline: cells a deployment can run on either device
        lines += _win_lines(c, s["fit_both_summary"], "where both fit")
        lines.append(f"over the whole grid (the roofline alone, memory ignored): ratio {s['ratio_min']:.3g} to "
                     f"{s['ratio_max']:.3g}, {c.a} faster in {s['a_wins']} of {s['cells']} cells")
    else:
        lines.append("[bold red]no cell fits on both devices[/]: the ratios below are the roofline's alone")
        lines += _win_lines(c, s["grid_summary"], "over the whole grid")
    lines.append(f"memory: {s['not_fit_a']} cells do not fit on {la}, {s['not_fit_b']} not on {lb}, "
                 f"{s['fit_neither']} on neither")
    return lines


def _write_csv(path: Path, meshes: list[Comparison]) -> None:
    try:
        with open_output(path, force=True) as f:  # checked by _outputs; never through a symbolic link
            w = csv.writer(f)
            w.writerow(["method", "metric", "batch", "seq", "perf_a", "perf_b", "ratio", "fits_a", "fits_b"])
            for c in meshes:
                r = np.asarray(c.ratio, dtype=float)
                for i, b in enumerate(c.batch):
                    for j, s in enumerate(c.seq):
                        w.writerow([c.method, c.metric, int(b), int(s), f"{c.perf_a[i, j]:.6g}", f"{c.perf_b[i, j]:.6g}",
                                    f"{r[i, j]:.6g}", bool(c.fits_a[i, j]), bool(c.fits_b[i, j])])
    except OSError as e:
        raise InputError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


@app.command("compare")
def compare_cmd(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    a: str = typer.Option(..., "--a", help="Device A (the numerator: ratio > 1 means A is faster)."),
    b: str = typer.Option(..., "--b", help="Device B (the denominator)."),
    method: str = typer.Option("whole", "--method", help=METHOD_HELP),
    metric: str = typer.Option("decode", "--metric", help=METRIC_HELP),
    batch: str = typer.Option("1:1024", "--batch", help="Batch axis: LO:HI (log-spaced), LO:HI:N, or a list 1,8,64."),
    seq: str = typer.Option("128:131072", "--seq", help="Sequence-length axis: LO:HI, LO:HI:N, or a list."),
    tp: int = typer.Option(None, "--tp", help="Tensor-parallel degree on both devices (--tp-a/--tp-b set one).",
                           show_default=False),
    tp_a: int = typer.Option(None, "--tp-a", help="Tensor-parallel degree on A (default --tp, else 1).",
                             show_default=False),
    tp_b: int = typer.Option(None, "--tp-b", help="Tensor-parallel degree on B (default --tp, else 1).",
                             show_default=False),
    pp: int = typer.Option(1, "--pp", help=PP_HELP + " Both devices; --method ops."),
    ep: int = typer.Option(None, "--ep", help=EP_HELP + " Both devices; --method ops.", show_default=False),
    dp: int = typer.Option(None, "--dp", help=DP_HELP + " Both devices; the batch axis is the whole instance's; "
                                                       "--method ops.", show_default=False),
    moe_imbalance: float = typer.Option(None, "--moe-imbalance", help=MOE_IMBALANCE_HELP, show_default=False),
    redundant_experts: int = typer.Option(0, "--redundant-experts", help=REDUNDANT_HELP),
    weight_dtype_a: str = typer.Option(None, "--weight-dtype-a", help="Weights on A. " + WEIGHT_DTYPE_HELP),
    weight_dtype_b: str = typer.Option(None, "--weight-dtype-b", help="Weights on B."),
    kv_dtype_a: str = typer.Option("fp16", "--kv-dtype-a", help="KV cache on A. " + KV_DTYPE_HELP),
    kv_dtype_b: str = typer.Option("fp16", "--kv-dtype-b", help="KV cache on B."),
    output_len: int = typer.Option(128, "--output-len", help="Output tokens per sequence (--metric e2e)."),
    calibration: str = typer.Option("none", "--calibration", help=CALIBRATION_HELP + " (method ops only)"),
    runtime: str = typer.Option("generic", "--runtime", help=RUNTIME_HELP + " (with a calibration)"),
    images: int = typer.Option(0, "--images", help=IMAGES_HELP + " Method ops only."),
    image_size: str = typer.Option(None, "--image-size", help=IMAGE_SIZE_HELP),
    out: Path = typer.Option(None, "--out", "-o", help=OUT_HELP),
    html: Path = typer.Option(None, "--html", help=HTML_HELP),
    csv_: Path = typer.Option(None, "--csv", help="Write every cell (batch, seq, both devices, ratio, fits) as CSV."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The LLMRoofline article's mesh: performance of A over B on a batch × sequence-length grid (> 1: A faster).
    Cells that do not fit in a device's memory are flagged (fits_a, fits_b) and hatched in figures."""
    if method not in (*METHODS, "both"):
        raise InputError(f"--method must be whole, ops or both, got {method!r}")
    if metric not in METRICS:
        raise InputError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if calibration.strip().lower() != "none":
        if method == "whole":
            raise InputError("--calibration applies to --method ops only: method 1 (whole) is the plain roofline of "
                             "the whole model; drop --calibration or use --method ops or both")
        load_calibration(calibration)  # a missing or bad file is an error before any work
    outputs = _outputs(force, out=(out, STATIC_FORMATS), html=(html, ("html", "htm")), csv=(csv_, ("csv",)))
    bs = parse_axis(batch, "--batch", upper=1e7)
    ss = parse_axis(seq, "--seq")
    if bs.size * ss.size > MAX_CELLS:
        raise InputError(f"the grid has {bs.size} × {ss.size} = {bs.size * ss.size:,} cells; at most {MAX_CELLS:,} "
                         "(use fewer points: LO:HI:N)")
    methods = ["ops", "whole"] if method == "both" else [method]
    tp_a = tp_a if tp_a is not None else (tp if tp is not None else 1)
    tp_b = tp_b if tp_b is not None else (tp if tp is not None else 1)
    layout: dict[str, Any] = dict(pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance,
                                  redundant_experts=redundant_experts)
    meshes = [compare(model, a, b, batch=bs, seq=ss, method=m, metric=metric, tp_a=tp_a, tp_b=tp_b, **layout,
                      weight_dtype_a=weight_dtype_a, weight_dtype_b=weight_dtype_b, kv_dtype_a=kv_dtype_a,
                      kv_dtype_b=kv_dtype_b, output_len=output_len, calibration=calibration, runtime=runtime,
                      images=images, image_size=image_size)
              for m in methods]
    check_plottable(meshes[0])
    written = []
    if "out" in outputs:
        from ..plots import plot_comparison, plot_comparison_pair

        if len(meshes) == 2:
            plot_comparison_pair(meshes[0], meshes[1], out=outputs["out"])
        else:
            plot_comparison(meshes[0], out=outputs["out"])
        written.append(str(outputs["out"]))
    if "html" in outputs:
        from ..interactive import comparison_html, comparison_pair_html

        if len(meshes) == 2:
            comparison_pair_html(meshes[0], meshes[1], out=outputs["html"])
        else:
            comparison_html(meshes[0], out=outputs["html"])
        written.append(str(outputs["html"]))
    if "csv" in outputs:
        _write_csv(outputs["csv"], meshes)
        written.append(str(outputs["csv"]))
    if json_:
        doc: dict[str, Any] = meshes[0].to_dict()
        if len(meshes) == 2:
            doc.update(methods=methods, ops=meshes[0].to_dict(), whole=meshes[1].to_dict())
        doc["summary"] = mesh_summary(meshes[0]) if len(meshes) == 1 else {c.method: mesh_summary(c) for c in meshes}
        doc["files"] = written
        print_json(doc)
        for path in written:
            console_err(f"wrote {path}")
        return
    for c in meshes:
        for line in _summary_lines(c):
            say(line)
    if method == "both" and calibration.strip().lower() != "none":
        console.print(f"[yellow]note:[/] --calibration {calibration} applies to the method 2 (ops) mesh only; "
                      "method 1 is the plain roofline", highlight=False)
    for path in written:
        say(f"wrote {path}")


# ---- demo ------------------------------------------------------------------------------------------

@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Folder for the figures, tables and index.html."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder that the demo did not make."),
    no_html: bool = typer.Option(False, "--no-html", help="Skip the interactive HTML figures."),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Reproduce the LLMRoofline article: roofline of six GPUs, A100/H20 meshes of four models by both
    methods, the LLaMA-7B table against measurements, and an index.html reading each figure."""
    from ..demo import run_demo

    r = run_demo(out, force=force, interactive=not no_html)
    files = {name: str(p) for name, p in sorted(r["files"].items())}
    if json_:
        print_json({"out_dir": str(r["out_dir"]), "index": files["index.html"], "files": files,
                    "seconds": r["seconds"], "readings": r["readings"], "table": r["table"]})
        return
    table(f"llmroofline demo: {len(files)} files in {r['out_dir']} ({r['seconds']:.1f} s)", ["file", "size"],
          [[name, f"{Path(p).stat().st_size / 1024:,.0f} kB"] for name, p in files.items()])
    say(f"open {files['index.html']} in a browser")
