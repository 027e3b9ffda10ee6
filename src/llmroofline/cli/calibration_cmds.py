"""`validate` (predicted vs measured) and `calibrate` (fit the efficiency parameters)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import typer

from ..calibrate import HOLDOUTS, calibrate, error_bands, write_calibration
from ..catalog import CATALOG_ROOT
from ..errors import InputError
from ..files import check_output
from ..runtime import load_runtime
from ..validate import predict, read_measurements, summarize
from .common import (
    CALIBRATION_HELP,
    FORCE_HELP,
    JSON_HELP,
    RUNTIME_HELP,
    app,
    console,
    print_json,
    table,
)

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "data" / "measured-public.csv"
DATA_HELP = "Measurement CSV (columns of estimate --from-csv plus metric and value)."
GROUPINGS = ("device", "runtime", "mode", "metric", "source")


def _progress() -> Any:
    """A rich progress bar on stderr (stdout may carry JSON); rich draws it only on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _data_path(data: Path | None) -> Path:
    if data is not None:
        return data
    if DEFAULT_DATA.exists():
        return DEFAULT_DATA
    raise InputError("no --data given and no bundled measurement set found (data/measured-public.csv)")


@app.command("validate")
def validate_cmd(
    data: Path = typer.Option(None, "--data", help=DATA_HELP),
    calibration: str = typer.Option("default", "--calibration", help=CALIBRATION_HELP),
    runtime: str = typer.Option("auto", "--runtime",
                                help="auto: each row's runtime column, else its framework and framework_version "
                                     "columns; or one stack for every row (" + RUNTIME_HELP + ")"),
    rows_: bool = typer.Option(False, "--rows", help="Print every row, not only the summaries."),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run every row of a measurement CSV: predicted vs measured, plain roofline and calibrated."""
    path = _data_path(data)
    bad: list[dict[str, Any]] = []
    rows = read_measurements(path, bad=bad)  # a malformed row is reported, the others scored
    if runtime.strip().lower() != "auto":
        rid = load_runtime(runtime).id
        rows = [replace(r, runtime=rid) for r in rows]
    errors: dict[int, str] = {}
    plain = predict(rows, "none", errors=errors)
    cal = predict(rows, calibration, errors=errors)
    bad += [{"line": None, "id": rows[i].id, "error": msg} for i, msg in sorted(errors.items())]
    keep = [i for i in range(len(rows)) if i not in errors]
    if not keep:
        raise InputError(f"no row of {path} could be scored; first problem: {bad[0]['error'] if bad else 'none'}")
    rows, plain, cal = [rows[i] for i in keep], plain[keep], cal[keep]
    per_row: list[dict[str, Any]] = [{"id": r.id, "model": r.model, "hardware": r.hardware, "tp": r.tp, "mode": r.mode,
                "batch": None if np.isnan(r.batch) else r.batch, "input_len": r.input_len, "runtime": r.runtime,
                "output_len": r.output_len, "metric": r.metric, "measured": r.value,
                "plain": float(p), "calibrated": float(c), "error_plain_pct": float((p / r.value - 1) * 100),
                "error_calibrated_pct": float((c / r.value - 1) * 100)}
               for r, p, c in zip(rows, plain, cal, strict=False)]
    summary: dict[str, list[dict[str, Any]]] = {
        by: [{"group": g.group, "rows": g.rows,
              "plain": {"median_ape": gp.median_ape, "mean_ape": gp.mean_ape, "bias": gp.bias},
              "calibrated": {"median_ape": g.median_ape, "mean_ape": g.mean_ape, "bias": g.bias,
                             "worst": [{"id": i, "error_pct": e} for i, e in g.worst]}}
             for g, gp in zip(summarize(rows, cal, by), summarize(rows, plain, by), strict=False)]
        for by in (*GROUPINGS, "all")
    }
    if json_:
        print_json({"data": str(path), "calibration": calibration, "rows": per_row, "summary": summary,
                    "errors": bad})
        return
    if rows_:
        table(f"{len(rows)} measurements from {path.name}", ["id", "model", "device", "tp", "mode", "batch", "in/out",
                                                              "metric", "measured", "plain", "err %", "calibrated", "err %"],
              [[r["id"], r["model"].split("/")[-1], r["hardware"], r["tp"], r["mode"], r["batch"] or "max",
                f"{r['input_len']}/{r['output_len']}", r["metric"], r["measured"], r["plain"],
                f"{r['error_plain_pct']:+.0f}", r["calibrated"], f"{r['error_calibrated_pct']:+.0f}"] for r in per_row])
    if bad:
        table(f"{len(bad)} row(s) of {path.name} not scored", ["line", "id", "problem"],
              [[b["line"] if b["line"] is not None else "", b["id"], b["error"]] for b in bad])
    for by in (*GROUPINGS, "all"):
        table(f"errors by {by} (MdAPE: median absolute % error; bias: median signed % error)",
              [by, "rows", "plain MdAPE", "plain bias", "calib. MdAPE", "calib. MAPE", "calib. bias", "worst rows"],
              [[s["group"][:60], s["rows"], s["plain"]["median_ape"], s["plain"]["bias"], s["calibrated"]["median_ape"],
                s["calibrated"]["mean_ape"], s["calibrated"]["bias"],
                ", ".join(f"{w['id']} {w['error_pct']:+.0f}%" for w in s["calibrated"]["worst"])] for s in summary[by]])


@app.command("calibrate")
def calibrate_cmd(
    data: Path = typer.Option(None, "--data", help=DATA_HELP),
    out: Path = typer.Option(Path("calibration.yaml"), "--out", help="Where to write the fitted parameters."),
    bands: bool = typer.Option(True, "--bands/--no-bands",
                               help="Hold out each device, stack and model in turn to derive prediction intervals "
                                    "(slower, honest); --no-bands writes none."),
    level: float = typer.Option(0.8, "--level", help="Central probability of the prediction intervals."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Fit the efficiency model (kernel priors, per-stack overheads) and write it as YAML."""
    path = _data_path(data)
    bundled = (CATALOG_ROOT / "calibration" / "default.yaml").resolve()
    owned = not out.is_symlink() and out.expanduser().resolve() == bundled  # refitting the bundled calibration
    check_output(out, None, force=force, owned=owned, what="--out")  # before the fit
    if not 0.5 <= level < 1:
        raise InputError(f"--level must be from 0.5 to 0.99, got {level}")
    rows = read_measurements(path)
    honest = bands and len({r.hardware for r in rows}) > 1
    groups = 1 + (sum(len({HOLDOUTS[by](r) for r in rows}) for by in HOLDOUTS) if honest else 0)
    with _progress() as progress:
        task = progress.add_task(f"fitting {len(rows)} rows", total=groups)
        done = [0]

        def step(what: str) -> None:  # called before each fit: the first on all rows, then each hold-out
            if done[0]:
                progress.advance(task)
            done[0] += 1
            progress.update(task, description=f"fit {done[0]} of {groups}: {what}")

        run = calibrate(rows, level=level, held_out=honest, progress=step)
        progress.update(task, completed=groups)
    doc = run.document(path.name, len(rows))
    write_calibration(doc, out, force=force or owned)
    # In-sample errors are for information only: intervals come from held-out rows or not at all.
    in_sample = error_bands(rows, predict(rows, run.result.calibration))
    if json_:
        print_json({"out": str(out), **doc, "coverage": run.coverage, "in_sample_errors": in_sample})
        return
    res = run.result
    table(f"fitted on {len(rows)} rows of {path.name} -> {out}", ["parameter", "fitted", "prior", "bounds"],
          [[".".join(p.path), v, p.prior, f"{p.low:g} to {p.high:g}"] for p, v in zip(res.params, res.values, strict=True)])
    if honest:
        console.print(f"{level:.0%} intervals from rows left out of the fit; coverage: "
                      + ", ".join(f"{by} left out {c:.0%}" for by, c in run.coverage.items()), highlight=False)
    else:
        console.print("no intervals or error bands written (" + ("--no-bands" if not bands else "one device")
                      + ": nothing was left out of the fit to measure them)", highlight=False)
    console.print("in-sample errors (median |relative error| on the rows fitted, optimistic): "
                  + ", ".join(f"{k} {v * 100:.0f}%" for k, v in in_sample.items()), highlight=False)
