"""`recommend` (the cheapest device and configuration within SLOs) and `pareto` (the
throughput-latency frontier per device)."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ..errors import InputError, clean_name
from ..files import check_output
from ..formatting import money
from ..pareto_plot import (
    fleet_html,
    pareto_html,
    pareto_png,
    rate_view_png,
    recommendation_html,
    write_text,
)
from ..recommend import (
    Choice,
    Recommendation,
    interactive_default,
    objective_text,
    pareto,
    recommend,
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
    REDUNDANT_HELP,
    RUNTIME_HELP,
    WEIGHT_DTYPE_HELP,
    app,
    console,
    console_err,
    fmt,
    print_json,
    say,
    table,
)

DEVICES_HELP = "Devices to consider: comma-separated ids or aliases, or 'all' (the whole catalog)."
TTFT_SLO_HELP = "Time-to-first-token target, seconds."
TPOT_SLO_HELP = "Time-per-output-token target, seconds (0.05 = 20 tokens/s per user)."
TPOT_DEFAULT_HELP = (" Without --ttft-slo or --tpot-slo, recommend ranks for an interactive service at 0.05 s; "
                     "'none' ranks by cost alone.")
MAX_GPUS_HELP = ("Most GPUs one model instance may use (default 8). Above 8, a mixture-of-experts model is also "
                 "searched with wide expert parallelism (ep 16, 32, 64, ... with data-parallel attention). Not "
                 "given: a mixture-of-experts model that fits nowhere on a device within 8 GPUs is searched there "
                 "up to 64 with wide expert parallelism.")
FIXED_HELP = " Given: the search keeps this degree fixed and searches the others."
PRICE_HELP = "Price override DEVICE=USD_PER_GPU_HOUR (repeatable, or comma-separated pairs)."
INPUT_HELP = "Prompt tokens per request."
OUTPUT_HELP = "Output tokens per request."


def parse_prices(items: list[str] | None) -> dict[str, float]:
    """['H20=1.2', 'L20=0.5,A10=0.4'] -> {'H20': 1.2, ...}; malformed or non-positive: InputError."""
    out: dict[str, float] = {}
    for item in items or []:
        for pair in str(item).split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise InputError(f"--price must look like DEVICE=USD_PER_GPU_HOUR (e.g. H20=1.2), got {pair!r}")
            try:
                usd = float(value)
            except ValueError:
                raise InputError(f"--price {pair!r}: {value.strip()!r} is not a number") from None
            if not math.isfinite(usd) or usd <= 0:
                raise InputError(f"--price {pair!r}: the price must be a positive number of USD per GPU-hour")
            out[name.strip()] = usd
    return out


def _seconds(text: str | None, name: str) -> float | None:
    """A latency target in seconds from the command line (None when not given)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{name} must be a number of seconds or 'none', got {text!r}") from None


def _rows(choices: list[Choice]) -> list[list[object]]:
    return [[c.device, c.gpus, f"{c.tp}/{c.pp}/{c.ep}" + (f" dp {c.dp}" if c.dp > 1 else ""), c.batch, c.ttft_s, c.tpot_s * 1e3, c.tokens_per_s_per_user,
             c.throughput_per_gpu_tok_s, money(c.price_per_gpu_hour), c.cost_per_million_tokens, c.energy_j_per_token]
            for c in choices]


COLUMNS = ["device", "GPUs", "tp/pp/ep", "batch", "TTFT s", "TPOT ms", "tok/s/user", "tok/s/GPU", "$/GPU-h",
           "$/M tok", "J/tok"]


def _no_layout_with_rate(layout: dict) -> None:
    """Fleet sizing (--rate) searches tensor parallelism per device only: a fixed layout is refused, not ignored."""
    given = [f"--{k.replace('_', '-')}" for k, v in layout.items() if v not in (None, 0)]
    if given:
        raise InputError(f"{', '.join(given)} cannot be combined with --rate: fleet sizing searches tensor-parallel "
                         "replicas per device (drop --rate to rank layouts with them)")


def _slo_words(rec: Recommendation) -> str:
    w = rec.workload
    parts = ([f"TTFT ≤ {w.ttft_slo:g} s"] if w.ttft_slo else []) + (
        [f"TPOT ≤ {w.tpot_slo * 1e3:g} ms"] if w.tpot_slo else [])
    return ", ".join(parts) or "no latency targets"


