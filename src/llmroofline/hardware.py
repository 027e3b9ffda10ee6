"""Accelerator specifications: one validated YAML file per device, loaded into a frozen object.

Units are in the file's field names (GB, GB/s, TFLOPS, MB, W; Gb/s for NICs, as they are
quoted); values are converted to SI (bytes, bytes/s, FLOP/s) once, here. Giga and tera are
decimal (1e9, 1e12). A device states its scale-up domain (`interconnect`) and, optionally, the
network beyond it per device (`scale_out`; docs/parallelism.md).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .catalog import catalog_files, looks_like_path, name_table
from .errors import InputError, clean_name, unknown_name
from .files import MAX_YAML_BYTES, SAFE_LOADER, parse_yaml, read_text
from .precision import RATES

GB = 1e9
TERA = 1e12

_REQUIRED = {
    "id", "name", "vendor", "family", "aliases", "release_year", "memory_gb", "memory_type",
    "memory_bandwidth_gbps", "peak_tflops", "onchip_buffer_mb", "interconnect", "tdp_w",
    "price_per_hour_usd", "confidence", "notes", "source", "sources",
}
_OPTIONAL = {"scale_out"}
# libyaml's parser with the same safe constructor when PyYAML was built with it (about 10x faster).
_INTERCONNECT_KEYS = {"kind", "bandwidth_gbps", "max_devices"}
_SCALE_OUT_KEYS = {"kind", "bandwidth_gbit_s", "latency_us", "source", "default"}  # default: as to_dict writes it
# Beyond the scale-up domain, where a device's file states no network (no `scale_out` block, or
# `kind: none`): one 100 Gb/s Ethernet (RoCE) port per device, the common server NIC, and 10 us
# per message (a kernel-bypass RDMA hop is 3-5 us; Ethernet switches and host stacks add more).
SCALE_OUT_DEFAULT_GBIT_S = 100.0
SCALE_OUT_DEFAULT_LATENCY_US = 10.0
_CONFIDENCE = {"high", "medium", "low"}
_UNITS = {"_gbit_s": " Gb/s", "_gbps": " GB/s", "_gb": " GB", "_mb": " MB", "_w": " W", "_usd": " USD/h", "tflops": " TFLOPS"}


@dataclass(frozen=True)
class Hardware:
    """One accelerator. SI units: bytes, bytes/s, FLOP/s, W, USD/h."""

    id: str
    name: str
    vendor: str
    family: str
    memory_bytes: float
    memory_bandwidth: float  # bytes/s
    peak_flops: dict[str, float]  # FLOP/s (or OP/s) dense, keyed by precision
    onchip_buffer_bytes: float
    interconnect_kind: str
    interconnect_bandwidth: float  # bytes/s per direction per device (half the datasheet's bidirectional figure)
    max_devices: int  # devices in one scale-up domain
    tdp_w: float
    price_per_hour_usd: float
    memory_type: str = ""
    release_year: int = 0
    confidence: str = "high"
    aliases: tuple[str, ...] = ()
    notes: str = ""
    source: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    # The network beyond the scale-up domain (NICs), per device: kind, bytes/s per direction,
    # seconds per message; `scale_out_default` when the file states none and the defaults apply.
    scale_out_kind: str = "none"
    scale_out_bandwidth: float = SCALE_OUT_DEFAULT_GBIT_S * 1e9 / 8
    scale_out_latency_s: float = SCALE_OUT_DEFAULT_LATENCY_US * 1e-6
    scale_out_source: str = ""
    scale_out_default: bool = True

    def __post_init__(self) -> None:
        # The roofline divides by these: each must be a positive, finite number of SI units.
        positive = {"memory_bytes": self.memory_bytes, "memory_bandwidth": self.memory_bandwidth,
                    "interconnect_bandwidth": self.interconnect_bandwidth,
                    "scale_out_bandwidth": self.scale_out_bandwidth,
                    **{f"peak_flops[{p!r}]": v for p, v in (self.peak_flops or {}).items()}}
        if not isinstance(self.peak_flops, dict) or not self.peak_flops:
            raise InputError(f"device {self.id}: peak_flops must map precisions to FLOP/s")
        for name, v in positive.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InputError(f"device {self.id}: {name} must be a positive number, got {v!r}")
        if isinstance(self.max_devices, bool) or not isinstance(self.max_devices, int) or self.max_devices < 1:
            raise InputError(f"device {self.id}: max_devices must be a whole number >= 1, got {self.max_devices!r}")
        lat = self.scale_out_latency_s
        if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not math.isfinite(lat) or lat < 0:
            raise InputError(f"device {self.id}: scale_out_latency_s must be a non-negative number, got {lat!r}")

    @property
    def nic_shares_link(self) -> bool:
        """True where the NIC hangs off the same PCIe link the devices talk over inside the domain
        (PCIe cards): traffic to peers inside and outside the domain then shares one link."""
        return self.interconnect_kind.lower().startswith("pcie")

    @property
    def precisions(self) -> set[str]:
        return set(self.peak_flops)

    def peak(self, precision: str) -> float:
        """Dense peak FLOP/s at a precision; InputError if the device lacks it."""
        try:
            return self.peak_flops[precision]
        except KeyError:
            raise InputError(
                f"device {self.id} has no {precision} peak (it has {', '.join(sorted(self.peak_flops))})"
            ) from None

    def ridge_intensity(self, precision: str = "fp16") -> float:
        """FLOPs per byte at which the roofline turns from memory- to compute-bound."""
        return self.peak(precision) / self.memory_bandwidth

    def to_dict(self) -> dict[str, Any]:
        """The catalog view, in the file's units (GB, GB/s, TFLOPS)."""
        return {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "family": self.family,
            "aliases": list(self.aliases),
            "release_year": self.release_year,
            "memory_gb": self.memory_bytes / GB,
            "memory_type": self.memory_type,
            "memory_bandwidth_gbps": self.memory_bandwidth / GB,
            "peak_tflops": {p: v / TERA for p, v in self.peak_flops.items()},
            "ridge_flops_per_byte": {p: v / self.memory_bandwidth for p, v in self.peak_flops.items()},
            "onchip_buffer_mb": self.onchip_buffer_bytes / 1e6,
            "interconnect": {
                "kind": self.interconnect_kind,
                "bandwidth_gbps": 2 * self.interconnect_bandwidth / GB,
                "max_devices": self.max_devices,
            },
            "scale_out": {
                "kind": self.scale_out_kind,
                "bandwidth_gbit_s": self.scale_out_bandwidth * 8 / 1e9,
                "latency_us": self.scale_out_latency_s * 1e6,
                "default": self.scale_out_default,
                "source": self.scale_out_source,
            },
            "tdp_w": self.tdp_w,
            "price_per_hour_usd": self.price_per_hour_usd,
            "confidence": self.confidence,
            "notes": self.notes,
            "source": self.source,
            "sources": dict(self.sources),
        }


