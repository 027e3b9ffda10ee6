"""Serving stacks as data: what a runtime's kernels and scheduler do, one YAML file per stack.

A profile names the stack's kernel features (GQA-aware decode attention, CUDA graphs, fused
all-reduce), its fixed costs (per layer, per step, per all-reduce), how its KV cache is sized
(`full`: each admitted sequence reserves input + output; `average`: a paged cache holds what
sequences have written, about input + half the output) and its batch limits. Ids take a version
suffix: `trtllm@0.8` picks the profile of the nearest version; a bare id the newest.

Calibration files may override a profile's fitted fields (`runtimes:` section): the YAML values
here are the priors.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from .catalog import catalog_files
from .errors import InputError, show, unknown_name
from .hardware import read_yaml

DEFAULT_RUNTIME = "generic"
KV_RESERVATIONS = ("full", "average")
# Fields a calibration may refit per profile (seconds, or a share in [0, 1]).
FITTED_FIELDS = ("gqa_kv_reuse", "layer_overhead_s", "step_overhead_s", "comm_latency_s")


@dataclass(frozen=True)
class RuntimeProfile:
    """One serving stack at one version."""

    id: str  # e.g. "trtllm@0.8"
    name: str
    version: str
    notes: str
    gqa_aware_decode: bool
    cuda_graphs: bool
    fused_all_reduce: bool
    gqa_kv_reuse: float  # share of GQA's K/V reuse its decode kernels realize (0: per-head reads)
    layer_overhead_s: float  # launches and glue per layer per forward pass
    step_overhead_s: float  # scheduler, sampling and host work per forward pass
    comm_latency_s: float  # fixed cost of one all-reduce
    kv_reservation: str  # "full" or "average"
    max_batch_size: int
    chunk_tokens: int  # prefill token budget per step
    # How the KV pool is sized: `free` = memory_fraction of what weights and workspace leave;
    # `total` = weights, workspace and pool together take memory_fraction of the device.
    memory_rule: str = "free"
    memory_fraction: float = 0.9
    released: str = ""  # YYYY-MM of the release the profile describes

    @property
    def stack(self) -> str:
        return self.id.split("@")[0]

    def kv_tokens(self, input_len, output_len):
        """KV positions one in-flight sequence holds for memory sizing."""
        if self.kv_reservation == "full":
            return input_len + output_len
        return input_len + output_len / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_BOOL = ("gqa_aware_decode", "cuda_graphs", "fused_all_reduce")
_SECONDS = ("layer_overhead_s", "step_overhead_s", "comm_latency_s")


def _version_entry(stack: str, name: str, entry: Any, where: str) -> RuntimeProfile:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: each version must be a mapping, got {show(entry)}")
    allowed = {f.name for f in fields(RuntimeProfile)} - {"id", "name"}
    if entry.get("memory_rule") not in ("free", "total"):
        raise InputError(f"{where}: version {entry.get('version')!r}: memory_rule must be free or total")
    if not re.fullmatch(r"20\d\d-[01]\d", str(entry.get("released", ""))):
        raise InputError(f"{where}: version {entry.get('version')!r}: released must be YYYY-MM")
    mf = entry.get("memory_fraction")
    if isinstance(mf, bool) or not isinstance(mf, (int, float)) or not 0.1 <= mf <= 1:
        raise InputError(f"{where}: version {entry.get('version')!r}: memory_fraction must be from 0.1 to 1")
    extra = set(map(str, entry)) - allowed
    missing = allowed - set(map(str, entry))
    if extra or missing:
        raise InputError(f"{where}: version {entry.get('version')!r}: "
                         + (f"unknown field(s) {', '.join(sorted(extra))}" if extra else
                            f"missing field(s) {', '.join(sorted(missing))}"))
    version = str(entry["version"]).strip()
    if not re.fullmatch(r"[A-Za-z]?\d+(\.\d+)*", version):
        raise InputError(f"{where}: version {version!r} must look like 0.8, 1.0 or b4000")
    for k in _BOOL:
        if not isinstance(entry[k], bool):
            raise InputError(f"{where}@{version}: {k} must be true or false, got {show(entry[k])}")
    for k in (*_SECONDS, "gqa_kv_reuse"):
        v = entry[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= (1 if k == "gqa_kv_reuse" else 0.1):
            raise InputError(f"{where}@{version}: {k} = {show(v)} is out of range "
                             f"({'0 to 1' if k == 'gqa_kv_reuse' else '0 to 0.1 s'})")
    if entry["kv_reservation"] not in KV_RESERVATIONS:
        raise InputError(f"{where}@{version}: kv_reservation must be one of {', '.join(KV_RESERVATIONS)}")
    for k in ("max_batch_size", "chunk_tokens"):
        v = entry[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10**6:
            raise InputError(f"{where}@{version}: {k} must be a whole number from 1 to 1e6, got {show(v)}")
    return RuntimeProfile(
        id=f"{stack}@{version}", name=name, version=version, notes=str(entry["notes"]),
        gqa_aware_decode=entry["gqa_aware_decode"], cuda_graphs=entry["cuda_graphs"],
        fused_all_reduce=entry["fused_all_reduce"], gqa_kv_reuse=float(entry["gqa_kv_reuse"]),
        layer_overhead_s=float(entry["layer_overhead_s"]), step_overhead_s=float(entry["step_overhead_s"]),
        comm_latency_s=float(entry["comm_latency_s"]), kv_reservation=entry["kv_reservation"],
        max_batch_size=entry["max_batch_size"], chunk_tokens=entry["chunk_tokens"],
        memory_rule=entry["memory_rule"], memory_fraction=float(entry["memory_fraction"]),
        released=str(entry["released"]))


@dataclass(frozen=True)
class RuntimeStack:
    id: str
    name: str
    aliases: tuple[str, ...]
    match: tuple[str, ...]  # lower-case substrings that identify it in a framework description
    versions: tuple[RuntimeProfile, ...]  # oldest first


def stack_from_dict(data: Any, where: str) -> RuntimeStack:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    keys = {"id", "name", "aliases", "match", "versions"}
    if set(map(str, data)) != keys:
        raise InputError(f"{where}: a runtime file has exactly the fields {', '.join(sorted(keys))}")
    sid = str(data["id"]).strip().lower()
    versions = data["versions"]
    if not isinstance(versions, list) or not versions:
        raise InputError(f"{where}: versions must be a non-empty list")
    profiles = sorted((_version_entry(sid, str(data["name"]), v, where) for v in versions),
                      key=lambda p: version_key(p.version))
    for name in ("aliases", "match"):
        if not isinstance(data[name], list) or not all(isinstance(a, str) for a in data[name]):
            raise InputError(f"{where}: {name} must be a list of strings")
    return RuntimeStack(id=sid, name=str(data["name"]), aliases=tuple(a.lower() for a in data["aliases"]),
                        match=tuple(a.lower() for a in data["match"]), versions=tuple(profiles))


def version_key(version: str) -> tuple[float, ...]:
    """0.8 -> (0, 8); v0.17.0 -> (0, 17, 0); b4000 -> (4000,). Non-numeric parts are dropped."""
    return tuple(float(x) for x in re.findall(r"\d+", version)) or (0.0,)


@functools.lru_cache(maxsize=1)
def runtime_catalog() -> dict[str, RuntimeStack]:
    out: dict[str, RuntimeStack] = {}
    for path in catalog_files("runtimes", (".yaml", ".yml")):
        stack = stack_from_dict(read_yaml(path, "runtime profile"), str(path))
        if stack.id != path.stem:
            raise InputError(f"{path}: id {stack.id!r} differs from the file name")
        out[stack.id] = stack
    return out


def _names() -> dict[str, str]:
    table: dict[str, str] = {}
    for s in runtime_catalog().values():
        for n in (s.id, *s.aliases):
            table[n] = s.id
    return table


def _nearest(stack: RuntimeStack, version: str) -> RuntimeProfile:
    want = version_key(version)
    width = max(len(want), *(len(version_key(p.version)) for p in stack.versions))

    def distance(p: RuntimeProfile) -> tuple[float, ...]:
        a = version_key(p.version) + (0.0,) * width
        b = want + (0.0,) * width
        # Compare component by component: the first differing component decides.
        return tuple(abs(x - y) for x, y in zip(a[:width], b[:width], strict=True))

    return min(stack.versions, key=distance)  # ties: the older profile


def load_runtime(name: str | RuntimeProfile | None = None) -> RuntimeProfile:
    """A serving-stack profile by id (`vllm`), alias, or id@version (`trtllm@0.8`)."""
    if isinstance(name, RuntimeProfile):
        return name
    if name is None:
        name = DEFAULT_RUNTIME
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InputError(f"runtime must be a name such as {', '.join(runtime_catalog())}, got {show(name)}")
    text = name.strip().lower()
    base, _, version = text.partition("@")
    table = _names()
    if base not in table:
        raise unknown_name("runtime", base, list(runtime_catalog()))
    stack = runtime_catalog()[table[base]]
    if not version:
        return stack.versions[-1]
    if not re.fullmatch(r"v?[a-z]?\d+(\.\d+)*(\.\w+)?", version):
        raise InputError(f"runtime {name!r}: version {version!r} must look like 0.8 or 1.0")
    return _nearest(stack, version.lstrip("v"))


def runtime_from_framework(framework: str, version: str = "") -> RuntimeProfile:
    """The profile for a free-text framework description, as measurement tables give it
    ("TensorRT-LLM (PyTorch backend, trtllm-bench)", "v0.17"); `generic` when none matches."""
    text = (framework or "").lower()
    for stack in runtime_catalog().values():
        if any(m in text for m in stack.match):
            if stack.id == "trtllm" and "pytorch" in text:
                version = version if version_key(version or "0") >= (1.0,) else "1.0"
            if stack.id == "trtllm" and "triton" in text:
                version = "0.14"
            # "v0.17", "~1.0 (doc state ...)"; a version stated only in prose counts as unstated.
            digits = re.match(r"\s*[~v]*\s*(\d+(\.\d+)*)", version or "")
            if digits:
                return _nearest(stack, digits.group(1))
            # Unstated, but dated ("after 2024-07"): the first profile released from then on.
            month = re.search(r"20\d\d-[01]\d", version or "")
            if month:
                later = [p for p in stack.versions if p.released >= month.group(0)]
                return later[0] if later else stack.versions[-1]
            return stack.versions[-1]
    return load_runtime(DEFAULT_RUNTIME)


def with_fitted(profile: RuntimeProfile, values: dict[str, float]) -> RuntimeProfile:
    """The profile with fitted values (a calibration's `runtimes:` entry) in place of its priors."""
    fitted: dict[str, Any] = {k: float(v) for k, v in values.items() if k in FITTED_FIELDS}
    if all(getattr(profile, k) == v for k, v in fitted.items()):  # already in place (or nothing fitted)
        return profile
    return replace(profile, **fitted)