def _print_recommendation(rec: Recommendation) -> None:
    w = rec.workload
    title = (f"{w.model.id}, {w.input_len} in / {w.output_len} out, {w.weight_dtype} weights, {w.kv_dtype} KV, "
             f"{_slo_words(rec)}, {w.gpu_limit}: cheapest configuration per device, best first")
    if rec.ranking:
        table(title, COLUMNS, _rows(rec.ranking))
        best = rec.ranking[0]
        if best.interval:
            lo, hi = best.interval["throughput_per_gpu_tok_s"]
            tlo, thi = best.interval["tpot_s"]
            console.print(f"{best.interval['level']:.0%} interval for {best.device}: {fmt(lo)} to {fmt(hi)} tok/s/GPU, "
                          f"TPOT {fmt(tlo * 1e3)} to {fmt(thi * 1e3)} ms (intervals of every entry: --json)")
        console.print(f"J/tok from the power model (docs/energy.md); {best.device} at full TDP: "
                      f"{fmt(best.energy_j_per_token_tdp)} J/tok (every entry: --json)")
    else:
        console.print(f"[bold red]No configuration meets the SLOs ({_slo_words(rec)}) on any device considered.[/]")
        closest = rec.closest()
        if closest:
            table("Closest configurations (nearest the targets first)", COLUMNS + ["over SLO"],
                  [[*_rows([e.closest])[0], f"+{(e.slo_miss or 0) * 100:.0f}%"] for e in closest if e.closest])
    others = [e for e in rec.excluded if e.closest is None or rec.ranking]
    if others:
        table("Excluded", ["device", "reason"], [[e.device, e.reason] for e in others])


