"""How much of the roofline real kernels achieve: a handful of physical parameters.

`Efficiency.plain()` is the pure roofline (every fraction 1, no overheads): an upper bound on
speed. Calibrated parameters are data (`catalog/calibration/*.yaml`), fitted by
`llmroofline calibrate` and loaded here; each parameter's meaning is written beside it.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .catalog import CATALOG_ROOT
from .device_stack import DeviceStack, stack_efficiencies
from .errors import InputError, show
from .hardware import Hardware, read_yaml
from .intervals import validate_intervals
from .priors import kernel_priors
from .runtime import FITTED_FIELDS, RuntimeProfile, load_runtime, with_fitted


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak and fixed costs. Fractions in (0, 1], times in seconds."""

    gemm_compute: float = 1.0  # fraction of dense tensor peak a large GEMM reaches
    # Tile quantization of the token dimension (M) of a GEMM: M rounds up to the next power of two
    # from gemm_min_rows up to gemm_tile_rows, then to a multiple of gemm_tile_rows. GEMMs of at
    # most gemv_rows rows run as GEMV kernels (no tensor-core tile). 1, 1, 0: no quantization.
    gemm_min_rows: float = 1.0
    gemm_tile_rows: float = 1.0
    gemv_rows: float = 0.0
    fp8_gemm_factor: float = 1.0  # an fp8 GEMM reaches this share of gemm_compute's fraction of its peak
    fp4_gemm_factor: float = 1.0  # the same for fp4 GEMMs
    # Weight streaming of fp8 / fp4 GEMMs (scales, dequantization) reaches this share of the
    # bandwidth 16-bit weights reach.
    fp8_memory_factor: float = 1.0
    fp4_memory_factor: float = 1.0
    memory: float = 1.0  # fraction of DRAM bandwidth streaming kernels (weights, activations) reach
    attn_prefill_compute: float = 1.0  # fraction of peak a flash-attention prefill kernel reaches
    attn_decode_memory: float = 1.0  # fraction of bandwidth a decode-attention kernel reaches
    attn_decode_compute: float = 1.0  # fraction of tensor peak a decode-attention kernel reaches (small tiles)
    # Share of grouped-query attention's K/V reuse a decode kernel realizes: 1 reads each KV head
    # once for its whole query group (XQA, FlashInfer); 0 reads it once per query head (per-head
    # kernels), so GQA then saves capacity but not bandwidth.
    gqa_kv_reuse: float = 1.0
    overlap_loss: float = 0.0  # share of the shorter of compute/memory time a kernel fails to hide
    comm_bandwidth: float = 1.0  # fraction of link bandwidth an all-reduce reaches
    comm_latency_s: float = 0.0  # fixed cost of one all-reduce
    nic_bandwidth: float = 1.0  # fraction of NIC bandwidth a collective reaches across scale-up domains
    layer_overhead_s: float = 0.0  # kernel launches and glue per layer per forward pass
    moe_layer_overhead_s: float = 0.0  # routing, token permutation and alignment per MoE layer per pass
    step_overhead_s: float = 0.0  # scheduling, sampling and host work per forward pass

    @classmethod
    def plain(cls) -> Efficiency:
        return cls()

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


FRACTIONS = ("gemm_compute", "memory", "attn_prefill_compute", "attn_decode_memory", "attn_decode_compute",
             "comm_bandwidth", "nic_bandwidth", "fp8_gemm_factor", "fp4_gemm_factor", "fp8_memory_factor", "fp4_memory_factor")
ROWS = ("gemm_min_rows", "gemm_tile_rows")  # tile sizes in tokens: >= 1
UNIT_INTERVAL = ("gqa_kv_reuse", "overlap_loss")


def efficiency_from_dict(data: Any, where: str) -> Efficiency:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of parameter: value")
    names = {f.name for f in fields(Efficiency)}
    extra = set(data) - names
    if extra:
        raise InputError(f"{where}: unknown parameter(s) {', '.join(sorted(map(str, extra)))}")
    values: dict[str, float] = {}
    for k, v in data.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{where}: {k} must be a number, got {v!r}")
        if k in FRACTIONS and not 0 < v <= 1:
            raise InputError(f"{where}: {k} = {v} must be a fraction in (0, 1]")
        if k in UNIT_INTERVAL and not 0 <= v <= 1:
            raise InputError(f"{where}: {k} = {v} must be in [0, 1]")
        if k in ROWS and not 1 <= v <= 1024:
            raise InputError(f"{where}: {k} = {v} must be a tile size from 1 to 1024 tokens")
        if k not in FRACTIONS and not 0 <= v < 1e4:
            raise InputError(f"{where}: {k} = {v} must be non-negative")
        values[k] = float(v)
    return replace(Efficiency(), **values)