def _number(where: str, key: str, value: Any, *, upper: float, lower: float) -> float:
    """A positive figure within physical bounds: below `lower` or above `upper` (in the field's
    unit) is a typo or a unit mix-up, and would make every time absurd."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: {key} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: {key} must be a positive number, got {value!r}")
    unit = next((u for part, u in _UNITS.items() if part in key), "")
    if value > upper:
        raise InputError(f"{where}: {key} = {value!r} is implausible (above {upper:g}{unit}; mind the unit)")
    if value < lower:
        raise InputError(f"{where}: {key} = {value!r} is implausible (below {lower:g}{unit}; mind the unit)")
    return float(value)


def _whole(where: str, key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InputError(f"{where}: {key} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(f"{where}: {key} = {value!r} is out of range ({lo} to {hi})")
    return int(value)


def _text(where: str, key: str, value: Any, *, required: bool = True) -> str:
    """A text field. YAML reads `name: 4090` as a number: numbers are taken as text too."""
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"{where}: {key} must be text, got {value!r}")
    text = str(value).strip()
    if required and not text:
        raise InputError(f"{where}: {key} must not be empty")
    return text


def hardware_from_dict(data: Any, where: str = "hardware spec") -> Hardware:
    """Validate a spec mapping (the YAML schema) and convert it to SI units.

    Every field is checked (type, range, units implied by the name); anything wrong raises
    InputError naming the file or device, the field, the value and what is allowed.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    keys = set(map(str, data))
    missing = _REQUIRED - keys
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    extra = keys - _REQUIRED - _OPTIONAL
    if extra:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
    where = f"{where} ({data['id']})" if isinstance(data.get("id"), str) else where
    device_id = _text(where, "id", data["id"])
    peaks = data["peak_tflops"]
    if not isinstance(peaks, dict) or not peaks:
        raise InputError(f"{where}: peak_tflops must map precisions to TFLOPS, got {peaks!r}")
    bad = set(map(str, peaks)) - set(RATES)
    if bad:
        raise InputError(f"{where}: peak_tflops has unknown precision(s) {', '.join(sorted(bad))}; "
                         f"allowed: {', '.join(RATES)}")
    if not {"fp16", "bf16"} & set(map(str, peaks)):
        raise InputError(f"{where}: peak_tflops needs an fp16 or bf16 figure (attention and 16-bit matrix "
                         f"multiplies run at it), got {', '.join(map(str, peaks))}")
    ic = data["interconnect"]
    if not isinstance(ic, dict) or set(map(str, ic)) != _INTERCONNECT_KEYS:
        raise InputError(f"{where}: interconnect needs exactly {', '.join(sorted(_INTERCONNECT_KEYS))}, got {ic!r}")
    if not isinstance(data["confidence"], str) or data["confidence"] not in _CONFIDENCE:
        raise InputError(f"{where}: confidence must be one of {', '.join(sorted(_CONFIDENCE))}, "
                         f"got {data['confidence']!r}")
    aliases = data["aliases"] or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise InputError(f"{where}: aliases must be a list of non-empty strings, got {aliases!r}")
    scale_out = _scale_out(where, data.get("scale_out"))
    sources = data["sources"] or {}
    if not isinstance(sources, dict) or not all(isinstance(v, (str, int, float)) for v in sources.values()):
        raise InputError(f"{where}: sources must map figures to their sources (text), got {sources!r}")
    return Hardware(
        id=device_id,
        name=_text(where, "name", data["name"]),
        vendor=_text(where, "vendor", data["vendor"]),
        family=_text(where, "family", data["family"]).lower(),
        memory_bytes=_number(where, "memory_gb", data["memory_gb"], upper=1e5, lower=0.1) * GB,
        memory_bandwidth=_number(where, "memory_bandwidth_gbps", data["memory_bandwidth_gbps"], upper=1e6, lower=1) * GB,
        peak_flops={
            str(p): _number(where, f"peak_tflops.{p}", v, upper=1e6, lower=0.01) * TERA for p, v in peaks.items()
        },
        onchip_buffer_bytes=_number(where, "onchip_buffer_mb", data["onchip_buffer_mb"], upper=1e6, lower=0.01) * 1e6,
        interconnect_kind=_text(where, "interconnect.kind", ic["kind"]),
        interconnect_bandwidth=_number(where, "interconnect.bandwidth_gbps", ic["bandwidth_gbps"], upper=1e5, lower=0.1) * GB / 2,
        max_devices=_whole(where, "interconnect.max_devices", ic["max_devices"], 1, 100_000),
        tdp_w=_number(where, "tdp_w", data["tdp_w"], upper=1e5, lower=1),
        price_per_hour_usd=_number(where, "price_per_hour_usd", data["price_per_hour_usd"], upper=1e3, lower=0.001),
        memory_type=_text(where, "memory_type", data["memory_type"], required=False),
        release_year=_whole(where, "release_year", data["release_year"], 1970, 2100),
        confidence=data["confidence"],
        aliases=tuple(a.strip().lower() for a in aliases),
        notes=_text(where, "notes", data["notes"], required=False),
        source=_text(where, "source", data["source"]),
        sources={str(k): str(v) for k, v in sources.items()},
        **scale_out,
    )


