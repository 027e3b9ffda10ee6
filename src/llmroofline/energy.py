"""Energy per token from a power model over the roofline's own operator times.

A device draws, at each moment, the power of what it is doing (`catalog/priors/power.yaml`,
fractions of its TDP with their sources): P_compute while its compute engines run, P_memory
while it streams memory that compute does not cover, P_comm while it waits on a collective, and
P_idle the rest of the time (launch gaps, host work, pipeline bubbles). An operator instance with
compute-bound seconds c, memory-bound seconds m and communication seconds k that lasts t
seconds (t >= max(c, m) + k, `roofline.step_seconds`) uses

    E = P_idle·t + (P_compute − P_idle)·c + (P_memory − P_idle)·(max(c, m) − c) + (P_comm − P_idle)·k

joules: a compute-bound operator draws P_compute for its length, a pure stream (c = 0) P_memory,
and an operator between the two interpolates by its share of compute. E is linear in the sums
of c, max(c, m) and k over operators and steps (`Work`), so a pass or a static batch's decode
steps (in closed form) need only those three sums. Every draw lies between P_idle and
max(P_compute, P_comm) <= TDP, so the energy lies between P_idle·t and TDP·t: TDP × time, the
figure this replaces, stays as the reported ceiling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import CATALOG_ROOT
from .device_stack import DeviceStack, stack_values
from .efficiency import Efficiency
from .errors import InputError, show
from .hardware import Hardware, read_yaml
from .operators import Operator
from .roofline import NO_COMM, in_order, operator_times, small_pass_stacks

POWER_FILE = CATALOG_ROOT / "priors" / "power.yaml"
FIELDS = ("idle", "compute", "memory", "comm")


@dataclass(frozen=True)
class PowerModel:
    """A device's board power by activity, watts; `sources` says where each figure comes from."""

    device: str
    tdp_w: float
    idle_w: float
    compute_w: float
    memory_w: float
    comm_w: float
    sources: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"tdp_w": self.tdp_w, "idle_w": self.idle_w, "compute_w": self.compute_w,
                "memory_w": self.memory_w, "comm_w": self.comm_w}


@dataclass(frozen=True)
class PowerPriors:
    """Fractions of TDP per field: every field in `default`, some in `families` and `devices`."""

    default: dict[str, tuple[float, str]]
    families: dict[str, dict[str, tuple[float, str]]]
    devices: dict[str, dict[str, tuple[float, str]]]

    def shares(self, hw: Hardware) -> dict[str, tuple[float, str]]:
        """(fraction of TDP, source) per field for a device: its own, its family's, else the default."""
        return {**self.default, **self.families.get(hw.family, {}), **self.devices.get(hw.id, {})}


def _entry(data: Any, where: str, *, complete: bool) -> dict[str, tuple[float, str]]:
    if not isinstance(data, dict) or not set(data) <= set(FIELDS) or (complete and set(data) != set(FIELDS)):
        raise InputError(f"{where}: expected {'all of ' if complete else 'some of '}{', '.join(FIELDS)}, "
                         f"got {show(data)}")
    out = {}
    for k, v in data.items():
        if not isinstance(v, dict) or set(v) != {"value", "source"}:
            raise InputError(f"{where}.{k}: expected {{value, source}}, got {show(v)}")
        x = v["value"]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.01 <= x <= 1:
            raise InputError(f"{where}.{k}: value {show(x)} must be a fraction of TDP from 0.01 to 1")
        if not isinstance(v["source"], str) or not v["source"].strip():
            raise InputError(f"{where}.{k}: every figure needs its source")
        out[str(k)] = (float(x), v["source"])
    return out


def _check_order(shares: dict[str, tuple[float, str]], where: str) -> None:
    s = {k: v[0] for k, v in shares.items()}
    if not (s["idle"] <= s["memory"] <= s["compute"] and s["idle"] <= s["comm"] <= s["compute"]):
        raise InputError(f"{where}: needs idle <= memory <= compute and idle <= comm <= compute, got {show(s)}")


def power_priors_from_dict(data: Any, where: str) -> PowerPriors:
    """Validate the power catalog: fractions of TDP with sources, in a physical order for every
    device they can combine into."""
    if not isinstance(data, dict) or set(data) != {"default", "families", "devices"}:
        raise InputError(f"{where}: expected the sections default, families, devices")
    default = _entry(data["default"], f"{where}: default", complete=True)
    groups = {}
    for section in ("families", "devices"):
        raw = data[section] or {}
        if not isinstance(raw, dict):
            raise InputError(f"{where}: {section} must map names to entries")
        groups[section] = {str(k): _entry(v, f"{where}: {section}.{k}", complete=False) for k, v in raw.items()}
    _check_order(default, f"{where}: default")
    for fam, e in groups["families"].items():
        _check_order({**default, **e}, f"{where}: families.{fam} with the default")
    for dev, e in groups["devices"].items():
        # a device's family is not known here: check it against the default and every family
        for fam, f in {"default": {}, **groups["families"]}.items():
            _check_order({**default, **f, **e}, f"{where}: devices.{dev} with {fam}")
    return PowerPriors(default, groups["families"], groups["devices"])


@functools.lru_cache(maxsize=1)
def power_priors() -> PowerPriors:
    return power_priors_from_dict(read_yaml(POWER_FILE, "power priors"), str(POWER_FILE))