@dataclass(frozen=True)
class Calibration:
    """Efficiency parameters for any device and serving stack.

    Two forms. A *physical* calibration (the bundled one) builds each device's fractions from
    published kernel benchmarks (`priors`: per architecture and memory type) times a shared
    `realization` (the share of those figures end-to-end serving reaches) times a fitted factor
    for each measured family; a family never measured gets prior x realization. Overheads and
    K/V reuse come from the serving stack's profile (runtime.py), refitted per profile where
    measurements exist (`runtimes`). A *plain* form (no priors) gives every device `default`
    (or its family's entry) and ignores the stack: the plain roofline is one.
    """

    default: Efficiency
    families: dict[str, Efficiency]
    error_bands: dict[str, float]  # deprecated: median |relative error| per metric (old files)
    source: str = ""
    physical: bool = False
    realization: dict[str, float] = field(default_factory=dict)  # gemm_compute, memory, comm_bandwidth
    family_factors: dict[str, dict[str, float]] = field(default_factory=dict)
    runtimes: dict[str, dict[str, float]] = field(default_factory=dict)  # fitted fields by profile id
    intervals: dict[str, Any] = field(default_factory=dict)  # see intervals.py

    def runtime(self, name: Any = None) -> RuntimeProfile:
        """The serving-stack profile with this calibration's fitted values in place of its priors
        (one object per profile, so that `for_device` finds what it computed for it before)."""
        prof = load_runtime(name)
        memo = self.__dict__.setdefault("_fitted_runtimes", {})
        hit = memo.get(id(prof))
        if hit is not None and hit[0] is prof:
            return hit[1]
        fitted = with_fitted(prof, self.runtimes.get(prof.id, {}))
        if len(memo) >= 64:
            memo.clear()
        memo[id(prof)] = (prof, fitted)  # the profile is kept, so that its id stays its own
        return fitted

    def for_device(self, hw: Hardware, runtime: Any = None) -> Efficiency:
        if isinstance(hw, DeviceStack):  # each member's, as arrays (device_stack.py)
            return stack_efficiencies([self.for_device(m, runtime) for m in hw.members])
        if not self.physical:
            return self.families.get(hw.family, self.default)
        # Kept per device and profile object (a search asks for the same pair once per layout).
        memo = self.__dict__.setdefault("_efficiencies", {})
        hit = memo.get((id(hw), id(runtime)))
        if hit is not None and hit[0] is hw and hit[1] is runtime and isinstance(runtime, RuntimeProfile):
            return hit[2]
        eff = self._for_device(hw, runtime)
        if isinstance(runtime, RuntimeProfile):
            if len(memo) >= 256:
                memo.clear()
            memo[(id(hw), id(runtime))] = (hw, runtime, eff)  # the objects are kept, so that their ids stay theirs
        return eff

    def _for_device(self, hw: Hardware, runtime: Any) -> Efficiency:
        pri = kernel_priors()
        factors = self.family_factors.get(hw.family, {})
        # A family's factor corrects its family's prior; a device with its own published figure keeps it.
        family_gemm = 1.0 if hw.id in pri.gemm_by_device else factors.get("gemm_compute", 1.0)
        gemm = pri.gemm_compute(hw) * self.realization.get("gemm_compute", 1.0) * family_gemm
        mem = pri.memory(hw) * self.realization.get("memory", 1.0) * factors.get("memory", 1.0)
        comm = pri.comm_bandwidth(hw) * self.realization.get("comm_bandwidth", 1.0)
        # NICs reach their published share times the same realization as the scale-up link.
        nic = pri.nic_bandwidth(hw) * self.realization.get("comm_bandwidth", 1.0)
        prof = self.runtime(runtime)
        return replace(self.default, gemm_compute=min(gemm, 1.0), memory=min(mem, 1.0), comm_bandwidth=min(comm, 1.0),
                       nic_bandwidth=min(nic, 1.0),
                       **pri.tiles(hw),
                       gqa_kv_reuse=prof.gqa_kv_reuse, layer_overhead_s=prof.layer_overhead_s,
                       step_overhead_s=prof.step_overhead_s, comm_latency_s=prof.comm_latency_s)

    @property
    def calibrated(self) -> bool:
        return self.source != "plain roofline"


PLAIN = Calibration(default=Efficiency.plain(), families={}, error_bands={}, source="plain roofline")

