"""Physical priors for the efficiency model: what single kernels reach per architecture.

Data in `catalog/priors/kernels.yaml`, each figure with its published source: large-GEMM
fraction of peak per family, streaming bandwidth fraction per memory type (with family
exceptions), and the token-tile shapes of GEMM kernels. Validated at load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .catalog import CATALOG_ROOT
from .errors import InputError, show
from .hardware import Hardware, read_yaml

PRIORS_FILE = CATALOG_ROOT / "priors" / "kernels.yaml"
_TILE_FIELDS = ("gemm_min_rows", "gemm_tile_rows", "gemv_rows")
# A priors file written before NICs were priced: one share for every network.
NIC_FALLBACK = {"default": {"value": 0.80, "source": "assumed: no nic_by_kind section in the priors file"}}


@dataclass(frozen=True)
class Figure:
    value: float
    source: str


@dataclass(frozen=True)
class Bounded:
    value: float
    low: float
    high: float
    source: str


@dataclass(frozen=True)
class KernelPriors:
    gemm: dict[str, Figure]  # by family, "default" for the rest
    gemm_by_device: dict[str, Figure]
    memory_by_type: dict[str, Figure]  # by memory type (upper case), "default"
    memory_by_family: dict[str, Figure]
    comm_by_link: dict[str, Figure]  # by interconnect kind, "default"
    nic_by_kind: dict[str, Figure]  # by the first word of the scale-out kind (InfiniBand, RoCE, ...), "default"
    shared: dict[str, Bounded]
    fixed_costs: dict[str, Figure]  # seconds
    tile: dict[str, dict[str, float]]  # by family, "default"

    def gemm_compute(self, hw: Hardware) -> float:
        if hw.id in self.gemm_by_device:
            return self.gemm_by_device[hw.id].value
        return self.gemm.get(hw.family, self.gemm["default"]).value

    def comm_bandwidth(self, hw: Hardware) -> float:
        return self.comm_by_link.get(hw.interconnect_kind, self.comm_by_link["default"]).value

    def nic_bandwidth(self, hw: Hardware) -> float:
        """Share of NIC bandwidth a collective reaches across domains, by network family (the
        kind's first word: "InfiniBand NDR" is InfiniBand)."""
        family = (hw.scale_out_kind.split() or ["default"])[0]
        return self.nic_by_kind.get(family, self.nic_by_kind["default"]).value

    def memory(self, hw: Hardware) -> float:
        if hw.family in self.memory_by_family:
            return self.memory_by_family[hw.family].value
        return self.memory_by_type.get(hw.memory_type.upper(), self.memory_by_type["default"]).value

    def tiles(self, hw: Hardware) -> dict[str, float]:
        return dict(self.tile.get(hw.family, self.tile["default"]))


def _figures(data: Any, where: str, *, need_default: bool = True) -> dict[str, Figure]:
    if not isinstance(data, dict) or (need_default and "default" not in data):
        raise InputError(f"{where}: expected a mapping{' with a default entry' if need_default else ''}")
    out = {}
    for k, v in data.items():
        if not isinstance(v, dict) or set(v) != {"value", "source"}:
            raise InputError(f"{where}.{k}: expected {{value, source}}, got {show(v)}")
        x = v["value"]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.05 <= x <= 1:
            raise InputError(f"{where}.{k}: value {show(x)} must be a fraction from 0.05 to 1")
        if not isinstance(v["source"], str) or not v["source"].strip():
            raise InputError(f"{where}.{k}: every figure needs its source")
        out[str(k)] = Figure(float(x), v["source"])
    return out


def _seconds(data: Any, where: str) -> dict[str, Figure]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping")
    out = {}
    for k, v in data.items():
        if not isinstance(v, dict) or set(v) != {"value", "source"} or not str(v["source"]).strip():
            raise InputError(f"{where}.{k}: expected {{value, source}} with a source")
        x = v["value"]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 0.1:
            raise InputError(f"{where}.{k}: value {show(x)} must be from 0 to 0.1 seconds")
        out[str(k)] = Figure(float(x), str(v["source"]))
    return out


def priors_from_dict(data: Any, where: str) -> KernelPriors:
    sections = {"gemm_compute", "gemm_by_device", "memory", "memory_by_family", "comm_by_link", "shared", "tiles",
                "fixed_costs"}
    if not isinstance(data, dict) or not sections <= set(data) <= sections | {"nic_by_kind"}:
        raise InputError(f"{where}: expected the sections {', '.join(sorted(sections))} (and optionally nic_by_kind)")
    shared = {}
    for k, v in (data["shared"] or {}).items():
        if not isinstance(v, dict) or set(v) != {"value", "low", "high", "source"}:
            raise InputError(f"{where}: shared.{k} needs value, low, high and source")
        nums = [v["value"], v["low"], v["high"]]
        if (any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in nums)
                or not 0 < v["low"] <= v["value"] <= v["high"] <= 1):
            raise InputError(f"{where}: shared.{k} needs 0 < low <= value <= high <= 1, got {show(nums)}")
        shared[str(k)] = Bounded(float(v["value"]), float(v["low"]), float(v["high"]), str(v["source"]))
    tiles: dict[str, dict[str, float]] = {}
    for fam, t in (data["tiles"] or {}).items():
        if not isinstance(t, dict) or set(t) != {*_TILE_FIELDS, "source"}:
            raise InputError(f"{where}: tiles.{fam} needs {', '.join(_TILE_FIELDS)} and source")
        for k in _TILE_FIELDS:
            v = t[k]
            if isinstance(v, bool) or not isinstance(v, int) or not (0 if k == "gemv_rows" else 1) <= v <= 1024:
                raise InputError(f"{where}: tiles.{fam}.{k} = {show(v)} must be a whole number of tokens")
        if not t["gemm_min_rows"] <= t["gemm_tile_rows"]:
            raise InputError(f"{where}: tiles.{fam}: gemm_min_rows exceeds gemm_tile_rows")
        tiles[str(fam)] = {k: float(t[k]) for k in _TILE_FIELDS}
    if "default" not in tiles:
        raise InputError(f"{where}: tiles needs a default entry")
    return KernelPriors(
        gemm=_figures(data["gemm_compute"], f"{where}: gemm_compute"),
        gemm_by_device=_figures(data["gemm_by_device"] or {}, f"{where}: gemm_by_device", need_default=False),
        comm_by_link=_figures(data["comm_by_link"], f"{where}: comm_by_link"),
        nic_by_kind=_figures(data.get("nic_by_kind", NIC_FALLBACK), f"{where}: nic_by_kind"),
        shared=shared,
        fixed_costs=_seconds(data["fixed_costs"], f"{where}: fixed_costs"),
        memory_by_type={k.upper(): v for k, v in _figures(data["memory"], f"{where}: memory").items()} | {
            "default": _figures(data["memory"], f"{where}: memory")["default"]},
        memory_by_family=_figures(data["memory_by_family"] or {}, f"{where}: memory_by_family", need_default=False),
        tile=tiles,
    )


@functools.lru_cache(maxsize=1)
def kernel_priors() -> KernelPriors:
    return priors_from_dict(read_yaml(PRIORS_FILE, "kernel priors"), str(PRIORS_FILE))