def power_model(hw: Hardware, priors: PowerPriors | None = None) -> PowerModel:
    """Watts per activity for a device: the catalog's fractions times its TDP. A device stack:
    each member's watts, as arrays."""
    if isinstance(hw, DeviceStack):
        each = [power_model(m, priors) for m in hw.members]
        return PowerModel(hw.id, **{k: stack_values([getattr(p, k) for p in each])
                                    for k in ("tdp_w", "idle_w", "compute_w", "memory_w", "comm_w")}, sources={})
    if priors is None:  # the bundled priors: kept per device (a search asks once per configuration)
        bundled = power_priors()
        hit = _POWER.get(id(hw))
        if hit is None or hit[0] is not hw or hit[1] is not bundled:
            if len(_POWER) >= 256:
                _POWER.clear()
            hit = _POWER[id(hw)] = (hw, bundled, _power_model(hw, bundled))  # the device is kept: its id stays its own
        return hit[2]
    return _power_model(hw, priors)


_POWER: dict[int, tuple[Hardware, PowerPriors, PowerModel]] = {}


def _power_model(hw: Hardware, priors: PowerPriors) -> PowerModel:
    shares = priors.shares(hw)
    watts = {k: shares[k][0] * hw.tdp_w for k in FIELDS}
    return PowerModel(hw.id, hw.tdp_w, watts["idle"], watts["compute"], watts["memory"], watts["comm"],
                      sources={k: shares[k][1] for k in FIELDS})


# ---- activity seconds ----------------------------------------------------------------------

@dataclass(frozen=True)
class Work:
    """Seconds of activity on one device (sums over operator instances and steps): compute-bound
    seconds, busy seconds (the longer of compute and memory per instance) and communication."""

    compute_s: Any
    busy_s: Any
    comm_s: Any

    def __add__(self, other: Work) -> Work:
        return Work(self.compute_s + other.compute_s, self.busy_s + other.busy_s, self.comm_s + other.comm_s)


def pass_work(ops: list[Operator], hw: Hardware, eff: Efficiency) -> Work:
    """Activity seconds of one pass: every instance of every operator, timed as `pass_seconds` times them."""
    stacks = small_pass_stacks(ops, hw, eff)
    if stacks is not None:  # a small grid: the same sums, in the same order, in a few numpy calls
        c, m, k, counts = stacks
        return Work(in_order(counts * c), in_order(counts * np.maximum(c, m)),
                    in_order(counts * k) if k is not NO_COMM else np.zeros(()))
    compute = busy = comm = np.zeros(())
    memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for op in ops:
        c, m, k = operator_times(op, hw, eff, memo)
        compute = compute + op.count * c
        busy = busy + op.count * np.maximum(c, m)
        comm = comm + op.count * k
    return Work(compute, busy, comm)


def decode_steps_work(ops: list[Operator], hw: Hardware, eff: Efficiency, first_kv, last_kv) -> Work:
    """Activity seconds of decode steps attending first_kv .. last_kv positions (inclusive).

    `ops` is one decode pass at KV lengths 1 and 2 along a trailing axis (as
    `estimate.decode_steps_time` builds it): every operator's compute and memory seconds are affine
    in the KV length up to its window, so the sums over steps are exact closed forms.
    """
    from .estimate import (  # estimate imports this module
        at_kv_lengths,
        sum_affine_clamped,
        sum_max_affine,
    )

    first_kv = np.asarray(first_kv, dtype=float)
    last_kv = np.asarray(last_kv, dtype=float)
    steps = np.maximum(last_kv - first_kv + 1, 0)
    compute = busy = comm = np.zeros(())
    memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for op in ops:
        (c_1, c_2), (m_1, m_2), (k_1, _) = (at_kv_lengths(x) for x in operator_times(op, hw, eff, memo))
        c1, m1 = c_2 - c_1, m_2 - m_1
        c0, m0 = c_1 - c1, m_1 - m1
        compute = compute + op.count * sum_affine_clamped(c0, c1, first_kv, last_kv, op.window)
        busy = busy + op.count * sum_max_affine(c0, c1, m0, m1, first_kv, last_kv, op.window)
        comm = comm + op.count * steps * k_1
    return Work(compute, busy, comm)


# ---- joules --------------------------------------------------------------------------------

def energy_j(power: PowerModel, seconds, work: Work):
    """Joules one device uses over `seconds` of wall time holding `work` (see the module docstring).

    >>> p = PowerModel("x", 700.0, 100.0, 665.0, 420.0, 210.0, {})
    >>> float(energy_j(p, 0.010, Work(compute_s=0.0, busy_s=0.010, comm_s=0.0)))   # a 10 ms stream
    4.2
    """
    return (power.idle_w * np.asarray(seconds, dtype=float)
            + (power.compute_w - power.memory_w) * work.compute_s
            + (power.memory_w - power.idle_w) * work.busy_s
            + (power.comm_w - power.idle_w) * work.comm_s)


@dataclass(frozen=True)
class EnergyUse:
    """Energy of a workload, whole system (all GPUs of one model instance); arrays over its grid.

    j_per_token: joules per output token from the power model; j_per_token_tdp: the ceiling at full
    board power (TDP × GPUs × time / tokens); power_w_per_gpu: the mean draw per GPU, watts.
    """

    j_per_token: np.ndarray
    j_per_token_tdp: np.ndarray
    power_w_per_gpu: np.ndarray
    power: PowerModel


def energy_use(power: PowerModel, gpus: int, seconds, work: Work, tokens) -> EnergyUse:
    """Joules per output token of `tokens` emitted in `seconds` of wall time, each of `gpus` GPUs
    holding `work`."""
    seconds = np.asarray(seconds, dtype=float)
    joules = energy_j(power, seconds, work)
    with np.errstate(divide="ignore", invalid="ignore"):
        return EnergyUse(j_per_token=gpus * joules / tokens, j_per_token_tdp=gpus * power.tdp_w * seconds / tokens,
                         power_w_per_gpu=joules / seconds, power=power)