_SECTIONS = {"default", "families", "error_bands", "source", "reasons", "fit", "physical", "realization",
             "family_factors", "runtimes", "intervals", "priors"}


def _mapping(data: Any, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a mapping, got {show(data)}")
    return data


def _factor_table(data: Any, where: str, lo: float, hi: float) -> dict[str, float]:
    out = {}
    for k, v in _mapping(data, where).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise InputError(f"{where}.{k} = {show(v)} must be a number from {lo:g} to {hi:g}")
        out[str(k)] = float(v)
    return out


def _warn_unknown_families(fams: dict[str, Any], where: str) -> None:
    """A family no catalog device belongs to is most likely a typo: say so (a device of one's own
    may have a new family, so this is a warning)."""
    if not fams:
        return
    from .hardware import catalog_families

    known = catalog_families()
    unknown = sorted(set(fams) - known)
    if unknown:
        warnings.warn(f"{where}: no catalog device belongs to the calibrated famil{'ies' if len(unknown) > 1 else 'y'} "
                      f"{', '.join(map(repr, unknown))} (catalog families: {', '.join(sorted(known))}); "
                      "only a device spec of your own with that family uses it", stacklevel=3)


def calibration_from_dict(data: Any, where: str) -> Calibration:
    if not isinstance(data, dict) or "default" not in data:
        raise InputError(f"{where}: a calibration file needs a 'default' section")
    extra = set(map(str, data)) - _SECTIONS
    if extra:
        raise InputError(f"{where}: unknown section(s) {', '.join(sorted(extra))}")
    default = efficiency_from_dict(data["default"], f"{where}: default")
    fams = {
        str(k): efficiency_from_dict({**default.to_dict(), **_mapping(v, f'{where}: families.{k}')},
                                     f"{where}: families.{k}")
        for k, v in _mapping(data.get("families"), f"{where}: families").items()
    }
    _warn_unknown_families(fams, where)
    bands = _factor_table(data.get("error_bands"), f"{where}: error_bands", 0.0, 10.0)
    physical = data.get("physical", False)
    if not isinstance(physical, bool):
        raise InputError(f"{where}: physical must be true or false, got {show(physical)}")
    realization = _factor_table(data.get("realization"), f"{where}: realization", 0.05, 2.0)
    unknown = set(realization) - {"gemm_compute", "memory", "comm_bandwidth"}
    if unknown:
        raise InputError(f"{where}: realization has unknown field(s) {', '.join(sorted(unknown))}")
    family_factors = {str(k): _factor_table(v, f"{where}: family_factors.{k}", 0.05, 20.0)
                      for k, v in _mapping(data.get("family_factors"), f"{where}: family_factors").items()}
    runtimes = {}
    for k, v in _mapping(data.get("runtimes"), f"{where}: runtimes").items():
        values = _factor_table(v, f"{where}: runtimes.{k}", 0.0, 1.0)
        bad = set(values) - set(FITTED_FIELDS)
        if bad:
            raise InputError(f"{where}: runtimes.{k} has unknown field(s) {', '.join(sorted(bad))}")
        runtimes[str(k)] = values
    intervals = _mapping(data.get("intervals"), f"{where}: intervals")
    return Calibration(default=default, families=fams, error_bands=bands, source=str(data.get("source", where)),
                       physical=physical, realization=realization, family_factors=family_factors,
                       runtimes=runtimes, intervals=validate_intervals(intervals, f"{where}: intervals"))


DEFAULT_CALIBRATION_FILE = CATALOG_ROOT / "calibration" / "default.yaml"


@functools.lru_cache(maxsize=8)
def _load_file(path: str) -> Calibration:
    p = Path(path)
    return calibration_from_dict(read_yaml(p, "calibration file"), str(p))


def load_calibration(name: str | Calibration | None) -> Calibration:
    """`none` (plain roofline), `default` (bundled fit), or a path to a calibration YAML file."""
    if isinstance(name, Calibration):
        return name
    if name is None or str(name).lower() == "default":
        if DEFAULT_CALIBRATION_FILE.exists():
            return _load_file(str(DEFAULT_CALIBRATION_FILE))
        return PLAIN
    if str(name).lower() in ("none", "plain"):
        return PLAIN
    try:
        p = Path(str(name)).expanduser()
        exists = p.is_file()
        resolved = str(p.resolve()) if exists else ""
    except (OSError, RuntimeError, ValueError):  # unknown ~user, name too long, NUL byte
        exists = False
    if not exists:
        raise InputError(f"calibration: {str(name)[:200]!r} is neither none, default nor an existing file")
    return _load_file(resolved)
