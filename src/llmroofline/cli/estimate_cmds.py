"""`estimate` (one workload or a CSV of them) and `ops` (the per-operator table)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape

from ..assumptions import row_warnings
from ..efficiency import load_calibration
from ..errors import InputError, clean_name
from ..estimate import MAX_BATCH, estimate, make_deployment, parallelism_fields
from ..files import check_output, read_csv
from ..intensity import whole_model
from ..operators import AttentionGroup
from ..roofline import device_peak, roofline_time, time_ops
from ..vision_ops import vision_ops
from .common import (
    CALIBRATION_HELP,
    DP_HELP,
    EP_HELP,
    FORCE_HELP,
    HARDWARE_HELP,
    HTML_FILE_HELP,
    IMAGE_SIZE_HELP,
    IMAGES_HELP,
    JSON_HELP,
    KV_DTYPE_HELP,
    MODEL_HELP,
    MOE_IMBALANCE_HELP,
    PP_HELP,
    REDUNDANT_HELP,
    RUNTIME_HELP,
    TP_HELP,
    WEIGHT_DTYPE_HELP,
    app,
    console,
    console_err,
    fmt,
    print_json,
    say,
    table,
    write_json_stream,
)
from .serving_cmds import (
    ACCEPTANCE_HELP,
    CHUNK_HELP,
    CONCURRENCY_HELP,
    DIST_HELP,
    LENGTHS_HELP,
    PREFILL_HW_HELP,
    PREFIX_HELP,
    RATE_HELP,
    SPEC_HELP,
    TPOT_SLO_HELP,
    TTFT_SLO_HELP,
    run_rate,
)

CSV_REQUIRED = ("model", "hardware", "input_len", "output_len")  # the other columns have defaults


def _int_or_max(text: str, name: str) -> int | list[int] | str:
    """'max', a whole number, or a comma-separated list of them (`1,8,64`), as the API takes them."""
    if str(text).strip().lower() == "max":
        return "max"
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"{name} must be a whole number, a list like 1,8,64 or 'max', got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _row_args(row: dict[str, Any], calibration: str, max_batch: int | None, runtime: str = "generic") -> dict[str, Any]:
    """The `estimate` arguments of one CSV row (InputError naming the column when one is bad)."""
    def get(key: str, default: Any = None) -> Any:
        v = row.get(key)
        if v is None or str(v).strip() == "":
            if default is None:
                raise InputError(f"column {key!r} is empty")
            return default
        return str(v).strip()

    def integer(key: str, default: Any = None) -> int:
        v = get(key, default)
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"column {key!r}: {v!r} is not a number") from None
        if not math.isfinite(f) or not f.is_integer():
            raise InputError(f"column {key!r}: {v!r} is not a whole number")
        return int(f)

    def optional_integer(key: str) -> int | None:
        return None if row.get(key) is None or not str(row[key]).strip() else integer(key)

    def optional_number(key: str) -> float | None:
        v = row.get(key)
        if v is None or not str(v).strip():
            return None
        try:
            f = float(str(v).strip())
        except ValueError:
            raise InputError(f"column {key!r}: {str(v).strip()!r} is not a number") from None
        if not math.isfinite(f):
            raise InputError(f"column {key!r}: {str(v).strip()!r} is not a finite number")
        return f

    # The layout: tp, pp, ep, dp, moe_imbalance, redundant_experts (empty cells take the defaults).
    layout = dict(tp=integer("tp", 1), pp=integer("pp", 1), ep=optional_integer("ep"), dp=optional_integer("dp"),
                  moe_imbalance=optional_number("moe_imbalance"), redundant_experts=integer("redundant_experts", 0))
    serving = {c: str(row[c]).strip() for c in SERVING_COLUMNS if row.get(c) is not None and str(row[c]).strip()}
    mode = get("mode", "rate" if "rate" in serving or "concurrency" in serving else "static").lower()
    if mode not in ALL_MODES:
        raise InputError(f"column 'mode' must be one of {', '.join(ALL_MODES)}, got {mode!r}")
    images = integer("images", 0)
    image_size = (row.get("image_size") or "").strip() or None
    if mode in ("rate", "closed"):
        if images and mode == "closed":
            raise InputError("column 'images': closed-loop clients (mode closed) do not take images yet")
        args = _serving_row_args(row, serving, mode, get, integer, calibration, max_batch, runtime, layout)
        return {**args, "images": images, "image_size": image_size} if images else args
    if serving:
        raise InputError(f"column {sorted(serving)[0]!r} applies to requests at a rate (mode rate or closed), "
                         f"not to mode {mode}")
    batch: Any = "max" if mode == "max" else integer("batch")
    return dict(model=get("model"), hardware=get("hardware"), batch=batch, input_len=integer("input_len"),
                output_len=integer("output_len"), **layout, weight_dtype=row.get("weight_dtype") or None, kv_dtype=get("kv_dtype", "fp16"), mode=mode,
                calibration=calibration, max_batch_size=max_batch, runtime=get("runtime", runtime),
                images=images, image_size=image_size)


ALL_MODES = ("static", "continuous", "max", "rate", "closed")
SERVING_COLUMNS = ("rate", "concurrency", "input_dist", "output_dist", "chunk", "prefix_hit", "spec", "acceptance",
                   "prefill_hardware", "prefill_tp", "prefill_count", "replicas")


def _serving_row_args(row: dict[str, Any], serving: dict[str, str], mode: str, get, integer, calibration: str,
                      max_batch: int | None, runtime: str, layout: dict[str, Any]) -> dict[str, Any]:
    """The `serve` (mode rate) or `serve_closed` (mode closed, batch = clients) arguments of a row."""
    def number(key: str) -> float:
        try:
            v = float(serving[key])
        except ValueError:
            raise InputError(f"column {key!r}: {serving[key]!r} is not a number") from None
        if not math.isfinite(v):
            raise InputError(f"column {key!r}: {serving[key]!r} is not a finite number")
        return v

    args: dict[str, Any] = dict(model=get("model"), hardware=get("hardware"), input_len=integer("input_len"),
                                output_len=integer("output_len"), **layout,
                                weight_dtype=row.get("weight_dtype") or None,
                                kv_dtype=get("kv_dtype", "fp16"), calibration=calibration,
                                max_batch_size=max_batch, runtime=get("runtime", runtime))
    for key in ("chunk", "prefill_tp", "prefill_count", "replicas"):
        if key in serving:
            args[key] = integer(key)
    if "prefix_hit" in serving:
        args["prefix_hit"] = number("prefix_hit")
    if mode == "closed":
        other = sorted(k for k in serving if k not in ("chunk", "prefix_hit"))
        if other:
            raise InputError(f"column {other[0]!r} does not apply to mode closed (it takes batch, chunk, prefix_hit)")
        return {**args, "serving_mode": "closed", "clients": integer("batch")}
    if ("rate" in serving) == ("concurrency" in serving):
        raise InputError("mode rate needs one of the columns 'rate' (requests per second) or 'concurrency'")
    for key in ("input_dist", "output_dist", "spec", "prefill_hardware"):
        if key in serving:
            args[key] = serving[key]
    if "acceptance" in serving:
        args["acceptance"] = number("acceptance")
    if "rate" in serving:
        args["rate"] = number("rate")
    else:
        args["concurrency"] = number("concurrency")
    return {**args, "serving_mode": "rate"}


def _serve_row(args: dict[str, Any]) -> dict[str, Any]:
    from ..serving import serve, serve_at_concurrency, serve_closed

    a = dict(args)
    kind = a.pop("serving_mode")
    try:
        if kind == "closed":
            r = serve_closed(a.pop("model"), a.pop("hardware"), a.pop("clients"), **a)
        elif "concurrency" in a:
            r = serve_at_concurrency(a.pop("model"), a.pop("hardware"), a.pop("concurrency"), **a)
        else:
            r = serve(a.pop("model"), a.pop("hardware"), a.pop("rate"), **a)
    except InputError as e:
        return {"error": str(e)}
    return _scalar(r.to_dict())


def _estimate_row(row: dict[str, Any], calibration: str, max_batch: int | None, runtime: str = "generic") -> dict[str, Any]:
    args = _row_args(row, calibration, max_batch, runtime)
    return _serve_row(args) if "serving_mode" in args else _scalar(estimate(**args).to_dict())


PER_ROW = ("batch", "input_len", "output_len", "images")  # what varies inside one vectorized call
LAYOUT = ("tp", "pp", "ep", "dp", "moe_imbalance", "redundant_experts")
CHUNK_ROWS = 8192  # rows estimated (and written) at a time: memory stays bounded, output streams


def estimate_rows(rows: Iterable[dict[str, Any]], calibration: str, max_batch: int | None,
                  runtime: str = "generic") -> Iterator[dict[str, Any]]:
    """One result per CSV row, in row order: the estimate's fields (or `error`) over the row's own
    columns. Rows that share model, device, layout, precisions and mode are estimated in one
    vectorized call; a group that fails is retried row by row, so a bad row spoils only itself."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            yield from _estimate_chunk(chunk, calibration, max_batch, runtime)
            chunk = []
    if chunk:
        yield from _estimate_chunk(chunk, calibration, max_batch, runtime)


