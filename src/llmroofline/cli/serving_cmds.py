"""`estimate --mode rate`: requests at a rate (serving.py's layer), one table row per rate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape

from ..errors import InputError
from .common import console, console_err, fmt, print_json, say, table

RATE_HELP = ("Requests per second arriving (Poisson), or a comma-separated sweep 1,2,4; implies --mode rate.")
CONCURRENCY_HELP = ("Requests kept in flight on average (or a list 8,64): the rate follows by Little's law; "
                    "arrivals are still Poisson. Implies --mode rate.")
DIST_HELP = "Length distribution: fixed (the default: --input/--output), uniform:LO:HI or lognormal:MEAN:SIGMA."
LENGTHS_HELP = "CSV of input_len,output_len pairs (a trace of requests); replaces the distributions."
CHUNK_HELP = "Token budget per step for chunked prefill (default: the runtime's chunk_tokens)."
PREFIX_HELP = "Share of prompt tokens found in the prefix cache, in [0, 1)."
SPEC_HELP = "Speculative decoding: mtp:K (prediction heads) or draft:MODEL:K (a draft model), K draft tokens."
ACCEPTANCE_HELP = "Per-token acceptance rate of the draft tokens, in [0, 1] (with --spec)."
PREFILL_HW_HELP = "Disaggregated serving: the device prefill runs on (decode runs on --hardware)."
TTFT_SLO_HELP = ("With --rate: p90 time-to-first-token target in seconds; JSON meets_slo per rate, a line in --html.")
TPOT_SLO_HELP = ("With --rate: p90 time-per-output-token target in seconds; JSON meets_slo per rate, a line in --html.")
SERVING_ONLY = ("input_dist", "output_dist", "lengths", "chunk", "prefix_hit", "spec", "acceptance",
                "prefill_hardware", "prefill_tp", "prefill_count", "replicas")


def run_rate(json_: bool, concurrency: str | None = None, clients: Any = None, html: Path | None = None,
             force: bool = False, ttft_slo: float | None = None, tpot_slo: float | None = None,
             **kwargs: Any) -> None:
    # Imported here: `estimate` imports this module, and most of its runs serve no request rate.
    from ..serving import serve, serve_at_concurrency, serve_closed

    for name, v in (("--ttft-slo", ttft_slo), ("--tpot-slo", tpot_slo)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number of seconds, got {v:g}")
    model, hardware = kwargs.pop("model"), kwargs.pop("hardware")
    if clients is not None:
        r = serve_closed(model, hardware, clients, **kwargs)
    elif concurrency is not None:
        kwargs.pop("rate", None)
        r = serve_at_concurrency(model, hardware, concurrency, **kwargs)
    else:
        r = serve(model, hardware, kwargs.pop("rate"), **kwargs)
    if html is not None:
        from ..report import write_serving_report

        kwargs.pop("rate", None)
        path = write_serving_report(html, r, model=model, hardware=hardware, serve_args=kwargs, ttft_slo=ttft_slo,
                                    tpot_slo=tpot_slo, force=force)
        (console_err if json_ else say)(f"wrote {path}")
    d = r.to_dict()
    if ttft_slo is not None or tpot_slo is not None:
        meets = ~np.asarray(r.saturated, dtype=bool)
        if ttft_slo is not None:
            meets &= np.nan_to_num(r.percentiles["ttft_p90_s"], nan=np.inf) <= ttft_slo
        if tpot_slo is not None:
            meets &= np.nan_to_num(r.percentiles["tpot_p90_s"], nan=np.inf) <= tpot_slo
        d["meets_slo"] = meets.tolist()
    if json_:
        if len(d["rate"]) == 1:
            d = {k: (v[0] if isinstance(v, list) and len(v) == 1 and k != "warnings" else v) for k, v in d.items()}
        print_json(d)
        return

    def ms(v: Any) -> Any:
        return None if v is None else v * 1e3

    interval = d.get("interval", {})

    def span(key: str, i: int) -> str:
        """The mean's interval, in ms: '5.1-6.9'."""
        if key not in interval or interval[key][0][i] is None or interval[key][1][i] is None:
            return ""
        return f"{fmt(interval[key][0][i] * 1e3)}-{fmt(interval[key][1][i] * 1e3)}"

    if d["mode"] == "closed":
        table(f"{d['model']} on {d['hardware']} tp{d['tp']} ({d['runtime']}), closed-loop clients, "
              f"{fmt(d['input_len'])}/{fmt(d['output_len'])} tokens, prefill budget {d['chunk_tokens']} tokens per step",
              ["clients", "req/s", "TTFT ms", "TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT ms", "TPOT p90 ms",
               "E2E s", "prefill steps per wave", "tok/s"],
              [[n, d["rate"][i], ms(d["ttft_s"][i]), ms(d["ttft_p50_s"][i]), ms(d["ttft_p90_s"][i]),
                ms(d["ttft_p99_s"][i]), ms(d["tpot_s"][i]), ms(d["tpot_p90_s"][i]), d["e2e_s"][i],
                d["prefill_steps"][i], d["throughput_tok_s"][i]] for i, n in enumerate(d["clients"])])
        for line in d["warnings"]:
            console.print(f"[yellow]note:[/] {escape(line)}", highlight=False)
        return
    rows = []
    for i, rate in enumerate(d["rate"]):
        rows.append([rate, ms(d["ttft_p50_s"][i]), ms(d["ttft_p90_s"][i]), ms(d["ttft_p99_s"][i]),
                     ms(d["tpot_s"][i]), span("tpot_s", i), ms(d["tpot_p90_s"][i]), d["e2e_p90_s"][i],
                     d["concurrency"][i], d["throughput_tok_s"][i],
                     "SATURATED" if d["saturated"][i] else ("misses SLO" if not d.get("meets_slo", [True] * (i + 1))[i]
                                                            else "")])
    layout = (f"prefill {d['prefill']['count']}x {d['prefill']['hardware']} tp{d['prefill']['tp']}, decode "
              if d["disaggregated"] else "")
    table(f"{d['model']} on {layout}{d['replicas']}x {d['hardware']} tp{d['tp']} ({d['runtime']}), requests at a rate: "
          f"capacity {fmt(d['capacity_req_s'])} req/s",
          ["req/s", "TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT ms",
           f"TPOT {interval.get('level', 0.8):.0%} interval", "TPOT p90 ms", "E2E p90 s", "in flight", "tok/s", "state"],
          rows)
    if d["disaggregated"]:
        console.print(f"KV transfer {fmt(d['kv_transfer_s'] * 1e3)} ms per request over {escape(d['kv_link'])}")
    if "spec" in d:
        sp = d["spec"]
        gains = ", ".join("-" if g is None else f"{g:.2f}x" for g in sp["decode_speedup"])
        console.print(f"speculative decoding ({sp['method']}, k={sp['k']}, acceptance {sp['acceptance']:g}): "
                      f"{sp['accepted_per_step']:.2f} tokens per step; decode speed-up at the operating batch: {gains}")
    for line in d["warnings"]:
        console.print(f"[yellow]note:[/] {escape(line)}", highlight=False)
