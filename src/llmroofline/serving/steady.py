"""Requests arriving at a rate: the steady state of continuous batching, solved by Little's law.

Per replica, x = requests admitted per step (rate x mean step time). Each step carries
x·D decode sequences (D = decode steps per request: (output - 1) / accepted tokens per step) and
x prompts' worth of prefill tokens, so the mean step time is tau(x) = pass(x) from the per-step
engine, and the fixed point x = rate · tau(x) gives the state; in-flight decode sequences are then
rate x decode time by construction (Little's law). tau grows with x; the highest rate with a
solution is the capacity, reached when the step is full: the batch at its limit (memory or the
runtime's max_batch_size), or the step's token budget (chunk) used up.

Around the mean: a request arrives mid-step (waits for it to end: uniform), queues for the prefill
budget as in an M/G/1 queue (each prompt takes its share of the chunk budget, Pollaczek-Khinchine
mean, exponential tail), then its prompt runs in a step beside the decodes. A request's TPOT is
the decode-only step plus the prefill work of the prompts that arrive while it decodes (Poisson).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..efficiency import Efficiency
from ..estimate import Deployment, p2p_time, pass_time
from ..operators import AttentionGroup
from .queueing import mg1_wait

BISECTIONS = 24  # inside one grid cell
GRID = 512


@dataclass(frozen=True)
class Stage:
    """One replica's engine: a deployment and its efficiency, plus an optional draft model."""

    dep: Deployment
    eff: Efficiency
    draft: tuple[Deployment, Efficiency] | None = None  # a draft model for speculative decoding
    mtp: bool = False  # draft tokens from the model's own prediction heads
    k: int = 0  # draft tokens per step
    # Seconds to encode one prompt's images (vision-language models); a step pays it per prompt it
    # admits, linear in the prompts (the encoder is compute-bound at thousands of patches an image).
    encoder_s: float = 0.0

    @property
    def lanes(self) -> float:
        """Sequences are split over pipeline micro-batches and attention replicas."""
        return float(self.dep.pp * self.dep.dp)

    def decode_group(self, seqs, kv) -> AttentionGroup:
        return AttentionGroup(np.asarray(seqs, dtype=float) / self.lanes, self.k + 1.0, np.asarray(kv, dtype=float) - 1)

    def draft_time(self, seqs, kv) -> np.ndarray:
        """Seconds per step to propose k draft tokens for each decoding sequence."""
        if self.k == 0:
            return np.zeros(np.shape(seqs))
        one = AttentionGroup(np.asarray(seqs, dtype=float) / self.lanes, 1.0, np.asarray(kv, dtype=float) - 1)
        if self.mtp or self.draft is None:  # one extra decoder layer per draft token (the prediction module)
            return self.k * pass_time(self.dep, self.eff, [one]) / self.dep.model.num_layers
        dep, eff = self.draft
        return self.k * pass_time(dep, eff, [AttentionGroup(np.asarray(seqs, dtype=float) / dep.dp, 1.0,
                                                            np.asarray(kv, dtype=float) - 1)])

    def step(self, decode_seqs, kv, prefill_seqs, prompt_new, prompt_past) -> np.ndarray:
        """Seconds of one step: decode_seqs sequences verify k+1 tokens at KV length kv, and
        prefill_seqs prompts of prompt_new new tokens (after prompt_past cached ones) prefill."""
        decode_seqs = np.maximum(decode_seqs, 1e-6)  # a pass with no decodes still reads the weights
        groups = [self.decode_group(decode_seqs, kv)]
        pre = np.asarray(prefill_seqs, dtype=float)
        if np.any(pre > 0):
            groups.append(AttentionGroup(pre / self.lanes, prompt_new, prompt_past, label="prefill"))
        tokens = (np.asarray(decode_seqs) * (self.k + 1) + pre * prompt_new) / self.lanes
        t = pass_time(self.dep, self.eff, groups) + p2p_time(self.dep, self.eff, tokens) + self.draft_time(decode_seqs, kv)
        return t + pre / self.lanes * self.encoder_s if self.encoder_s else t