def _estimate_chunk(rows: list[dict[str, Any]], calibration: str, max_batch: int | None,
                    runtime: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * len(rows)
    groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for k, row in enumerate(rows):
        try:
            args = _row_args(row, calibration, max_batch, runtime)
        except InputError as e:
            results[k] = {"error": str(e)}
            continue
        if "serving_mode" in args:  # requests at a rate: one serving estimate per row
            results[k] = _serve_row(args)
            continue
        key = tuple((n, v) for n, v in args.items() if n not in PER_ROW) + (("max", args["batch"] == "max"),)
        groups.setdefault(key, []).append((k, args))
    for members in groups.values():
        for k, d in zip([k for k, _ in members], _estimate_group([a for _, a in members]), strict=True):
            results[k] = d
    return [{**{c: v for c, v in row.items() if c not in res}, **res} for row, res in zip(rows, results, strict=True)
            if res is not None]


def _estimate_group(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Estimates of rows that differ only in batch and lengths: one call over arrays, then split."""
    if len(members) == 1:
        return [_one(members[0])]
    first = members[0]
    arrays = {n: np.array([a[n] for a in members], dtype=float) for n in PER_ROW if first[n] != "max"}
    try:
        r = estimate(**{**first, **arrays})
    except InputError:  # some row is bad: find it by estimating each on its own
        return [_one(a) for a in members]
    d = r.to_dict()
    dep = make_deployment(first["model"], first["hardware"], weight_dtype=first["weight_dtype"],
                          kv_dtype=first["kv_dtype"], **{k: first[k] for k in LAYOUT})
    # The context a row holds counts its image tokens.
    prompt = r.input_len + np.asarray(r.inputs.get("image_tokens", 0), dtype=float)
    notes = row_warnings(dep, mode=r.mode, batch=r.batch, input_len=prompt, output_len=r.output_len,
                         memory=r.memory, max_batch_size=first["max_batch_size"] if r.mode == "max" else None)
    return [{**_pick(d, k, len(members)), "warnings": notes[k]} for k in range(len(members))]


def _one(args: dict[str, Any]) -> dict[str, Any]:
    try:
        return _scalar(estimate(**args).to_dict())
    except InputError as e:
        return {"error": str(e)}


def _pick(d: dict[str, Any], k: int, n: int) -> dict[str, Any]:
    """Element k of every length-n list in an estimate's dict (the fields of one row)."""
    out: dict[str, Any] = {}
    for key, v in d.items():
        if key == "warnings":
            continue
        if key == "interval":  # [low list, high list] per metric: one [low, high] per row
            out[key] = {m: x[k] if m == "widened_for" else [b[k] if isinstance(b, list) else b for b in x]
                        if isinstance(x, list) else x for m, x in v.items()}
            continue
        if isinstance(v, dict):
            out[key] = _pick(v, k, n)
        elif isinstance(v, list) and len(v) == n:
            out[key] = v[k]
        else:
            out[key] = v
    return out


def _scalar(d: dict[str, Any]) -> dict[str, Any]:
    """Unwrap one-element lists of a single estimate."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in ("warnings", "widened_for"):  # lists of names, whatever their length
            out[k] = v[0] if k == "widened_for" and v and isinstance(v[0], list) and len(v) == 1 else v
        elif isinstance(v, dict):
            out[k] = _scalar(v)
        elif isinstance(v, list) and len(v) == 1:
            out[k] = v[0]
        else:
            out[k] = v
    return out


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a workload CSV as {column: text}; values beyond the header's columns are dropped."""
    columns, rows = read_csv(path, "CSV")
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if rows and missing:
        raise InputError(f"CSV {clean_name(str(path))} lacks the column(s) {', '.join(missing)} "
                         f"(it has: {clean_name(', '.join(map(str, columns)))})")
    return rows


# Options that describe one workload: with --from-csv the rows do (see estimate_cmd).
CSV_CONFLICTS = ("model", "hardware", *LAYOUT, "batch", "input_len", "output_len", "weight_dtype", "kv_dtype",
                 "mode", "html", "images", "image_size")


@app.command("estimate")
def estimate_cmd(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    hardware: str = typer.Option(None, "--hardware", "-d", help=HARDWARE_HELP),
    tp: int = typer.Option(1, "--tp", help=TP_HELP),
    pp: int = typer.Option(1, "--pp", help=PP_HELP),
    ep: int = typer.Option(None, "--ep", help=EP_HELP, show_default=False),
    dp: int = typer.Option(None, "--dp", help=DP_HELP, show_default=False),
    moe_imbalance: float = typer.Option(None, "--moe-imbalance", help=MOE_IMBALANCE_HELP, show_default=False),
    redundant_experts: int = typer.Option(0, "--redundant-experts", help=REDUNDANT_HELP),
    batch: str = typer.Option("1", "--batch", "-b", help="Batch size (sequences of the whole instance, split over "
                                                         "the dp replicas), or 'max'."),
    input_len: int = typer.Option(512, "--input", "-i", help="Prompt tokens per sequence."),
    output_len: int = typer.Option(128, "--output", "-o", help="Output tokens per sequence."),
    weight_dtype: str = typer.Option(None, "--weight-dtype", help=WEIGHT_DTYPE_HELP),
    kv_dtype: str = typer.Option("fp16", "--kv-dtype", help=KV_DTYPE_HELP),
    mode: str = typer.Option(None, "--mode", show_default=False, help=(
        "static (the default: the batch starts together, prefill then decode), continuous (the batch kept in "
        "flight by continuous batching), max (continuous at the largest batch that fits), rate (requests "
        "arriving at --rate per second: latency percentiles and capacity) or closed (--batch N closed-loop "
        "clients, as a benchmark client at --max-concurrency N: waves of prompts queue for the --chunk "
        "budget; latency percentiles). At one batch, "
        "static and continuous do the same work per output token, so their throughput agrees; they split "
        "it differently into TTFT and TPOT.")),
    rate: str = typer.Option(None, "--rate", help=RATE_HELP),
    concurrency: str = typer.Option(None, "--concurrency", help=CONCURRENCY_HELP),
    input_dist: str = typer.Option(None, "--input-dist", help=DIST_HELP),
    output_dist: str = typer.Option(None, "--output-dist", help=DIST_HELP),
    lengths: Path = typer.Option(None, "--lengths", help=LENGTHS_HELP),
    chunk: int = typer.Option(None, "--chunk", help=CHUNK_HELP),
    prefix_hit: float = typer.Option(None, "--prefix-hit", help=PREFIX_HELP),
    spec: str = typer.Option(None, "--spec", help=SPEC_HELP),
    acceptance: float = typer.Option(None, "--acceptance", help=ACCEPTANCE_HELP),
    prefill_hardware: str = typer.Option(None, "--prefill-hardware", help=PREFILL_HW_HELP),
    prefill_tp: int = typer.Option(None, "--prefill-tp", help="Tensor-parallel degree of each prefill instance."),
    prefill_count: int = typer.Option(None, "--prefill-count", help="Prefill instances (disaggregated serving)."),
    replicas: int = typer.Option(None, "--replicas", help="Identical instances sharing the rate (decode instances when disaggregated)."),
    ttft_slo: float = typer.Option(None, "--ttft-slo", help=TTFT_SLO_HELP),
    tpot_slo: float = typer.Option(None, "--tpot-slo", help=TPOT_SLO_HELP),
    calibration: str = typer.Option("default", "--calibration", help=CALIBRATION_HELP),
    max_batch: int = typer.Option(None, "--max-batch",
                                  help=f"Upper bound on the batch in max mode (default: the runtime's, {MAX_BATCH} for generic)."),
    runtime: str = typer.Option("generic", "--runtime", help=RUNTIME_HELP),
    images: int = typer.Option(0, "--images", help=IMAGES_HELP),
    image_size: str = typer.Option(None, "--image-size", help=IMAGE_SIZE_HELP),
    from_csv: Path = typer.Option(None, "--from-csv", help="CSV of workloads, one estimate per row."),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    html: Path = typer.Option(None, "--html", help=HTML_FILE_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Predict TTFT, TPOT, end-to-end time, throughput and memory of a workload."""
    if html is not None:
        check_output(html, ("html", "htm"), force=force)  # before any work
    if from_csv is not None:
        # Each row states its own workload: an option that would describe one is refused, not ignored.
        given = [f"--{name.replace('_', '-')}" for name in CSV_CONFLICTS
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]
        if given:
            raise InputError(f"--from-csv takes every workload from the file's rows; {', '.join(given)} cannot be "
                             "combined with it (give the values in columns"
                             + ("; --html reports on a single estimate" if html is not None else "") + ")")
        rows = read_csv_rows(from_csv)
        results = estimate_rows(rows, calibration, max_batch, runtime)
        if json_:
            write_json_stream(results)
        else:
            _csv_table(from_csv, len(rows), results)
        return
    if not model or not hardware:
        raise InputError("estimate needs --model and --hardware (or --from-csv FILE)")
    if mode is not None and mode.strip().lower() not in ALL_MODES:
        raise InputError(f"--mode must be one of {', '.join(ALL_MODES)}, got {mode!r}")
    serving = {"input_dist": input_dist, "output_dist": output_dist, "lengths": lengths, "chunk": chunk,
               "prefix_hit": prefix_hit, "spec": spec, "acceptance": acceptance,
               "prefill_hardware": prefill_hardware, "prefill_tp": prefill_tp, "prefill_count": prefill_count,
               "replicas": replicas}
    given = {k: v for k, v in serving.items() if v is not None}
    if images and mode is not None and mode.strip().lower() == "closed":
        raise InputError("--images: closed-loop clients (--mode closed) do not take images yet; use --mode "
                         "static, continuous, max or --rate")
    image_args = {"images": images, "image_size": image_size} if images else {}
    if rate is not None or concurrency is not None or (mode is not None and mode.strip().lower() == "rate"):
        if mode is not None and mode.strip().lower() != "rate":
            raise InputError(f"--rate and --concurrency set requests arriving at a rate (--mode rate); they cannot be "
                             f"combined with --mode {mode.strip().lower()}")
        if rate is None and concurrency is None:
            raise InputError("--mode rate needs --rate R (requests per second, or a list 1,2,4) or --concurrency N")
        if rate is not None and concurrency is not None:
            raise InputError("give --rate or --concurrency, not both (the rate follows from the concurrency)")
        run_rate(json_, concurrency=concurrency, html=html, force=force, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                 model=model, hardware=hardware, rate=rate, input_len=input_len, output_len=output_len,
                 tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance, redundant_experts=redundant_experts,
                 weight_dtype=weight_dtype, kv_dtype=kv_dtype, calibration=calibration, runtime=runtime,
                 max_batch_size=max_batch, **{**given, "prefix_hit": prefix_hit or 0.0}, **image_args)
        return
    if ttft_slo is not None or tpot_slo is not None:
        raise InputError("--ttft-slo and --tpot-slo apply to requests at a rate (--rate R or --concurrency N)")
    if mode is not None and mode.strip().lower() == "closed":
        other = sorted(k for k in given if k not in ("chunk", "prefix_hit"))
        if other:
            raise InputError(f"--{other[0].replace('_', '-')} does not apply to --mode closed (closed-loop clients with "
                             "equal lengths on one instance; it takes --chunk and --prefix-hit)")
        clients = _int_or_max(batch, "--batch")
        if clients == "max":
            raise InputError("--mode closed takes --batch N, the number of clients (or a list 8,64), not 'max'")
        if html is not None:
            raise InputError("--html is not available with --mode closed: use --json")
        run_rate(json_, clients=clients, ttft_slo=ttft_slo, tpot_slo=tpot_slo, model=model, hardware=hardware,
                 input_len=input_len, output_len=output_len, tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance,
                 redundant_experts=redundant_experts, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                 calibration=calibration, runtime=runtime, max_batch_size=max_batch, chunk=chunk,
                 prefix_hit=prefix_hit or 0.0)
        return
    if given:
        raise InputError(f"--{sorted(given)[0].replace('_', '-')} applies to requests at a rate: add --rate R")
    b = _int_or_max(batch, "--batch")
    if b == "max" and mode is not None and mode.strip().lower() in ("static", "continuous"):
        raise InputError(f"--batch max picks the largest batch that fits under continuous batching (--mode max); "
                         f"it cannot be combined with --mode {mode.strip().lower()}: give a number of sequences or "
                         "drop --mode")
    r = estimate(model, hardware, batch=b, input_len=input_len, output_len=output_len, tp=tp, pp=pp, ep=ep, dp=dp,
                 moe_imbalance=moe_imbalance, redundant_experts=redundant_experts, weight_dtype=weight_dtype,
                 kv_dtype=kv_dtype, mode=mode, calibration=calibration, max_batch_size=max_batch, runtime=runtime,
                 images=images, image_size=image_size)
    d = _scalar(r.to_dict())
    if html is not None:
        from ..report import write_estimate_report

        write_estimate_report(html, r, model=model, hardware=hardware, calibration=calibration, force=force)
        (console_err if json_ else say)(f"wrote {html}")
    if json_:
        print_json(d)
        return
    if isinstance(d["batch"], list):  # several workloads: one row each
        _estimate_rows(d)
        return
    mem = d["memory"]
    interval = d.get("interval", {})

    def span(key: str, scale: float = 1.0) -> str:
        """The interval beside a value: ' (80%: 5.1-6.9)'."""
        if key not in interval or None in interval[key]:
            return ""
        lo, hi = (v * scale for v in interval[key])
        return f"   ({interval['level']:.0%} interval {fmt(lo)} to {fmt(hi)})"

    table(f"{d['model']} on {d['gpus']}× {d['hardware']}{_layout_words(d)} ({d['mode']}, {d['weight_dtype']} weights, "
          f"{d['kv_dtype']} KV, {d['runtime']}, {'calibrated' if d['calibrated'] else 'plain roofline'})",
          ["quantity", "value"],
          [["batch", d["batch"]], ["input / output tokens", f"{input_len} / {output_len}"],
           ["TTFT", f"{fmt(d['ttft_s'] * 1e3)} ms{span('ttft_s', 1e3)}"],
           ["TPOT", f"{fmt(d['tpot_s'] * 1e3)} ms{span('tpot_s', 1e3)}"],
           ["end-to-end", f"{fmt(d['e2e_s'])} s{span('e2e_s')}"],
           ["throughput", f"{fmt(d['throughput_tok_s'])} tok/s{span('throughput_tok_s')}"],
           *([["images", f"{images} per sequence x {d['tokens_per_image']} tokens "
                         f"({d['image_size'][0]}x{d['image_size'][1]} px)"]] if images else []),
           ["throughput per GPU", f"{fmt(d['throughput_per_gpu_tok_s'])} tok/s"],
           ["energy", f"{fmt(d['energy_j_per_token'])} J/token at {fmt(d['power_w_per_gpu'])} W per GPU "
                      f"(at full TDP: {fmt(d['energy_j_per_token_tdp'])} J/token)"],
           ["memory per GPU", f"{fmt(mem['weights_gb'])} weights + {fmt(mem['kv_cache_gb'])} KV + "
                              f"{fmt(mem['activations_gb'])} act = {fmt(mem['total_gb'])} of {fmt(mem['capacity_gb'])} GB"],
           ["fits", mem["fits"]]])
    if not mem["fits"]:
        console.print("[bold red]This workload does not fit in memory: the times above are not achievable.[/]")
    if interval.get("widened_for"):
        console.print(f"interval widened: beyond the measured data ({', '.join(interval['widened_for'])})")
    _print_warnings(d)


def _layout_words(d: dict[str, Any]) -> str:
    """' (tp 1, dp 32, ep 32)' when the layout is more than tensor parallelism, else ''."""
    if d.get("pp", 1) == 1 and d.get("ep", 1) == 1 and d.get("dp", 1) == 1:
        return ""
    return " (" + ", ".join(f"{k} {d[k]}" for k in ("tp", "pp", "dp", "ep") if k in d) + ")"


CSV_COLUMNS = ["model", "hardware", "mode", "batch", "in", "out", "TTFT s", "TPOT ms", "tok/s", "fits", "error"]
RICH_ROWS = 2000  # more rows than this are written as plain aligned text, line by line


def _csv_cells(r: dict[str, Any]) -> list[Any]:
    return [r.get("model"), r.get("hardware"), r.get("mode"), r.get("batch"), r.get("input_len"), r.get("output_len"),
            r.get("ttft_s"), (r.get("tpot_s") or 0) * 1e3, r.get("throughput_tok_s"),
            (r.get("memory") or {}).get("fits"), r.get("error", "")]


def _csv_table(path: Path, n: int, results: Iterator[dict[str, Any]]) -> None:
    if n <= RICH_ROWS:
        table(f"{n} estimates from {path}", CSV_COLUMNS, [_csv_cells(r) for r in results])
        return
    # A rich table holds every row before it draws; this many rows stream as aligned text instead.
    widths = [34, 16, 10, 6, 7, 7, 9, 9, 9, 4, 0]
    out = sys.stdout
    out.write(f"{n:,} estimates from {path}\n")
    out.write("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(CSV_COLUMNS, widths, strict=True))).rstrip() + "\n")
    for r in results:
        cells = [fmt(v) for v in _csv_cells(r)]
        out.write("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip() + "\n")


def _print_warnings(d: dict[str, Any]) -> None:
    for line in d.get("warnings", []):
        console.print(f"[yellow]note:[/] {escape(line)}", highlight=False)


def _estimate_rows(d: dict[str, Any]) -> None:
    """Estimates over a list of batches (or lengths): one table row each."""
    n = len(d["batch"])

    def col(key: str, sub: str | None = None) -> list[Any]:
        v = d[key][sub] if sub else d[key]
        return v if isinstance(v, list) else [v] * n

    table(f"{d['model']} on {d['gpus']}× {d['hardware']} ({d['mode']}, {d['weight_dtype']} weights, "
          f"{d['kv_dtype']} KV, {'calibrated' if d['calibrated'] else 'plain roofline'})",
          ["batch", "input", "output", "TTFT ms", "TPOT ms", "end-to-end s", "tok/s", "tok/s per GPU",
           "J/token", "memory GB per GPU", "fits"],
          [[int(b), int(i), int(o), t * 1e3, p * 1e3, e, th, tg, j, m, f] for b, i, o, t, p, e, th, tg, j, m, f in zip(
              col("batch"), col("input_len"), col("output_len"), col("ttft_s"), col("tpot_s"), col("e2e_s"),
              col("throughput_tok_s"), col("throughput_per_gpu_tok_s"), col("energy_j_per_token"),
              col("memory", "total_gb"), col("memory", "fits"), strict=False)])
    _print_warnings(d)


def _ops_table(title: str, rows: list[dict[str, Any]], total: float) -> None:
    table(title,
          ["operator", "count", "GFLOPs", "weights MB", "act r/w MB", "KV r/w MB", "FLOP/B", "bound", "time µs", "share"],
          [[r["name"], r["count"], r["flops"] / 1e9, r["weight_bytes"] / 1e6,
            (r["act_read_bytes"] + r["act_write_bytes"]) / 1e6, (r["kv_read_bytes"] + r["kv_write_bytes"]) / 1e6,
            r["intensity"], r["bound"], r["time_s"] * 1e6, f"{r['time_s'] / total:.1%}"] for r in rows])


@app.command("ops")
def ops_cmd(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    hardware: str = typer.Option(..., "--hardware", "-d", help=HARDWARE_HELP),
    phase: str = typer.Option("decode", "--phase", help="prefill | decode | vision (the vision encoder of a "
                                                         "vision-language model over --batch images)"),
    batch: int = typer.Option(1, "--batch", "-b", help="Sequences in the pass (images with --phase vision)."),
    seq: int = typer.Option(1024, "--seq", "-s", help="Prompt length (prefill) or KV length (decode)."),
    tp: int = typer.Option(1, "--tp", help=TP_HELP),
    ep: int = typer.Option(None, "--ep", help=EP_HELP, show_default=False),
    dp: int = typer.Option(None, "--dp", help=DP_HELP + " --batch is then one replica's sequences.",
                           show_default=False),
    moe_imbalance: float = typer.Option(None, "--moe-imbalance", help=MOE_IMBALANCE_HELP, show_default=False),
    redundant_experts: int = typer.Option(0, "--redundant-experts", help=REDUNDANT_HELP),
    weight_dtype: str = typer.Option(None, "--weight-dtype", help=WEIGHT_DTYPE_HELP),
    kv_dtype: str = typer.Option("fp16", "--kv-dtype", help=KV_DTYPE_HELP),
    calibration: str = typer.Option("none", "--calibration", help=CALIBRATION_HELP),
    unfused: bool = typer.Option(False, "--unfused-attention", help="Materialize attention scores (no flash kernel)."),
    image_size: str = typer.Option(None, "--image-size", help=IMAGE_SIZE_HELP + " With --phase vision."),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The LLMRoofline article's method 2: per-operator FLOPs, bytes, intensity, bound and time of one pass."""
    if phase not in ("prefill", "decode", "vision"):
        raise InputError(f"--phase must be prefill, decode or vision, got {phase!r}")
    for name, v in (("--batch", batch), ("--seq", seq)):
        if v < 1 or v > 1e8:
            raise InputError(f"{name} must be from 1 to 1e8, got {v}")
    dep = make_deployment(model, hardware, tp=tp, ep=ep, dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          fused_attention=not unfused, moe_imbalance=moe_imbalance,
                          redundant_experts=redundant_experts)
    group = AttentionGroup(batch, 1, seq - 1) if phase == "decode" else AttentionGroup(batch, seq, 0)
    if phase == "vision":
        if dep.model.vision is None:
            raise InputError(f"--phase vision: {dep.model.id} has no vision tower this tool models (a text-only model)")
        ops = vision_ops(dep.model.vision, batch, image_size=image_size, tp=tp)
    else:
        ops = dep.ops([group])
    times = time_ops(ops, dep.hardware, load_calibration(calibration).for_device(dep.hardware))
    bound = times.bound()
    rows: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        rows.append({
            "name": op.name, "kind": op.kind, "count": op.count, "precision": op.precision,
            "flops": float(op.flops) * op.count,
            "weight_bytes": float(op.weight_bytes) * op.count,
            "act_read_bytes": float(op.act_read_bytes) * op.count,
            "act_write_bytes": float(op.act_write_bytes) * op.count,
            "kv_read_bytes": float(op.kv_read_bytes) * op.count,
            "kv_write_bytes": float(op.kv_write_bytes) * op.count,
            "intensity": float(op.intensity),
            "bound": str(bound[i]),
            "time_s": float(times.time_s[i]) * op.count,
        })
    total = float(sum(r["time_s"] for r in rows))
    if phase == "vision":
        lay = dep.model.vision.layout(image_size)  # type: ignore[union-attr]  # checked above
        if json_:
            print_json({"model": dep.model.id, "hardware": dep.hardware.id, "phase": phase, "images": batch,
                        "image_size": list(lay.pixels), "tokens_per_image": lay.tokens, "tp": tp,
                        "operators": rows, "total_time_s": total})
            return
        _ops_table(f"{dep.model.id} on {dep.hardware.id}, vision encoder, {batch} image(s) of {lay.pixels[0]}x"
                   f"{lay.pixels[1]} px (times summed over layers)", rows, total)
        console.print(f"method 2 (operators): {total * 1e3:.3f} ms for the images ({lay.tokens} prompt tokens each)")
        return
    # The LLMRoofline article's method 1 beside it: the decoder layers as one kernel.
    whole = whole_model(dep.model, group.batch, group.new, group.past, weight_dtype=dep.weight_dtype,
                        kv_dtype=dep.kv_dtype, tp=tp)
    whole_s = float(roofline_time(whole.flops, whole.bytes, device_peak(dep.hardware, dep.gemm_precision),
                                  dep.hardware.memory_bandwidth))
    method1 = {"flops": float(whole.flops), "bytes": float(whole.bytes), "intensity": float(whole.intensity),
               "time_s": whole_s}
    if json_:
        print_json({"model": dep.model.id, "hardware": dep.hardware.id, "phase": phase, "batch": batch,
                    "seq": seq, **parallelism_fields(dep), "weight_dtype": dep.weights.label,
                    "weight_formats": dep.weight_formats(), "operators": rows, "total_time_s": total, "method1": method1})
        return
    _ops_table(f"{dep.model.id} on {dep.hardware.id}, {phase}, batch {batch}, seq {seq} (times summed over layers)",
               rows, total)
    console.print(f"method 2 (operators): {total * 1e3:.3f} ms per pass")
    console.print(f"method 1 (whole model, plain roofline): {whole_s * 1e3:.3f} ms per pass, intensity "
                  f"{method1['intensity']:.1f} FLOP/byte (no embeddings, lm_head or activations)")
