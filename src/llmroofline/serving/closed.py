"""Closed-loop clients: N users, each sending its next request when the last one ends.

This is how benchmark clients run at a fixed concurrency (`benchmark_serving --max-concurrency N`).
With equal lengths the N users start together, so their prompts reach the server at once, in a
wave. Under prefill-first scheduling (a step runs waiting prompts before any decode: SGLang's
default, vLLM without chunked prefill) the wave's prompts fill the prefill token budget of
`chunk` tokens per step one after another, then the N requests decode together and end together,
so the next wave starts together again: the waves stay synchronized.

With prompts of I new tokens and budget C, step s prefills tokens (s-1)·C .. s·C of the wave's
concatenated prompts, so the k-th prompt's first token comes at the end of step ceil(k·I / C)
(`wave_steps`): TTFT_k is the time of the prefill steps up to that one. The N requests then
decode O-1 steps at batch N, and every request of the wave ends at the same time T (prefill steps +
decode steps). Each user therefore completes one request every T seconds: the request rate is
N / T and the mean number in flight is N = rate x mean e2e (Little's law, exactly).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..efficiency import load_calibration
from ..errors import InputError, show
from ..estimate import (
    MAX_BATCH,
    decode_steps_time,
    extrapolation,
    make_deployment,
    p2p_time,
    parallelism_fields,
    pass_time,
)
from ..intervals import estimate_interval
from ..memory import memory_use
from ..operators import AttentionGroup
from .api import PERCENTILES, Serving, _batch_limit, _count, _fraction

MAX_PREFILL_STEPS = 1 << 20  # prefill steps of one wave evaluated at most


def wave_steps(clients: int, prompt: float, chunk: float) -> np.ndarray:
    """The prefill step (1-based) that ends each of `clients` prompts of `prompt` tokens when they
    arrive together and share a budget of `chunk` tokens per step: ceil(k·prompt / chunk), k = 1..N.

    >>> wave_steps(4, 3, 4).tolist()  # tokens 3, 6, 9, 12 end in steps 1, 2, 3, 3
    [1, 2, 3, 3]
    """
    k = np.arange(1, clients + 1, dtype=float)
    return np.maximum(np.ceil(k * prompt / chunk - 1e-9), 1).astype(int)


def _prefill_steps(dep, eff, clients: int, new: float, past: float, chunk: float) -> np.ndarray:
    """Seconds of each prefill step of one wave: step s holds tokens (s-1)·chunk .. s·chunk of the
    prompts laid end to end: the end of one prompt (attending its earlier chunks), whole prompts,
    and the start of the next."""
    total = clients * new
    steps = int(np.ceil(total / chunk - 1e-9))
    if steps > MAX_PREFILL_STEPS:
        raise InputError(f"a wave of {clients} prompts of {new:.0f} tokens takes {steps:,} prefill steps of {chunk:g} "
                         f"tokens: raise chunk")
    s = np.arange(steps, dtype=float)
    start, end = s * chunk, np.minimum((s + 1) * chunk, total)
    j0, j1 = np.floor(start / new + 1e-9), np.floor(end / new + 1e-9)
    o0, o1 = np.maximum(start - j0 * new, 0.0), np.maximum(end - j1 * new, 0.0)
    one = j0 == j1  # inside one prompt
    head = np.where(one, end - start, new - o0)
    whole = np.where(one, 0.0, j1 - j0 - 1)
    tail = np.where(one, 0.0, o1)
    lanes = float(dep.pp * dep.dp)
    groups = [AttentionGroup(np.full(steps, 1.0 / lanes), np.maximum(head, 1e-9), past + o0, label="head")]
    if np.any(whole > 0):
        groups.append(AttentionGroup(whole / lanes, new, past, label="whole"))
    if np.any(tail > 0):
        groups.append(AttentionGroup(np.where(tail > 0, 1.0 / lanes, 0.0), np.maximum(tail, 1e-9), past,
                                     label="tail"))
    return pass_time(dep, eff, groups) + p2p_time(dep, eff, (end - start) / lanes)


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, p: float) -> float:
    """The p-th percentile of values taken weights times each (inverted CDF)."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cum, p / 100 * cum[-1])), len(values) - 1)])


