"""Request lengths: one small class per distribution, each giving a fixed sample and its moments.

`fixed` (every request alike), `uniform:LO:HI` (whole numbers, both ends included),
`lognormal:MEAN:SIGMA` (MEAN is the distribution's mean in tokens, SIGMA the standard deviation
of the log) and a trace (CSV of input_len,output_len pairs). Samples are drawn once with a fixed
random state, so every estimate is reproducible; the serving layer takes means and percentiles over them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, clean_name, show
from ..files import read_text

SAMPLES = 4096  # requests drawn per distribution (percentiles to about 1%)
RANDOM_STATE = 20240501
MAX_LENGTH = 10**7
TRACE_LIMIT_BYTES = 64 * 2**20  # a trace of a few million requests


@dataclass(frozen=True)
class Fixed:
    value: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, float(self.value))

    def label(self) -> str:
        return f"fixed:{self.value:g}"


@dataclass(frozen=True)
class Uniform:
    lo: float
    hi: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(int(self.lo), int(self.hi) + 1, size=n).astype(float)

    def label(self) -> str:
        return f"uniform:{self.lo:g}:{self.hi:g}"


@dataclass(frozen=True)
class LogNormal:
    mean: float  # tokens
    sigma: float  # of the natural log

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu = math.log(self.mean) - self.sigma**2 / 2  # E[exp(N(mu, s^2))] = exp(mu + s^2/2)
        return np.clip(np.round(rng.lognormal(mu, self.sigma, size=n)), 1, MAX_LENGTH)

    def label(self) -> str:
        return f"lognormal:{self.mean:g}:{self.sigma:g}"


Dist = Fixed | Uniform | LogNormal


def _number(text: str, spec: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{name} {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} {spec!r}: {text!r} must be a positive number")
    return v


def parse_dist(spec: str | None, fixed: float, name: str) -> Dist:
    """`fixed` (or None: the fixed length given), `uniform:LO:HI`, `lognormal:MEAN:SIGMA`."""
    if spec is None or str(spec).strip().lower() in ("", "fixed"):
        return Fixed(float(fixed))
    if not isinstance(spec, str):
        raise InputError(f"{name} must be fixed, uniform:LO:HI or lognormal:MEAN:SIGMA, got {show(spec)}")
    parts = spec.strip().lower().split(":")
    if parts[0] == "uniform" and len(parts) == 3:
        lo, hi = (_number(p, spec, name) for p in parts[1:])
        if lo != round(lo) or hi != round(hi) or lo < 1 or hi < lo or hi > MAX_LENGTH:
            raise InputError(f"{name} {spec!r}: LO and HI must be whole numbers with 1 <= LO <= HI <= {MAX_LENGTH:g}")
        return Uniform(lo, hi)
    if parts[0] == "lognormal" and len(parts) == 3:
        mean = _number(parts[1], spec, name)
        sigma = _number(parts[2], spec, name)
        if mean < 1 or mean > MAX_LENGTH or sigma > 4:
            raise InputError(f"{name} {spec!r}: MEAN must be from 1 to {MAX_LENGTH:g} tokens and SIGMA at most 4")
        return LogNormal(mean, sigma)
    if parts[0] == "fixed" and len(parts) == 2:
        return Fixed(_number(parts[1], spec, name))
    raise InputError(f"{name} must be fixed, uniform:LO:HI or lognormal:MEAN:SIGMA, got {clean_name(spec)!r}")


@dataclass(frozen=True)
class Lengths:
    """A sample of requests' input and output lengths (tokens), paired."""

    input_len: np.ndarray
    output_len: np.ndarray
    label: str

    @property
    def fixed(self) -> bool:
        return bool(np.ptp(self.input_len) == 0 and np.ptp(self.output_len) == 0)

    def summary(self) -> dict[str, float | str]:
        i, o = self.input_len, self.output_len
        return {"label": self.label, "input_mean": float(i.mean()), "input_p90": float(np.percentile(i, 90)),
                "output_mean": float(o.mean()), "output_p90": float(np.percentile(o, 90))}


def make_lengths(input_len: float, output_len: float, input_dist: str | None = None,
                 output_dist: str | None = None, trace: str | Path | None = None) -> Lengths:
    """The requests' lengths: a trace file, or independent input and output distributions."""
    if trace is not None:
        if input_dist not in (None, "", "fixed") or output_dist not in (None, "", "fixed"):
            raise InputError("a lengths trace replaces --input-dist and --output-dist: give one or the other")
        i, o = read_trace(trace)
        return Lengths(i, o, f"trace:{clean_name(Path(trace).name)} ({len(i)} requests)")
    di = parse_dist(input_dist, input_len, "input distribution")
    do = parse_dist(output_dist, output_len, "output distribution")
    rng = np.random.default_rng(RANDOM_STATE)
    n = 1 if isinstance(di, Fixed) and isinstance(do, Fixed) else SAMPLES
    return Lengths(di.sample(rng, n), do.sample(rng, n), f"input {di.label()}, output {do.label()}")


def read_trace(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """input_len,output_len pairs from a CSV (a header row naming them is optional); a bad row is
    named by its line number."""
    p = Path(path)
    text = read_text(p, "lengths file", limit=TRACE_LIMIT_BYTES, encoding="utf-8-sig")
    ins: list[float] = []
    outs: list[float] = []
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line_no == 1 and cells[:2] == ["input_len", "output_len"]:
            continue
        if len(cells) < 2:
            raise InputError(f"lengths file {clean_name(p.name)}, line {line_no}: expected input_len,output_len, "
                             f"got {clean_name(','.join(cells))!r}")
        values = []
        for name, c in zip(("input_len", "output_len"), cells[:2], strict=True):
            try:
                v = float(c)
            except ValueError:
                v = float("nan")
            if not math.isfinite(v) or v != round(v) or not 1 <= v <= MAX_LENGTH:
                raise InputError(f"lengths file {clean_name(p.name)}, line {line_no}: {name} must be a whole number "
                                 f"from 1 to {MAX_LENGTH:g}, got {clean_name(c)!r}")
            values.append(v)
        ins.append(values[0])
        outs.append(values[1])
    if not ins:
        raise InputError(f"lengths file {clean_name(p.name)} has no rows of input_len,output_len")
    return np.array(ins), np.array(outs)