@dataclass(frozen=True)
class Workload:
    """Mean request shape seen by the engine (tokens)."""

    prompt_new: float  # prompt tokens to compute (after the prefix cache)
    prompt_past: float  # prompt tokens found in the cache
    decode_steps: float  # D: mean steps a request decodes for
    kv: float  # mean KV length a decoding sequence attends (weighted by its steps)
    per_step_tokens: float  # tokens a decoding sequence puts into a step (k + 1)


def solve(stage: Stage, w: Workload, rate: np.ndarray, batch_limit: float, chunk: float,
          with_prefill: bool = True) -> dict[str, Any]:
    """The steady state at each rate (requests/s per replica): x, mean step tau, capacity.

    tau(x) is evaluated once on a grid of x in (0, x_cap]; served rate x / tau(x) is not always
    monotone (kernel efficiency varies with size), so each rate takes the smallest x whose served
    rate reaches it (the state a queue settles in from empty), refined by bisection inside its grid
    cell, and the capacity is the largest served rate on the grid. Returns arrays over rate: `x`,
    `tau` (s), `saturated`; scalars `capacity` (req/s), `x_cap`, `limit` (what bounds x)."""
    d = max(w.decode_steps, 1e-9)
    pre_new = w.prompt_new if with_prefill else 0.0
    x_batch = batch_limit / d
    x_chunk = chunk / (pre_new + d * w.per_step_tokens) if with_prefill else np.inf
    x_cap = float(min(x_batch, x_chunk))

    def tau(x):
        pre = x if with_prefill else np.zeros_like(x)
        return stage.step(x * d, w.kv, pre, max(w.prompt_new, 1e-9), w.prompt_past)

    def busy(x):
        """Share of time the prefill budget is in use at x: prompts take L/c of a full-budget step."""
        if not with_prefill:
            return np.zeros_like(x)
        c = np.maximum(chunk - x * d * w.per_step_tokens, 1e-9)
        full = stage.step(x * d, w.kv, c / max(w.prompt_new, 1e-9), max(w.prompt_new, 1e-9), w.prompt_past)
        return x * w.prompt_new / c * full / tau(x)

    grid = x_cap * (np.arange(1, GRID + 1) / GRID) ** 2  # finer at small x, where tau bends
    served = np.where(busy(grid) < 1, grid / tau(grid), 0.0)
    best = int(np.argmax(served))
    capacity = float(served[best])
    rate = np.asarray(rate, dtype=float)
    saturated = rate >= capacity
    # First grid point whose served rate reaches the rate; the root lies in the cell before it.
    reach = served[None, :] >= rate[:, None]
    first = np.where(reach.any(axis=1), reach.argmax(axis=1), best)
    hi = grid[first]
    lo = np.where(first > 0, grid[np.maximum(first - 1, 0)], 0.0)
    for _ in range(BISECTIONS):  # x - rate·tau(x) < 0 at lo, >= 0 at hi
        mid = (lo + hi) / 2
        above = mid - rate * tau(mid) >= 0
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    x = np.where(saturated, np.nan, hi)
    t = np.where(saturated, np.nan, tau(np.where(saturated, x_cap, hi)))
    return {"x": x, "tau": t, "capacity": np.float64(capacity), "x_cap": np.float64(grid[best]),
            "limit": "batch" if x_batch <= x_chunk else "chunk", "saturated": saturated}


def prefill_queue(rate, full_step, prompt_new_samples, chunk, decode_tokens):
    """M/G/1 view of the prefill budget: each prompt takes L / c of a full-budget step
    (full_step seconds), where c = chunk - decode tokens in the step. Returns (rho, mean wait s, E[S] s)."""
    c = np.maximum(chunk - decode_tokens, 1e-9)
    s_per_token = full_step / c  # seconds of budget per prompt token
    es = s_per_token * np.mean(prompt_new_samples)
    es2 = s_per_token**2 * np.mean(np.asarray(prompt_new_samples, dtype=float) ** 2)
    return rate * es, mg1_wait(rate, es, es2), es