def _scale_out(where: str, block: Any) -> dict[str, Any]:
    """The `scale_out` block as Hardware fields: the network beyond the scale-up domain, per device.

    `kind: none` (or no block at all) states no network: the defaults apply (100 Gb/s, 10 us)
    and an estimate that crosses the domain says so. Otherwise the NIC bandwidth in Gb/s per
    direction per device, the latency of one message in microseconds, and where they come from.
    """
    default = {"scale_out_kind": "none", "scale_out_bandwidth": SCALE_OUT_DEFAULT_GBIT_S * 1e9 / 8,
               "scale_out_latency_s": SCALE_OUT_DEFAULT_LATENCY_US * 1e-6, "scale_out_default": True}
    if block is None:
        return {**default, "scale_out_source": "no scale_out block: default"}
    if not isinstance(block, dict):
        raise InputError(f"{where}: scale_out must be a mapping of {', '.join(sorted(_SCALE_OUT_KEYS))}, "
                         f"got {block!r}")
    keys = set(map(str, block))
    if not {"kind", "source"} <= keys or keys - _SCALE_OUT_KEYS:
        raise InputError(f"{where}: scale_out takes kind and source (required), bandwidth_gbit_s and latency_us; "
                         f"got {', '.join(sorted(keys)) or 'nothing'}")
    kind = _text(where, "scale_out.kind", block["kind"])
    source = _text(where, "scale_out.source", block["source"])
    none = kind.lower() == "none"
    if "default" in keys and block["default"] is not none:
        raise InputError(f"{where}: scale_out.default is true exactly when kind is none, got {block['default']!r}")
    if none:
        # The defaults apply; `hardware show --json` writes them out, and reading that back is fine.
        stated = {"bandwidth_gbit_s": SCALE_OUT_DEFAULT_GBIT_S, "latency_us": SCALE_OUT_DEFAULT_LATENCY_US}
        if any(not isinstance(block[k], (int, float)) or isinstance(block[k], bool)
               or not math.isclose(block[k], v, rel_tol=1e-9) for k, v in stated.items() if k in keys):
            raise InputError(f"{where}: scale_out.kind none states no network and takes the defaults "
                             f"({SCALE_OUT_DEFAULT_GBIT_S:g} Gb/s, {SCALE_OUT_DEFAULT_LATENCY_US:g} us): drop "
                             "bandwidth_gbit_s and latency_us, or name the network's kind")
        return {**default, "scale_out_source": source}
    missing = {"bandwidth_gbit_s", "latency_us"} - keys
    if missing:
        raise InputError(f"{where}: scale_out of kind {kind} needs {', '.join(sorted(missing))}")
    gbit = _number(where, "scale_out.bandwidth_gbit_s", block["bandwidth_gbit_s"], upper=1e5, lower=1)
    lat = block["latency_us"]
    if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not math.isfinite(lat) or not 0 <= lat <= 1e4:
        raise InputError(f"{where}: scale_out.latency_us must be a number of microseconds from 0 to 10000, got {lat!r}")
    return {"scale_out_kind": kind, "scale_out_bandwidth": gbit * 1e9 / 8, "scale_out_latency_s": float(lat) * 1e-6,
            "scale_out_source": source, "scale_out_default": False}


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file (a regular file of at most MAX_YAML_BYTES) as plain data through
    `yaml.safe_load`, duplicate keys refused; InputError otherwise."""
    text = read_text(path, what, limit=MAX_YAML_BYTES)
    return parse_yaml(text, f"{what} {clean_name(str(path))}")


def load_hardware_file(path: str | Path) -> Hardware:
    try:
        p = Path(path).expanduser()
    except RuntimeError as e:  # ~user that does not exist
        raise InputError(f"cannot read hardware spec {path}: {e}") from None
    return hardware_from_dict(read_yaml(p, "hardware spec"), where=clean_name(str(p)))


@functools.cache
def _catalog_file(path: Path) -> Hardware:
    """One bundled device, read once per process: the catalog and a lookup by name share the object."""
    hw = load_hardware_file(path)
    if hw.id != path.stem:
        raise InputError(f"{path}: id {hw.id!r} differs from the file name")
    return hw


@functools.lru_cache(maxsize=1)
def hardware_catalog() -> dict[str, Hardware]:
    """All bundled devices by canonical id."""
    return {(hw := _catalog_file(path)).id: hw for path in catalog_files("hardware", (".yaml", ".yml"))}


def _lookup_table() -> dict[str, str]:
    return name_table("device", [(hw.id, hw.aliases, ()) for hw in hardware_catalog().values()])


# The top-level lines a device file is indexed by without parsing it whole (`_scan_catalog`).
_INDEX_LINE = re.compile(r"^(id|aliases|family):[ \t]", re.MULTILINE)


def _scan_file(path: Path) -> dict[str, Any] | None:
    """The id, aliases and family of a bundled device file read from their own lines, or None when
    the file does not state each once on a single top-level line (then only a full parse can say).

    Those lines are parsed as YAML themselves, so a value reads as the full parse reads it."""
    text = read_text(path, "hardware spec", limit=MAX_YAML_BYTES)
    found = list(_INDEX_LINE.finditer(text))
    if sorted(m[1] for m in found) != ["aliases", "family", "id"]:
        return None
    lines = []
    for m in found:
        end = text.find("\n", m.start())
        end = len(text) if end < 0 else end
        if text[end + 1:end + 2] in (" ", "\t", "-"):  # the value goes on below (a block list, a folded text)
            return None
        lines.append(text[m.start():end])
    try:
        data = yaml.load("\n".join(lines), Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return None
    ident, aliases, family = data.get("id"), data.get("aliases"), data.get("family")
    if (not isinstance(ident, str) or ident != path.stem or not isinstance(aliases, list)
            or not all(isinstance(a, str) and a.strip() for a in aliases)
            or isinstance(family, bool) or not isinstance(family, (str, int, float))):
        return None
    return {"id": ident, "aliases": aliases, "family": str(family).strip().lower()}


@functools.lru_cache(maxsize=1)
def _scan_catalog() -> tuple[dict[str, Path], frozenset[str]] | None:
    """Device names (lower-cased id and aliases) -> their bundled file, and every device's family,
    from each file's id, aliases and family lines alone; None if a file cannot be read that way.

    A command that names one device then parses that one file instead of all 54 (about 20 ms of
    a 0.3 s process). The table is the one `_lookup_table` builds (the same `name_table`: a name
    two devices claim is None here, and the full catalog then reports it as before).
    """
    scanned = []
    for path in catalog_files("hardware", (".yaml", ".yml")):
        entry = _scan_file(path)
        if entry is None:
            return None
        scanned.append((path, entry))
    try:
        table = name_table("device", [(e["id"], e["aliases"], ()) for _, e in scanned])
    except InputError:
        return None
    files = {e["id"]: path for path, e in scanned}
    return {name: files[ident] for name, ident in table.items()}, frozenset(e["family"] for _, e in scanned)


def _bundled_device(key: str) -> Hardware | None:
    """The bundled device a lower-cased name resolves to, or None if the catalog has no such name."""
    scan = _scan_catalog() if hardware_catalog.cache_info().currsize == 0 else None
    path = scan[0].get(key) if scan else None
    if path is not None:
        hw = _catalog_file(path)  # parsed and checked in full; the lines it was found by are its own
        if key in (hw.id.lower(), *(a.lower() for a in hw.aliases)):
            return hw
    table = _lookup_table()  # the whole catalog: already loaded, or a name the scan could not place
    return hardware_catalog()[table[key]] if key in table else None


def catalog_families() -> frozenset[str]:
    """The family of every bundled device (what a calibration's families are checked against)."""
    scan = _scan_catalog() if hardware_catalog.cache_info().currsize == 0 else None
    return scan[1] if scan else frozenset(hw.family for hw in hardware_catalog().values())


def load_hardware(name: str | Hardware) -> Hardware:
    """A device by canonical id or alias (case-insensitive), or a path to a spec YAML file."""
    if isinstance(name, Hardware):
        return name
    key = str(name).strip()
    hw = _bundled_device(key.lower())
    if hw is not None:
        return hw
    if looks_like_path(key):
        return load_hardware_file(key)
    raise unknown_name("device", key, hardware_catalog())


def catalog_hardware(name: str) -> Hardware:
    """A bundled device by id or alias only, never a file (what the web app resolves requests with)."""
    key = str(name).strip() if isinstance(name, str) else ""
    hw = _bundled_device(key.lower())
    if hw is not None:
        return hw
    raise unknown_name("device", key or repr(name), hardware_catalog())


def list_hardware() -> list[Hardware]:
    return list(hardware_catalog().values())
