"""`serve`: latency percentiles and capacity of a deployment fed requests at a rate (Poisson).

The layer above the per-step engine: it builds steps from request shapes and calls
`estimate.pass_time` (through `steady.Stage`) and nothing else of the engine's inner workings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..efficiency import load_calibration
from ..errors import InputError, show
from ..estimate import (
    MAX_BATCH,
    Deployment,
    extrapolation,
    image_tokens,
    make_deployment,
    parallelism_fields,
    vision_seconds,
)
from ..hardware import SCALE_OUT_DEFAULT_GBIT_S, load_hardware
from ..intervals import estimate_interval
from ..memory import max_batch, memory_use
from ..runtime import RuntimeProfile
from .lengths import RANDOM_STATE, make_lengths
from .queueing import accepted_per_step, erlang_c, mg1_wait, slot_wait, wait_samples
from .steady import Stage, Workload, prefill_queue, solve

PERCENTILES = (50, 90, 99)
MAX_RATES = 10_000


def parse_rates(rate: Any, name: str = "rate") -> np.ndarray:
    """A rate (requests/s), a list of them or a comma-separated text `1,2,4`."""
    if isinstance(rate, str):
        parts = [p.strip() for p in rate.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"{name} must be a number or a list like 1,2,4, got {rate!r}") from None
    elif isinstance(rate, bool) or rate is None:
        raise InputError(f"{name} must be a number, got {show(rate)}")
    else:
        try:
            values = np.atleast_1d(np.asarray(rate, dtype=float)).ravel().tolist()
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a number, got {show(rate)}") from None
    a = np.asarray(values, dtype=float)
    if a.size == 0 or a.size > MAX_RATES or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1e7):
        raise InputError(f"{name} must be > 0 (up to {MAX_RATES} values, each at most 1e7; a rate in requests "
                         f"per second), got {show(rate)}")
    return a


def parse_spec(spec: str | None, acceptance: float | None) -> tuple[str, str | None, int, float]:
    """`mtp:K` or `draft:MODEL:K` -> (kind, draft model, K, acceptance); ("none", None, 0, 0) without."""
    if spec is None or str(spec).strip().lower() in ("", "none"):
        if acceptance is not None:
            raise InputError("acceptance needs a speculative decoding method (spec mtp:K or draft:MODEL:K)")
        return "none", None, 0, 0.0
    text = str(spec).strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    model, _, k_text = rest.rpartition(":") if kind == "draft" else ("", "", rest)
    if kind not in ("mtp", "draft") or (kind == "draft" and not model):
        raise InputError(f"spec must be mtp:K or draft:MODEL:K, got {text!r}")
    try:
        k = int(k_text)
    except ValueError:
        raise InputError(f"spec {text!r}: K must be a whole number of draft tokens from 1 to 16") from None
    if not 1 <= k <= 16:
        raise InputError(f"spec {text!r}: K must be a whole number of draft tokens from 1 to 16")
    if acceptance is None:
        raise InputError(f"spec {text!r} needs acceptance: the share of draft tokens accepted, in [0, 1]")
    if isinstance(acceptance, bool) or not isinstance(acceptance, (int, float)) or not 0 <= acceptance <= 1:
        raise InputError(f"acceptance must be a share in [0, 1], got {show(acceptance)}")
    return kind, (model or None), k, float(acceptance)


def _fraction(name: str, v: Any, top_open: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (
            v >= 1 if top_open else v > 1):
        raise InputError(f"{name} must be a share in [0, 1{')' if top_open else ']'}, got {show(v)}")
    return float(v)


def _count(name: str, v: Any, hi: int = 4096) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
        raise InputError(f"{name} must be a whole number from 1 to {hi}, got {show(v)}")
    return int(v)


@dataclass(frozen=True)
class Serving:
    """Latency and capacity at each request rate; arrays over rate, seconds and requests/s.
    Saturated rates (at or above capacity) have NaN latencies (null in JSON)."""

    rate: np.ndarray
    ttft_s: np.ndarray  # means
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    percentiles: dict[str, np.ndarray]  # ttft_p50_s, ttft_p90_s, ttft_p99_s, tpot_p90_s, e2e_p90_s, ...
    concurrency: np.ndarray  # mean requests in flight (rate x mean e2e)
    decode_batch: np.ndarray  # mean sequences decoding per step (whole system)
    capacity_req_s: float
    saturated: np.ndarray
    throughput_tok_s: np.ndarray
    gpus: int
    inputs: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)  # prefill/decode/kv_transfer_s, memory, ...
    interval: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    mode: str = "rate"  # or "closed": closed-loop clients (serving.closed)

    def to_dict(self) -> dict[str, Any]:
        def clean(x):
            if np.asarray(x).dtype == bool:
                return np.asarray(x).tolist()
            a = np.asarray(x, dtype=float)
            vals = [None if not np.isfinite(v) else float(v) for v in a.ravel()]
            return vals if a.ndim else vals[0]

        d: dict[str, Any] = {**self.inputs, "mode": self.mode, "gpus": self.gpus, "rate": clean(self.rate),
                             "ttft_s": clean(self.ttft_s), "tpot_s": clean(self.tpot_s), "e2e_s": clean(self.e2e_s)}
        d.update({k: clean(v) for k, v in self.percentiles.items()})
        d.update({"concurrency": clean(self.concurrency), "batch": clean(self.decode_batch),
                  "throughput_tok_s": clean(self.throughput_tok_s),
                  "throughput_per_gpu_tok_s": clean(self.throughput_tok_s / self.gpus),
                  "capacity_req_s": clean(self.capacity_req_s),
                  "saturated": np.asarray(self.saturated, dtype=bool).tolist()})
        for k, v in self.details.items():
            d[k] = {kk: (clean(vv) if isinstance(vv, (np.ndarray, float, np.floating)) else vv)
                    for kk, vv in v.items()} if isinstance(v, dict) else (
                clean(v) if isinstance(v, (np.ndarray, float, np.floating)) else v)
        if self.interval:
            d["interval"] = {"level": self.interval["level"],
                             **{k: [clean(v[0]), clean(v[1])] for k, v in self.interval.items()
                                if k not in ("level", "conditions")}}
        d["warnings"] = list(self.warnings)
        return d


def _stage(dep: Deployment, cal, prof: RuntimeProfile, kind: str, draft_model: str | None, k: int) -> Stage:
    eff = cal.for_device(dep.hardware, prof)
    draft = None
    if kind == "draft" and draft_model is not None:
        dm_tp = dep.tp
        from ..model import load_model

        m = load_model(draft_model)
        while m.num_heads % dm_tp:
            dm_tp //= 2
        ddep = make_deployment(m, dep.hardware, tp=max(dm_tp, 1), kv_dtype=dep.kv_dtype)
        draft = (ddep, cal.for_device(ddep.hardware, prof))
    return Stage(dep, eff, draft=draft, mtp=kind == "mtp", k=k)


def _batch_limit(dep: Deployment, prof: RuntimeProfile, held: float, limit: int) -> float:
    b = max_batch(dep.model, dep.hardware, context=np.array([held]), weight_dtype=dep.weight_dtype,
                  kv_dtype=dep.kv_dtype, tp=dep.tp, pp=dep.pp, ep=dep.ep, kv_fraction=prof.memory_fraction,
                  rule=prof.memory_rule, limit=limit, redundant_experts=dep.redundant_experts)
    return float(min(float(b[0]), limit) * dep.dp)  # each attention replica up to the limit


def nan_percentile_by_column(a: np.ndarray, p: Any) -> np.ndarray:
    """np.nanpercentile(a, p, axis=0) of a 2-D array (p one percentile or several), the same
    values: numpy takes it column by column in Python; here the columns without NaN go through one
    vectorized np.percentile (the same interpolation on the same sorted values) and only the others
    through nanpercentile."""
    holes = np.isnan(a).any(axis=0)
    out = np.percentile(a, p, axis=0)
    if holes.any():
        out[..., holes] = np.nanpercentile(a[:, holes], p, axis=0)
    return out


def serve(model, hardware, rate, input_len: Any = 512, output_len: Any = 128, *, tp: int = 1, pp: int = 1,
          ep: int | None = None, dp: int | None = None, weight_dtype: Any = None, kv_dtype: str | None = None,
          moe_imbalance: float | None = None, redundant_experts: int = 0,
          calibration: Any = "default", runtime: str | RuntimeProfile | None = None,
          input_dist: str | None = None, output_dist: str | None = None, lengths: str | Path | None = None,
          chunk: int | None = None, prefix_hit: float = 0.0, spec: str | None = None,
          acceptance: float | None = None, max_batch_size: int | None = None, replicas: int = 1,
          prefill_hardware: Any = None, prefill_tp: int | None = None, prefill_count: int = 1, images: Any = 0,
          image_size: Any = None) -> Serving:
    """TTFT/TPOT/E2E means and percentiles, concurrency and capacity at Poisson request rates.

    rate: requests/s offered to the whole system (a number or a list: a sweep). replicas: identical
    instances sharing the rate. prefill_hardware: disaggregated serving, prefill on prefill_count
    instances of that device at prefill_tp (decode on `hardware`, `replicas` instances). images:
    per request (vision-language models, one number), of image_size pixels: their tokens lengthen
    every prompt and the steps that admit a prompt encode its images (on the prefill instances
    when disaggregated).
    """
    rates = parse_rates(rate)
    kind, draft_model, k, acc = parse_spec(spec, acceptance)
    hit = _fraction("prefix_hit", prefix_hit)
    replicas = _count("replicas", replicas)
    for name, v in (("input_len", input_len), ("output_len", output_len)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 1 <= v <= 1e7 \
                or v != round(v):
            raise InputError(f"{name} must be a whole number of tokens from 1 to 1e7, got {show(v)}")
    lens = make_lengths(float(input_len), float(output_len), input_dist, output_dist, lengths)
    dep = make_deployment(model, hardware, tp=tp, pp=pp, ep=ep, dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    tp, pp, ep = dep.tp, dep.pp, dep.ep
    cal = load_calibration(calibration)
    prof = cal.runtime(runtime)
    if chunk is None:
        chunk = prof.chunk_tokens
    chunk = _count("chunk", chunk, 10**6)
    if max_batch_size is None:
        max_batch_size = prof.max_batch_size
    max_batch_size = _count("max_batch_size", max_batch_size, MAX_BATCH * 64)
    stage = _stage(dep, cal, prof, kind, draft_model, k)
    e_acc = float(accepted_per_step(acc, k))
    if np.ndim(images):
        raise InputError(f"images must be one whole number per request when serving at a rate, got {show(images)}")
    n_img, per_image = image_tokens(dep, images, image_size)
    if per_image:
        stage = replace(stage, encoder_s=float(vision_seconds(dep, stage.eff, n_img, image_size)))

    i_s, o_s = lens.input_len + n_img * per_image, lens.output_len
    new_s = i_s * (1 - hit)
    steps_s = (o_s - 1) / e_acc  # decode steps per request
    d_mean = float(steps_s.mean())
    kv = float(((o_s - 1) * (i_s + o_s / 2)).sum() / max(float((o_s - 1).sum()), 1e-9)) if d_mean > 0 else float(i_s.mean())
    held = float(((o_s - 1) * prof.kv_tokens(i_s, o_s)).sum() / max(float((o_s - 1).sum()), 1e-9)) if d_mean > 0 \
        else float(i_s.mean())
    w = Workload(prompt_new=float(new_s.mean()), prompt_past=float((i_s * hit).mean()), decode_steps=d_mean,
                 kv=max(kv, 1.0), per_step_tokens=k + 1.0)
    notes: list[str] = []
    longest = i_s + o_s
    if dep.model.max_context and np.any(longest > dep.model.max_context):
        too_long = float(np.mean(longest > dep.model.max_context))
        notes.append(f"{too_long:.0%} of requests hold more than the {dep.model.max_context:,} tokens of context "
                     f"{dep.model.id} was trained for (longest {longest.max():,.0f})")
    disagg = prefill_hardware is not None
    if not disagg and prefill_tp is not None:
        raise InputError("prefill_tp needs prefill_hardware (disaggregated serving)")
    blimit = _batch_limit(dep, prof, held, max_batch_size)
    if blimit < 1:
        raise InputError(f"{dep.model.id} does not fit on {dep.gpus}x {dep.hardware.id} with one sequence of "
                         f"{held:.0f} KV tokens: raise tp or lower the lengths")
    m = 4096
    rng = np.random.default_rng(RANDOM_STATE)
    pick = rng.integers(0, len(i_s), size=m)
    L_new, L_out, D_i = new_s[pick][:, None], o_s[pick][:, None], steps_s[pick][:, None]
    u_res, u_wait, u_slot = rng.random((m, 1)), rng.random((m, 1)), rng.random((m, 1))
    per_replica = rates / replicas
    details: dict[str, Any] = {}

    if not disagg:
        st = solve(stage, w, per_replica, blimit, chunk)
        x, tau = st["x"], st["tau"]
        ok = ~st["saturated"]
        xs = np.where(ok, x, st["x_cap"])
        taus = np.where(ok, tau, 1.0)
        b_dec = xs * d_mean
        tau0 = stage.step(b_dec, w.kv, np.zeros_like(b_dec), 1.0, 0.0)  # decode-only step
        c = np.maximum(chunk - b_dec * (k + 1), 1.0)
        full = stage.step(b_dec, w.kv, c / max(w.prompt_new, 1e-9), max(w.prompt_new, 1e-9), w.prompt_past)
        rho, wq, _ = prefill_queue(per_replica, full, new_s, chunk, b_dec * (k + 1))
        rho = np.minimum(rho, 0.999)  # below capacity by construction; guards a non-monotone step time
        rho, wq = np.where(ok, rho, 0.0), np.where(ok, wq, 0.0)
        # The step(s) carrying one prompt: its prefill work on top of the decode step, one decode
        # step more per further chunk.
        with_one = over_lengths(lambda n: stage.step(b_dec, w.kv, np.ones((len(n), 1)), n[:, None] * (1 - hit),
                                                     n[:, None] * hit), i_s[pick])
        own = with_one + (np.ceil(L_new / c) - 1) * tau0
        # A decode slot: at most the batch where the served rate peaks (the KV or budget limit);
        # each request holds one for its D steps (M/M/c).
        p_slot, w_slot = _slots(ok, float(st["x_cap"]) * d_mean, b_dec, d_mean * taus)
        ttft_samples = (u_res * taus + wait_samples(rho, wq, u_wait) + wait_samples(p_slot, w_slot, u_slot)
                        + own)
        ttft_mean = taus / 2 + wq + w_slot + own.mean(axis=0)
        # Prompts arriving while a request decodes (Poisson, mean x per step) add their prefill work.
        arrivals = rng.poisson(np.maximum(xs * D_i, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(D_i > 0, arrivals / np.maximum(xs * D_i, 1e-12), 1.0)
        step_i = tau0 + (taus - tau0) * share
        # Inter-token latency: a step carries prefill work (one prompt, or one chunk of a long one)
        # in a share f of steps, and the mean excess over the decode-only step sits in those.
        carried = np.minimum(c, w.prompt_new)
        f = np.clip(xs * w.prompt_new / np.maximum(carried, 1e-9), 1e-9, 1.0)
        itl = (tau0, tau0 + (taus - tau0) / f, f)
        capacity = float(st["capacity"]) * replicas
        limit_kind = st["limit"]
        details["prefill_utilization"] = np.where(ok, rho, np.nan)
        details["prefill_wait_s"] = np.where(ok, wq, np.nan)
        details["chunk_tokens"] = chunk
    else:
        pdev = load_hardware(prefill_hardware)
        ptp = _count("prefill_tp", prefill_tp if prefill_tp is not None else tp, 1024)
        pcount = _count("prefill_count", prefill_count)
        pdep = make_deployment(dep.model, pdev, tp=ptp, weight_dtype=weight_dtype, kv_dtype=kv_dtype)
        peff = cal.for_device(pdep.hardware, prof)
        pstage = Stage(pdep, peff, encoder_s=float(vision_seconds(pdep, peff, n_img, image_size)) if per_image else 0.0)
        st = solve(stage, w, per_replica, blimit, chunk, with_prefill=False)
        ok_d = ~st["saturated"]
        xs = np.where(ok_d, st["x"], st["x_cap"])
        taus = np.where(ok_d, st["tau"], 1.0)
        b_dec = xs * d_mean
        tau0 = taus
        # Prefill instances: one prompt per pass, FCFS (M/G/1 per instance).
        s_i = over_lengths(lambda n: pstage.step(np.zeros(1), 1.0, np.ones((len(n), 1)), n[:, None] * (1 - hit),
                                                 n[:, None] * hit), i_s)[:, 0]
        p_rate = rates / pcount
        es, es2 = float(s_i.mean()), float((s_i**2).mean())
        rho = p_rate * es
        wq = np.where(rho < 1, mg1_wait(p_rate, es, es2), 0.0)
        rho = np.minimum(rho, 1.0)
        kv_bytes = dep.model.kv_cache_bytes_per_token(dep.kv_dtype)
        link, bw = kv_link(pdep, dep)
        if "default" in link:
            unstated = " or ".join(sorted({h.id for h in (pdev, dep.hardware) if h.scale_out_default}))
            notes.append(f"KV transfer between nodes at an assumed {SCALE_OUT_DEFAULT_GBIT_S:g} Gb/s NIC per GPU "
                         f"(the catalog states no scale-out network for {unstated})")
        # The prompt's KV cache, and the fixed recurrent state of linear-attention/Mamba layers.
        xfer = (i_s * kv_bytes + dep.model.state_bytes_per_sequence()) / bw
        s_pick = s_i[pick][:, None]
        p_slot, w_slot = _slots(ok_d, float(st["x_cap"]) * d_mean, b_dec, d_mean * taus)
        ttft_samples = wait_samples(rho, wq, u_wait) + wait_samples(p_slot, w_slot, u_slot) + s_pick + xfer[pick][:, None]
        ttft_mean = wq + w_slot + es + float(xfer.mean())
        step_i = np.broadcast_to(taus, (m, len(rates)))
        itl = (taus, taus, np.zeros_like(taus))
        cap_p = pcount / es
        capacity = float(min(float(st["capacity"]) * replicas, cap_p))
        limit_kind = "prefill" if cap_p < float(st["capacity"]) * replicas else st["limit"]
        details["prefill"] = {"hardware": pdep.hardware.id, "tp": ptp, "count": pcount, "gpus": pdep.gpus * pcount,
                              "service_s": es, "utilization": np.where(rates < capacity, rho, np.nan),
                              "capacity_req_s": cap_p}
        details["decode"] = {"hardware": dep.hardware.id, "tp": tp, "count": replicas, "gpus": dep.gpus * replicas,
                             "step_s": np.where(ok_d, taus, np.nan), "capacity_req_s": float(st["capacity"]) * replicas}
        details["kv_transfer_s"] = float(xfer.mean())
        details["kv_link"] = link

    saturated = rates >= capacity
    tpot_i = step_i / e_acc
    tpot_mean = taus / e_acc if d_mean > 0 else np.zeros_like(taus)  # one output token: no decode steps
    e2e_samples = ttft_samples + (L_out - 1) * tpot_i
    e2e_mean = ttft_mean + float((o_s - 1).mean()) * tpot_mean

    def nan_sat(a):
        return np.where(saturated, np.nan, a)

    pct: dict[str, np.ndarray] = {}
    for p, v in zip(PERCENTILES, np.percentile(ttft_samples, PERCENTILES, axis=0), strict=True):
        pct[f"ttft_p{p}_s"] = nan_sat(v)
    for name, arr in (("tpot", np.where(L_out > 1, tpot_i, np.nan)), ("e2e", e2e_samples)):
        by_p = nan_percentile_by_column(arr, PERCENTILES) if np.any(L_out > 1) or name == "e2e" else \
            np.zeros((len(PERCENTILES), len(rates)))
        for p, v in zip(PERCENTILES, by_p, strict=True):
            pct[f"{name}_p{p}_s"] = nan_sat(v)
    for p in PERCENTILES:  # two-point distribution: the slow step with probability f
        pct[f"itl_p{p}_s"] = nan_sat(np.where(itl[2] > 1 - p / 100, itl[1], itl[0]) / e_acc)
    ttft_mean, tpot_mean, e2e_mean = nan_sat(ttft_mean), nan_sat(tpot_mean), nan_sat(e2e_mean)
    concurrency = rates * e2e_mean  # Little's law
    if np.any(saturated):
        notes.append(f"rate {', '.join(f'{r:g}' for r in rates[saturated])} req/s is at or above the capacity "
                     f"of {capacity:.3g} req/s (bound: {limit_kind}): the queue grows without limit, latencies are null")
    gpus = dep.gpus * replicas + (int(details["prefill"]["gpus"]) if disagg else 0)
    throughput = np.where(saturated, capacity, rates) * float(o_s.mean())
    mem = memory_use(dep.model, dep.hardware, batch=np.where(saturated, blimit, b_dec) / dep.dp,
                     context=np.full(len(rates), held), prefill_tokens=np.full(len(rates), float(chunk)) / dep.dp,
                     weight_dtype=dep.weight_dtype, kv_dtype=dep.kv_dtype, tp=tp, pp=pp, ep=ep,
                     redundant_experts=dep.redundant_experts)
    details["memory"] = {**mem.to_dict()}
    details["batch_limit"] = blimit
    details["lengths"] = lens.summary()
    if kind != "none":
        details["spec"] = {"method": kind, "draft_model": draft_model, "k": k, "acceptance": acc,
                           "accepted_per_step": e_acc,
                           "decode_speedup": nan_sat(spec_speedup(stage, np.maximum(b_dec, 1.0), w.kv, e_acc))}
    interval = {}
    values = {"ttft_s": ttft_mean, "tpot_s": tpot_mean, "e2e_s": e2e_mean, "throughput_tok_s": throughput,
              "throughput_per_gpu_tok_s": throughput / gpus}
    if cal.calibrated and cal.intervals:
        interval = estimate_interval(cal.intervals, extrapolation(cal, dep, prof, b_dec, i_s.mean(), o_s.mean(), n_img),
                                     values)
    inputs = {"model": dep.model.id, "hardware": dep.hardware.id, **parallelism_fields(dep),
              "weight_dtype": dep.weights.label, "kv_dtype": dep.kv_dtype, "runtime": prof.id,
              "input_len": float(lens.input_len.mean()), "output_len": float(o_s.mean()), "prefix_hit": hit,
              "replicas": replicas, "disaggregated": disagg, "calibrated": cal.calibrated,
              **({"images": int(n_img), "image_tokens": int(n_img) * per_image} if dep.model.vision else {})}
    if per_image:
        notes.append(f"images: {int(n_img)} per request, {per_image} prompt tokens each; every prompt's images are "
                     f"encoded in the step that admits it ({float(stage.encoder_s) * 1e3:.3g} ms per request)")
    return Serving(rate=rates, ttft_s=ttft_mean, tpot_s=tpot_mean, e2e_s=e2e_mean, percentiles=pct,
                   concurrency=concurrency, decode_batch=nan_sat(b_dec * replicas), capacity_req_s=capacity,
                   saturated=saturated, throughput_tok_s=throughput, gpus=gpus, inputs=inputs, details=details,
                   interval=interval, warnings=tuple(notes))


LENGTH_NODES = 64


def over_lengths(fn, lengths: np.ndarray) -> np.ndarray:
    """fn (prompt lengths (k,) -> (k, n) seconds) at each of `lengths`: evaluated at the distinct
    lengths, or at LENGTH_NODES quantiles when there are more and interpolated linearly between
    them (step times are smooth in the prompt length)."""
    nodes = np.unique(lengths)
    if nodes.size > LENGTH_NODES:
        nodes = np.unique(np.quantile(nodes, np.linspace(0, 1, LENGTH_NODES)))
    at = np.asarray(fn(nodes), dtype=float)
    if nodes.size == 1:
        return np.broadcast_to(at[:1], (len(lengths), at.shape[1])).copy()
    j = np.clip(np.searchsorted(nodes, lengths), 1, nodes.size - 1)
    t = ((lengths - nodes[j - 1]) / (nodes[j] - nodes[j - 1]))[:, None]
    return at[j - 1] * (1 - t) + at[j] * t


def spec_speedup(stage: Stage, batch, kv: float, accepted: float) -> np.ndarray:
    """Tokens per second of speculative decoding over plain decoding at the same batch:
    accepted x step(batch, 1 token) / (step(batch, k + 1 tokens) + draft). Near `accepted` while
    decode reads weights (memory-bound); it falls towards accepted/(k+1) (+ draft) as the batch
    grows and verification turns compute-bound."""
    plain = Stage(stage.dep, stage.eff)
    zero = np.zeros(np.shape(batch))
    return accepted * plain.step(batch, kv, zero, 1.0, 0.0) / stage.step(batch, kv, zero, 1.0, 0.0)


def _slots(ok, servers: float, busy, hold_s):
    """(probability of waiting, mean wait s) for a KV slot; zero where saturated (masked later)."""
    servers = max(servers, 1.0)
    p = np.where(ok, erlang_c(servers, np.where(ok, busy, 0.0)), 0.0)
    w = np.where(ok, slot_wait(servers, np.where(ok, busy, 0.0), np.where(ok, hold_s, 0.0)), 0.0)
    return p, w


def kv_link(prefill: Deployment, decode: Deployment) -> tuple[str, float]:
    """How the KV cache moves from prefill to decode: (description, bytes/s). Same device kind
    within one scale-up domain: its interconnect; otherwise the NIC of each GPU (the slower
    side's scale-out network, `scale_out` in the catalog), in parallel over the fewer GPUs of the two."""
    lanes = min(prefill.gpus, decode.gpus)
    same = prefill.hardware.id == decode.hardware.id and prefill.gpus + decode.gpus <= decode.hardware.max_devices
    if same:
        return f"{decode.hardware.interconnect_kind} within a node", lanes * decode.hardware.interconnect_bandwidth
    slow = min((prefill.hardware, decode.hardware), key=lambda h: h.scale_out_bandwidth)
    rate = f"{slow.scale_out_bandwidth * 8 / 1e9:g} Gb/s per GPU"
    what = f"{rate}, default" if slow.scale_out_default else f"{slow.scale_out_kind}, {rate}"
    return f"NIC between nodes ({what})", lanes * slow.scale_out_bandwidth


__all__ = ["Serving", "serve", "parse_rates", "parse_spec", "spec_speedup", "kv_link"]


def serve_at_concurrency(model, hardware, concurrency: Any, **kwargs: Any) -> Serving:
    """`serve` at the request rate that keeps `concurrency` requests in flight on average
    (rate x mean e2e = concurrency, Little's law), found on a rate sweep up to capacity.

    A stand-in for a closed-loop client with that many users: arrivals are still taken as Poisson
    at the solved rate (a closed loop is smoother; see docs/serving.md). Above what the server holds
    before saturating, the rate is the capacity's and a warning says so."""
    n = parse_rates(concurrency, "concurrency")
    if np.any(n != np.round(n)) or np.any(n < 1):
        raise InputError(f"concurrency must be whole numbers of requests >= 1, got {show(concurrency)}")
    kwargs.pop("rate", None)
    cap = serve(model, hardware, 1e-3, **kwargs).capacity_req_s
    half = CONCURRENCY_GRID // 2  # geometric from a trickle to half the capacity, then dense near it
    grid = cap * np.concatenate([np.geomspace(1e-5, 0.5, half, endpoint=False), 1 - np.geomspace(0.5, 1e-6, half)])
    sweep = serve(model, hardware, grid, **kwargs)
    held = np.maximum.accumulate(np.nan_to_num(sweep.concurrency, nan=0.0))
    # Refine twice inside the cell that holds each target: 32 rates per target, then interpolate.
    j = np.clip(np.searchsorted(held, n), 1, grid.size - 1)
    lo, hi = grid[j - 1], grid[j]
    rows = np.arange(n.size)
    for _ in range(2):
        fine = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 32)[None, :]
        local = serve(model, hardware, fine.ravel(), **kwargs).concurrency.reshape(fine.shape)
        local = np.maximum.accumulate(np.nan_to_num(local, nan=np.inf), axis=1)
        k = np.clip((local < n[:, None]).sum(axis=1), 1, 31)
        lo, hi = fine[rows, k - 1], fine[rows, k]
        c0, c1 = local[rows, k - 1], local[rows, k]
    t = np.clip(np.where(np.isfinite(c1) & (c1 > c0), (n - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0), 0, 1)
    rate = np.where(n > held.max(), grid[-1], lo + t * (hi - lo))
    result = serve(model, hardware, rate, **kwargs)
    beyond = n > held.max()
    notes = list(result.warnings)
    if beyond.any():
        notes.append(f"concurrency {', '.join(f'{v:g}' for v in n[beyond])} exceeds the {held.max():.0f} requests the "
                     f"server holds below capacity: it runs at capacity, the others wait outside")
    return replace(result, inputs={**result.inputs, "concurrency_target": n.tolist()}, warnings=tuple(notes))


CONCURRENCY_GRID = 256