def _fleet(model, input_len, output_len, rate, devices, ttft_slo, tpot_slo, disaggregated, max_gpus, prices,
           weight_dtype, kv_dtype, calibration, runtime, json_: bool, note: str, *, html: Path | None = None,
           png: Path | None = None, force: bool = False, images: dict[str, object] | None = None) -> None:
    from ..model import load_model
    from ..serving.fleet import size_fleet

    figures = html is not None or png is not None
    out = size_fleet(model, input_len, output_len, rate, devices, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                     disaggregated=disaggregated, max_gpus=max_gpus, prices=prices, weight_dtype=weight_dtype,
                     kv_dtype=kv_dtype, calibration=calibration, runtime=runtime, curves=figures, **(images or {}))
    out["warnings"] = [note] if note else []
    tell = console_err if json_ else say
    if figures:
        name = load_model(model).id
        if png is not None:
            tell(f"wrote {rate_view_png(out, png, model=name, force=force)}")
        if html is not None:
            tell(f"wrote {write_text(html, fleet_html(out, model=name, note=note), force=force)}")
        del out["curves"]
    if json_:
        print_json(out)
        return
    slos = ", ".join(([f"TTFT p90 ≤ {ttft_slo:g} s"] if ttft_slo else []) + ([f"TPOT p90 ≤ {tpot_slo * 1e3:g} ms"]
                                                                          if tpot_slo else []))
    from ..serving.fleet import layout_text

    rows = []
    for e in out["ranking"]:
        rows.append([e["device"], layout_text(e), e["devices_needed"], e["ttft_p90_s"], e["tpot_p90_s"] * 1e3,
                     money(e["cost_per_hour"]), e["cost_per_million_tokens"]])
    table(f"{clean_name(str(model))}, {input_len} in / {output_len} out at {out['rate']:g} req/s, {slos}: fleets, "
          "cheapest first", ["device", "layout", "devices", "TTFT p90 s", "TPOT p90 ms", "$/h", "$/M tok"], rows)
    if out["excluded"]:
        table("Excluded", ["device", "reason"], [[e["device"], e["reason"]] for e in out["excluded"]])
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command("recommend")
def recommend_cmd(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    input_len: int = typer.Option(..., "--input", "-i", help=INPUT_HELP),
    output_len: int = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    devices: str = typer.Option("all", "--devices", "-d", help=DEVICES_HELP),
    ttft_slo: float | None = typer.Option(None, "--ttft-slo", help=TTFT_SLO_HELP),
    tpot_slo_text: str = typer.Option(None, "--tpot-slo", help=TPOT_SLO_HELP + TPOT_DEFAULT_HELP),
    max_gpus: int = typer.Option(None, "--max-gpus", help=MAX_GPUS_HELP, show_default=False),
    tp: int = typer.Option(None, "--tp", help="Tensor-parallel degree." + FIXED_HELP, show_default=False),
    pp: int = typer.Option(None, "--pp", help="Pipeline-parallel degree." + FIXED_HELP, show_default=False),
    ep: int = typer.Option(None, "--ep", help=EP_HELP + FIXED_HELP, show_default=False),
    dp: int = typer.Option(None, "--dp", help=DP_HELP + FIXED_HELP, show_default=False),
    moe_imbalance: float = typer.Option(None, "--moe-imbalance", help=MOE_IMBALANCE_HELP, show_default=False),
    redundant_experts: int = typer.Option(0, "--redundant-experts", help=REDUNDANT_HELP),
    price: list[str] = typer.Option(None, "--price", help=PRICE_HELP),
    weight_dtype: str = typer.Option(None, "--weight-dtype", help=WEIGHT_DTYPE_HELP),
    kv_dtype: str = typer.Option(None, "--kv-dtype", help=KV_DTYPE_HELP),
    calibration: str = typer.Option("default", "--calibration", help=CALIBRATION_HELP),
    runtime: str = typer.Option("generic", "--runtime", help=RUNTIME_HELP),
    html: Path = typer.Option(None, "--html", help="Also write an HTML report (ranking and Pareto chart; with "
                                                    "--rate the fleets and the request-rate view; an existing file "
                                                    "needs --force)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    rate: str = typer.Option(None, "--rate", help="Fleet sizing: requests per second to serve (Poisson); the SLOs "
                                                  "then apply to p90 TTFT and TPOT, and each entry gives replicas "
                                                  "and devices_needed."),
    disaggregated: bool = typer.Option(False, "--disaggregated", help="With --rate: also search prefill/decode "
                                                                      "layouts on separate instances."),
    images: int = typer.Option(0, "--images", help=IMAGES_HELP),
    image_size: str = typer.Option(None, "--image-size", help=IMAGE_SIZE_HELP),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Which device, parallelism and batch serve a workload cheapest per token within the SLOs."""
    if html is not None:
        check_output(html, ("html", "htm"), force=force)  # before any work
    note = ""
    tpot_slo: float | None = None
    if tpot_slo_text is None or tpot_slo_text.strip().lower() != "none":
        ttft_slo, tpot_slo, note = interactive_default(ttft_slo, _seconds(tpot_slo_text, "--tpot-slo"))
    layout = dict(tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    if disaggregated and rate is None:
        raise InputError("--disaggregated sizes a fleet: add --rate R (requests per second)")
    if rate is not None:
        _no_layout_with_rate(layout)
        _fleet(model, input_len, output_len, rate, devices, ttft_slo, tpot_slo, disaggregated, max_gpus,
               parse_prices(price), weight_dtype, kv_dtype, calibration, runtime, json_, note, html=html, force=force,
               images={"images": images, "image_size": image_size} if images else {})
        return
    rec = recommend(model, input_len, output_len, devices=devices, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                    max_gpus=max_gpus, prices=parse_prices(price), weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                    calibration=calibration, runtime=runtime, **layout, images=images,
                    image_size=image_size)
    if html is not None:
        path = write_text(html, recommendation_html(rec, note=note), force=force)
        (console_err if json_ else say)(f"wrote {path}")
    if json_:
        print_json({**rec.to_dict(), "objective": objective_text(rec.workload), "warnings": [note] if note else []})
        return
    _print_recommendation(rec)
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"[dim]{objective_text(rec.workload)}[/]", highlight=False)


@app.command("pareto")
def pareto_cmd(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    input_len: int = typer.Option(..., "--input", "-i", help=INPUT_HELP),
    output_len: int = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    devices: str = typer.Option("all", "--devices", "-d", help=DEVICES_HELP),
    ttft_slo: float = typer.Option(None, "--ttft-slo", help=TTFT_SLO_HELP + " Points that miss it are left out."),
    tpot_slo: float = typer.Option(None, "--tpot-slo", help=TPOT_SLO_HELP + " Points that miss it are left out."),
    max_gpus: int = typer.Option(None, "--max-gpus", help=MAX_GPUS_HELP, show_default=False),
    tp: int = typer.Option(None, "--tp", help="Tensor-parallel degree." + FIXED_HELP, show_default=False),
    pp: int = typer.Option(None, "--pp", help="Pipeline-parallel degree." + FIXED_HELP, show_default=False),
    ep: int = typer.Option(None, "--ep", help=EP_HELP + FIXED_HELP, show_default=False),
    dp: int = typer.Option(None, "--dp", help=DP_HELP + FIXED_HELP, show_default=False),
    moe_imbalance: float = typer.Option(None, "--moe-imbalance", help=MOE_IMBALANCE_HELP, show_default=False),
    redundant_experts: int = typer.Option(0, "--redundant-experts", help=REDUNDANT_HELP),
    price: list[str] = typer.Option(None, "--price", help=PRICE_HELP),
    weight_dtype: str = typer.Option(None, "--weight-dtype", help=WEIGHT_DTYPE_HELP),
    kv_dtype: str = typer.Option(None, "--kv-dtype", help=KV_DTYPE_HELP),
    calibration: str = typer.Option("default", "--calibration", help=CALIBRATION_HELP),
    runtime: str = typer.Option("generic", "--runtime", help=RUNTIME_HELP),
    out: Path = typer.Option(None, "--out", help="Write the chart as a PNG file (an existing file needs --force)."),
    html: Path = typer.Option(None, "--html", help="Write the chart as an interactive HTML file (an existing file "
                                                    "needs --force)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    rate: str = typer.Option(None, "--rate", help="The request-rate view: per device, one replica's cost per "
                                                  "million tokens against its request rate (solid where the p90 "
                                                  "targets hold) and the devices a fleet needs against the total "
                                                  "rate, with this rate (requests/s, Poisson) marked."),
    disaggregated: bool = typer.Option(False, "--disaggregated", help="With --rate: also draw prefill/decode "
                                                                      "layouts on separate instances."),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Throughput per GPU against tokens/s per user: the frontier per device and across devices
    (with --rate: cost and devices needed against the request rate)."""
    if out is not None and out.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {clean_name(str(out))!r}")
    for option, path, formats in (("--out", out, ("png",)), ("--html", html, ("html", "htm"))):
        if path is not None:  # before any work
            check_output(path, formats, force=force, what=option)
    if out is not None and html is not None and out.expanduser().resolve() == html.expanduser().resolve():
        raise InputError("--out and --html name the same file")
    layout = dict(tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    if disaggregated and rate is None:
        raise InputError("--disaggregated belongs to the request-rate view: add --rate R (requests per second)")
    if rate is not None:
        _no_layout_with_rate(layout)
        _fleet(model, input_len, output_len, rate, devices, ttft_slo, tpot_slo, disaggregated, max_gpus,
               parse_prices(price), weight_dtype, kv_dtype, calibration, runtime, json_, "", html=html, png=out,
               force=force)
        return
    result = pareto(model, input_len, output_len, devices=devices, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                    max_gpus=max_gpus, prices=parse_prices(price), weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                    calibration=calibration, runtime=runtime, **layout)
    tell = console_err if json_ else say
    if out is not None:
        tell(f"wrote {pareto_png(result, out, force=force)}")
    if html is not None:
        tell(f"wrote {write_text(html, pareto_html(result), force=force)}")
    if json_:
        print_json(result.to_dict())
        return
    w = result.workload
    frontier = result.overall_frontier()
    table(f"{w.model.id}, {w.input_len} in / {w.output_len} out: frontier across devices "
          f"({sum(len(p) for p in result.points.values())} configurations on {len(result.points)} devices)",
          COLUMNS, _rows(frontier))
    per_device = [[d, len(p), len(result.frontier(d)), max(p.tokens_per_s_per_user), max(p.throughput_per_gpu_tok_s)]
                  for d, p in result.points.items()]
    table("Per device", ["device", "points", "on frontier", "best tok/s/user", "best tok/s/GPU"], per_device)
    if result.excluded:
        table("Excluded", ["device", "reason"], [[e.device, e.reason] for e in result.excluded])