def serve_closed(model, hardware, clients: Any, input_len: Any = 512, output_len: Any = 128, *, tp: int = 1,
                 pp: int = 1, ep: int | None = None, dp: int | None = None, weight_dtype: Any = None,
                 kv_dtype: str | None = None, moe_imbalance: float | None = None, redundant_experts: int = 0,
                 calibration: Any = "default", runtime: Any = None, chunk: int | None = None,
                 prefix_hit: float = 0.0, max_batch_size: int | None = None) -> Serving:
    """TTFT/TPOT/E2E means and percentiles of `clients` closed-loop users with equal lengths
    (a number or a list: a sweep; results are arrays over it). See the module's docstring.

    The result's `rate` is the request rate the users reach (N / wave time) and `concurrency` is N.
    """
    if isinstance(clients, str):
        try:
            ns = [int(p) for p in clients.split(",")]
        except ValueError:
            raise InputError(f"clients must be whole numbers like 8 or 8,64, got {clients!r}") from None
    else:
        ns = np.atleast_1d(np.asarray(clients, dtype=object)).ravel().tolist()
    if not ns:
        raise InputError("clients must be at least one whole number")
    ns = [_count("clients", n) for n in ns]
    hit = _fraction("prefix_hit", prefix_hit)
    for name, v in (("input_len", input_len), ("output_len", output_len)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 1 <= v <= 1e7 \
                or v != round(v):
            raise InputError(f"{name} must be a whole number of tokens from 1 to 1e7, got {show(v)}")
    if output_len < 2:
        raise InputError("a closed loop needs output_len of 2 or more: with one output token a request ends at its "
                         "prefill step and the waves do not stay together")
    i_len, o_len = float(input_len), float(output_len)
    dep = make_deployment(model, hardware, tp=tp, pp=pp, ep=ep, dp=dp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    tp, pp, ep = dep.tp, dep.pp, dep.ep
    cal = load_calibration(calibration)
    prof = cal.runtime(runtime)
    eff = cal.for_device(dep.hardware, prof)
    chunk = _count("chunk", prof.chunk_tokens if chunk is None else chunk, 10**6)
    max_batch_size = _count("max_batch_size", prof.max_batch_size if max_batch_size is None else max_batch_size,
                            MAX_BATCH * 64)
    blimit = _batch_limit(dep, prof, float(prof.kv_tokens(np.array([i_len]), np.array([o_len]))[0]), max_batch_size)
    if max(ns) > blimit:
        raise InputError(f"{max(ns)} clients need {max(ns)} sequences in the batch; {dep.model.id} on {dep.gpus}x "
                         f"{dep.hardware.id} holds {blimit:.0f} ({prof.id}, KV cache and max batch): lower the "
                         f"clients or raise tp")
    past = i_len * hit
    new = i_len - past
    lanes = float(dep.pp * dep.dp)
    n_arr = np.array(ns, dtype=float)
    decode = decode_steps_time(dep, eff, n_arr / lanes, i_len + 1, i_len + o_len - 1) \
        + (o_len - 1) * p2p_time(dep, eff, n_arr / lanes)
    first_decode = decode_steps_time(dep, eff, n_arr / lanes, i_len + 1, i_len + 1) + p2p_time(dep, eff, n_arr / lanes)
    keys = [f"{m}_p{p}_s" for m in ("ttft", "tpot", "e2e", "itl") for p in PERCENTILES]
    pct: dict[str, list[float]] = {k: [] for k in keys}
    ttft_mean, tpot_mean, wave, prefill_s, steps = [], [], [], [], []
    for j, n in enumerate(ns):
        t = np.cumsum(_prefill_steps(dep, eff, n, new, past, chunk))
        ttft = t[wave_steps(n, new, chunk) - 1]
        period = float(t[-1] + decode[j])
        tpot = (period - ttft) / (o_len - 1)
        ttft_mean.append(float(ttft.mean()))
        tpot_mean.append(float(tpot.mean()))
        wave.append(period)
        prefill_s.append(float(t[-1]))
        steps.append(len(t))
        # Inter-token gaps: each request's first gap holds the wave's remaining prefill steps and
        # the first decode step; its other O-2 gaps are decode steps (their mean).
        rest = (decode[j] - first_decode[j]) / max(o_len - 2, 1)
        gaps = np.concatenate([t[-1] - ttft + first_decode[j], [rest]])
        weights = np.concatenate([np.ones(n), [n * (o_len - 2)]])
        for p in PERCENTILES:
            pct[f"ttft_p{p}_s"].append(float(np.percentile(ttft, p)))
            pct[f"tpot_p{p}_s"].append(float(np.percentile(tpot, p)))
            pct[f"e2e_p{p}_s"].append(period)
            pct[f"itl_p{p}_s"].append(_weighted_percentile(gaps, weights, p) if o_len > 2
                                      else float(np.percentile(gaps[:-1], p)))
    e2e = np.array(wave)
    rate = n_arr / e2e
    throughput = rate * o_len
    values = {"ttft_s": np.array(ttft_mean), "tpot_s": np.array(tpot_mean), "e2e_s": e2e,
              "throughput_tok_s": throughput, "throughput_per_gpu_tok_s": throughput / dep.gpus}
    interval = {}
    if cal.calibrated and cal.intervals:
        interval = estimate_interval(cal.intervals, extrapolation(cal, dep, prof, n_arr, i_len, o_len), values)
    mem = memory_use(dep.model, dep.hardware, batch=n_arr / dep.dp, context=np.full(len(ns), i_len + o_len),
                     prefill_tokens=np.full(len(ns), float(chunk)) / dep.dp, weight_dtype=dep.weight_dtype,
                     kv_dtype=dep.kv_dtype, tp=tp, pp=pp, ep=ep,
                     redundant_experts=dep.redundant_experts)
    notes = []
    if dep.model.max_context and i_len + o_len > dep.model.max_context:
        notes.append(f"requests hold {i_len + o_len:,.0f} tokens, more than the {dep.model.max_context:,} tokens of "
                     f"context {dep.model.id} was trained for")
    details: dict[str, Any] = {"clients": list(ns), "chunk_tokens": chunk, "prefill_steps": steps,
                               "wave_prefill_s": np.array(prefill_s), "memory": mem.to_dict(),
                               "batch_limit": blimit}
    inputs = {"model": dep.model.id, "hardware": dep.hardware.id, **parallelism_fields(dep),
              "weight_dtype": dep.weights.label, "kv_dtype": dep.kv_dtype, "runtime": prof.id,
              "input_len": i_len, "output_len": o_len, "prefix_hit": hit, "replicas": 1, "disaggregated": False,
              "calibrated": cal.calibrated}
    return Serving(rate=rate, ttft_s=values["ttft_s"], tpot_s=values["tpot_s"], e2e_s=e2e,
                   percentiles={k: np.array(v) for k, v in pct.items()}, concurrency=n_arr, decode_batch=n_arr,
                   capacity_req_s=float("nan"), saturated=np.zeros(len(ns), dtype=bool), throughput_tok_s=throughput,
                   gpus=dep.gpus, inputs=inputs, details=details, interval=interval, warnings=tuple(notes),
                   mode="closed")
