"""How much of the roofline real kernels achieve: a handful of physical parameters.

`Efficiency.plain()` is the pure roofline (every fraction 1, no overheads): an upper bound on
speed. Calibrated parameters are data (`catalog/calibration/*.yaml`), fitted by
`llmroofline calibrate` and loaded here; each parameter's meaning is written beside it.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .catalog import CATALOG_ROOT
from .errors import InputError, show
from .hardware import Hardware, read_yaml


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak and fixed costs. Fractions in (0, 1], times in seconds."""

    gemm_compute: float = 1.0  # fraction of dense tensor peak a large GEMM reaches
    gemm_tile_rows: float = 0.0  # GEMMs with M rows cost like M + this (tile/wave quantization)
    memory: float = 1.0  # fraction of DRAM bandwidth streaming kernels reach
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
    layer_overhead_s: float = 0.0  # kernel launches and glue per layer per forward pass
    step_overhead_s: float = 0.0  # scheduling, sampling and host work per forward pass

    @classmethod
    def plain(cls) -> Efficiency:
        return cls()

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


FRACTIONS = ("gemm_compute", "memory", "attn_prefill_compute", "attn_decode_memory", "attn_decode_compute",
             "comm_bandwidth")
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
        if k not in FRACTIONS and not 0 <= v < 1e4:
            raise InputError(f"{where}: {k} = {v} must be non-negative")
        values[k] = float(v)
    return replace(Efficiency(), **values)


@dataclass(frozen=True)
class Calibration:
    """Efficiency parameters per device family, with a default for families never measured,
    and the relative error bands measured by validation."""

    default: Efficiency
    families: dict[str, Efficiency]
    error_bands: dict[str, float]  # e.g. "throughput": 0.12 (median abs. relative error)
    source: str = ""

    def for_device(self, hw: Hardware) -> Efficiency:
        return self.families.get(hw.family, self.default)


PLAIN = Calibration(default=Efficiency.plain(), families={}, error_bands={}, source="plain roofline")


MAX_ERROR_BAND = 10.0  # ±1000%: a band wider than this says nothing


def _section(data: dict[str, Any], key: str, where: str) -> dict[Any, Any]:
    """An optional mapping section of a calibration file (absent or empty: {})."""
    v = data.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise InputError(f"{where}: {key} must be a mapping, got {show(v)}")
    return v


def _warn_unknown_families(fams: dict[str, Any], where: str) -> None:
    """A family no catalog device belongs to is most likely a typo: say so (a device of one's own
    may have a new family, so this is a warning)."""
    if not fams:
        return
    from .hardware import hardware_catalog

    known = {hw.family for hw in hardware_catalog().values()}
    unknown = sorted(set(fams) - known)
    if unknown:
        warnings.warn(f"{where}: no catalog device belongs to the calibrated famil{'ies' if len(unknown) > 1 else 'y'} "
                      f"{', '.join(map(repr, unknown))} (catalog families: {', '.join(sorted(known))}); "
                      "only a device spec of your own with that family uses it", stacklevel=3)


def calibration_from_dict(data: Any, where: str) -> Calibration:
    if not isinstance(data, dict) or "default" not in data:
        raise InputError(f"{where}: a calibration file needs a 'default' section")
    extra = set(data) - {"default", "families", "error_bands", "source", "reasons", "fit"}
    if extra:
        raise InputError(f"{where}: unknown section(s) {', '.join(sorted(extra))}")
    default = efficiency_from_dict(data["default"], f"{where}: default")
    families, bands_in = _section(data, "families", where), _section(data, "error_bands", where)
    fams = {}
    for k, v in families.items():
        if v is not None and not isinstance(v, dict):
            raise InputError(f"{where}: families.{k} must be a mapping of parameter: value, got {show(v)}")
        fams[str(k)] = efficiency_from_dict({**default.to_dict(), **(v or {})}, f"{where}: families.{k}")
    _warn_unknown_families(fams, where)
    bands = {}
    for k, v in bands_in.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= MAX_ERROR_BAND:
            raise InputError(f"{where}: error_bands.{k} must be a relative error from 0 to {MAX_ERROR_BAND:g} "
                             f"(0.1 = ±10%), got {show(v)}")
        bands[str(k)] = float(v)
    return Calibration(default=default, families=fams, error_bands=bands, source=str(data.get("source", where)))


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
