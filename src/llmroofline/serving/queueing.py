"""Closed forms the serving layer is built from, each checkable by hand.

- M/G/1 mean wait (Pollaczek-Khinchine): Wq = lambda E[S^2] / (2 (1 - rho)), rho = lambda E[S].
  With a deterministic service time S = 1/mu this is M/D/1: Wq = rho / (2 mu (1 - rho)).
- Its tail, approximated as in M/M/1: a request waits with probability rho, and then for an
  exponential time of mean Wq / rho (exact for exponential service, close for others at high load).
- Speculative decoding: with K draft tokens each accepted with probability a (stopping at the first
  rejection) a verification step yields E = 1 + a + ... + a^K = (1 - a^(K+1)) / (1 - a) tokens.
"""

from __future__ import annotations

import numpy as np


def mg1_wait(rate, es, es2):
    """Mean wait in queue (s) of an M/G/1 server: arrivals per s, E[S] s, E[S^2] s^2; inf when rho >= 1.

    >>> round(float(mg1_wait(1.0, 0.5, 0.25)), 6)  # M/D/1, rho = 0.5: 0.5 / (2 * 2 * 0.5)
    0.25
    """
    rate, es, es2 = (np.asarray(x, dtype=float) for x in (rate, es, es2))
    rho = rate * es
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1, rate * es2 / (2 * np.maximum(1 - rho, 1e-300)), np.inf)


def wait_samples(rho, mean_wait, u):
    """Waiting times at uniform quantiles u (shape (n, 1) or broadcastable): zero with probability
    1 - rho, else exponential with mean mean_wait / rho (inverse-CDF transform).

    >>> [round(float(x), 4) for x in wait_samples(0.5, 1.0, np.array([0.25, 0.75]))]
    [0.0, 1.3863]
    """
    rho = np.asarray(rho, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(u > 1 - rho, -np.log(np.maximum(1 - u, 1e-300) / np.maximum(rho, 1e-300)), 0.0)
        return np.where(rho > 0, np.asarray(mean_wait) / np.maximum(rho, 1e-300) * tail, 0.0)


def accepted_per_step(acceptance, k):
    """Expected tokens a sequence gains per verification of k draft tokens (1 when k = 0).

    >>> float(accepted_per_step(0.5, 2))  # 1 + 0.5 + 0.25
    1.75
    """
    a = np.asarray(acceptance, dtype=float)
    return np.where(a < 1, (1 - a ** (k + 1)) / np.where(a < 1, 1 - a, 1.0), k + 1.0)


def erlang_c(servers, load):
    """Probability that an arrival waits in an M/M/c queue with c servers and offered load A
    (= arrival rate x mean service time, A < c): C = B / (1 - (A/c)(1 - B)) with Erlang's loss
    formula B = pmf(c; A) / cdf(c; A) of a Poisson(A) distribution.

    >>> round(float(erlang_c(1, 0.5)), 6)  # one server: the utilization
    0.5
    """
    from scipy.stats import poisson

    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(a > 0, np.exp(poisson.logpmf(c, a) - poisson.logcdf(c, a)), 0.0)
        return np.where(a < c, b / (1 - a / c * (1 - b)), 1.0)


def slot_wait(servers, load, service_s):
    """Mean wait (s) for one of `servers` slots held for service_s each (M/M/c): C / (c/S - A/S)."""
    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a < c, erlang_c(c, a) * np.asarray(service_s) / np.maximum(c - a, 1e-300), np.inf)
