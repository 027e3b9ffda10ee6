"""Which device, parallelism and batch serve a workload at the lowest cost per output token
within latency targets, and the throughput-latency trade-off behind the answer (issue 6).

The search, per device, is exhaustive over this space:

- tensor parallelism tp in 1, 2, 4, 8 that divides the attention heads, fits in one scale-up
  domain (the interconnect's `max_devices`) and is at most `max_gpus`;
- pipeline parallelism pp in 2, 4, 8, ... (tp·pp <= max_gpus, pp <= layers), only when no tp
  within one domain holds the weights plus one sequence;
- expert parallelism ep in 1, 2, 4, 8 dividing the expert count (mixture of experts only):
  within the tp group (ep divides tp, combined by the tp all-reduce), or over ep devices with
  data-parallel attention (ep a multiple of tp, in one scale-up domain; all-to-all dispatch and
  combine);
- wide expert parallelism (mixture of experts, when `max_gpus` exceeds 8): ep in 16, 32, 64,
  ... up to `max_gpus`, dividing the routed (+ redundant) experts, with data-parallel attention
  dp = ep / tp at the smallest and the largest tp, one pipeline stage (DeepSeek style: all-to-all
  across nodes or a rack-scale domain, the busiest device's load imbalance included). When
  `max_gpus` is not given (None: 8) and a MoE model fits nowhere on a device within 8 GPUs, that
  device is searched again up to WIDE_EP_AUTO_GPUS with wide expert parallelism (the model needs
  it: tp 1, one stage, attention data-parallel over the ep devices); an explicit `max_gpus` is a
  hard limit;
- fixed degrees: `tp`, `pp`, `ep` or `dp` given keep the search to layouts with that value
  (with `dp` given, a MoE model spreads its experts over tp x dp devices unless `ep` is given;
  a dense model runs dp plain replicas);
- batch: a log grid (four points per doubling) from 1 to the largest batch that fits as a
  runtime sizes it (`memory.max_batch`, each attention replica up to the batch limit), all
  evaluated in one continuous-batching `estimate` call per (tp, pp, ep, dp).

A configuration is feasible when it fits in memory and meets the SLOs (TTFT <= ttft_slo,
TPOT <= tpot_slo). The best per device has the lowest cost per million output tokens,
price per GPU-hour × GPUs / (3600 s × system throughput) × 1e6, ties going to the higher
throughput per GPU. Energy per output token comes from the power model (energy.py: idle,
compute-bound, memory-bound and communication power over the estimate's own operator times);
`energy_j_per_token_tdp`, TDP × GPUs / system throughput, is the ceiling at full board power.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .device_stack import DeviceStack, stack_devices
from .efficiency import Calibration, load_calibration
from .errors import InputError, require_positive, show
from .estimate import (
    ABSURD_LENGTH,
    MAX_BATCH,
    Estimate,
    estimate,
    gemm_rates,
    resolve_parallelism,
    reuse_passes,
)
from .hardware import Hardware, list_hardware, load_hardware
from .memory import batch_in_memory, serving_footprint, usable_memory
from .model import ModelSpec, load_model
from .moe_balance import check_imbalance
from .precision import WeightPrecision, normalize
from .roofline import device_peak
from .runtime import RuntimeProfile
from .vision import check_image_size, check_images

TP_CHOICES = (1, 2, 4, 8)
EP_CHOICES = (1, 2, 4, 8)
DEFAULT_MAX_GPUS = 8  # one HGX-class node
WIDE_EP_AUTO_GPUS = 64  # how far a MoE model that fits in no node is widened when max_gpus is not given
WIDE_EP_CHOICES = (16, 32, 64, 128, 256)  # beyond one scale-up domain, with data-parallel attention
GRID_STEPS_PER_DOUBLING = 4
KV_FRACTION = 0.9  # share of the memory left after weights and workspace a runtime gives the KV cache
MAX_GPUS_LIMIT = 1024
GB = 1e9
INTERACTIVE_TPOT_SLO = 0.05  # s: 20 output tokens/s per user, about reading speed for a chat service


def interactive_default(ttft_slo: float | None, tpot_slo: float | None) -> tuple[float | None, float | None, str]:
    """The SLOs to rank by when none is given, and a sentence saying so ('' when some were given).

    Without any target the cheapest configuration per token is the largest batch, at a few tokens
    per second per user: fine for offline batch jobs, useless for a chat service. The default is
    an interactive one, TPOT <= 50 ms (20 tokens/s per user).
    """
    if ttft_slo is not None or tpot_slo is not None:
        return ttft_slo, tpot_slo, ""
    return None, INTERACTIVE_TPOT_SLO, (
        f"no latency target given: ranked for an interactive service, TPOT ≤ {INTERACTIVE_TPOT_SLO * 1e3:g} ms "
        f"({1 / INTERACTIVE_TPOT_SLO:g} tokens/s per user); --tpot-slo none ranks by cost alone (offline batch jobs)")


def objective_text(w: Workload) -> str:
    """What the ranking optimizes, in one line."""
    slos = ", ".join(([f"TTFT ≤ {w.ttft_slo:g} s"] if w.ttft_slo else [])
                     + ([f"TPOT ≤ {w.tpot_slo * 1e3:g} ms"] if w.tpot_slo else []))
    return ("ranked by cost per million output tokens (price per GPU-hour × GPUs / throughput), lowest first, "
            f"over configurations that fit in memory{' and meet ' + slos if slos else ' (no latency target)'}; "
            "ties go to the higher throughput per GPU")


# ---- the search space ----------------------------------------------------------------------

def batch_grid(largest: int, steps_per_doubling: int = GRID_STEPS_PER_DOUBLING) -> np.ndarray:
    """Whole batches from 1 to `largest`, log-spaced, `largest` included; empty if largest < 1.

    >>> batch_grid(10).tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0]
    """
    if largest < 1:
        return np.zeros(0)
    k = np.arange(0, math.floor(math.log2(largest) * steps_per_doubling) + 1)
    grid = np.round(2.0 ** (k / steps_per_doubling))
    return np.unique(np.append(grid[grid <= largest], float(largest)))


@functools.lru_cache(maxsize=4096)
def _kept_batch_grid(largest: int) -> np.ndarray:
    """batch_grid(largest), read-only: the devices of a search share most of their largest batches."""
    grid = batch_grid(largest)
    grid.flags.writeable = False
    return grid


def tp_choices(model: ModelSpec, hw: Hardware, max_gpus: int) -> list[int]:
    """Tensor-parallel degrees: divide the heads, within one scale-up domain and max_gpus."""
    return [t for t in TP_CHOICES if t <= max_gpus and t <= hw.max_devices and model.num_heads % t == 0]


def pp_choices(model: ModelSpec, tp: int, max_gpus: int) -> list[int]:
    """Pipeline degrees beyond one stage: powers of two with tp·pp <= max_gpus and pp <= layers."""
    out, pp = [], 2
    while tp * pp <= max_gpus and pp <= model.num_layers:
        out.append(pp)
        pp *= 2
    return out


def ep_choices(model: ModelSpec, tp: int, hw: Hardware | None = None, max_gpus: int = 8) -> list[int]:
    """Expert-parallel degrees dividing the expert count; 1 if dense. Within the tp group (ep
    divides tp), or beyond it with data-parallel attention (ep a multiple of tp, all ep devices
    in one scale-up domain and within max_gpus)."""
    if not model.is_moe:
        return [1]
    domain = min(hw.max_devices if hw else max_gpus, max_gpus)
    return [e for e in EP_CHOICES if model.num_experts % e == 0 and (tp % e == 0 or (e % tp == 0 and e <= domain))]


def wide_ep_choices(model: ModelSpec, tp: int, max_gpus: int, redundant_experts: int = 0) -> list[int]:
    """Expert-parallel degrees beyond 8 (data-parallel attention over ep / tp replicas, across
    nodes or inside a rack-scale domain): within max_gpus, multiples of tp dividing the routed
    (+ redundant) experts."""
    if not model.is_moe:
        return []
    slots = model.num_experts + redundant_experts
    return [e for e in WIDE_EP_CHOICES if e <= max_gpus and e % tp == 0 and slots % e == 0]


def memory_needed(model: ModelSpec, hw: Hardware, context: float, *, weight_dtype: Any, kv_dtype: str,
                  tp: int, pp: int, rule: str = "free", fraction: float = KV_FRACTION) -> dict[str, float]:
    """Bytes per device a runtime needs to serve one sequence of `context` tokens.

    The footprint `memory.max_batch` sizes batches by: weights and a full prefill chunk's workspace,
    plus one sequence's KV cache and logits out of the KV pool, which takes `fraction` of what is
    left (rule `free`) or leaves 1 - `fraction` of the device unused (rule `total`). The workload fits
    iff total <= capacity (up to rounding).
    """
    weights, workspace, sequence = (float(x) for x in serving_footprint(
        model, context, weight_dtype=weight_dtype, kv_dtype=kv_dtype, tp=tp, pp=pp))
    if rule == "free":
        pool = sequence / fraction
    else:  # the device's unused share is part of what the sequence needs
        pool = sequence + (weights + workspace + sequence) * (1 / fraction - 1)
    return {"weights": weights, "workspace": workspace, "sequence": pool,
            "total": weights + workspace + pool, "capacity": usable_memory(hw)}


# ---- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """One configuration of one device (SPEC's ranking fields). Seconds, output tokens/s, USD,
    joules per output token, GB per GPU."""

    device: str
    gpus: int
    tp: int
    pp: int
    ep: int
    batch: int
    ttft_s: float
    tpot_s: float
    throughput_per_gpu_tok_s: float
    tokens_per_s_per_user: float
    price_per_gpu_hour: float
    cost_per_million_tokens: float
    energy_j_per_token: float
    memory_per_gpu_gb: float
    memory_capacity_gb: float
    energy_j_per_token_tdp: float = math.nan  # the ceiling at full board power
    error_band: dict[str, float] = field(default_factory=dict)  # deprecated: see interval
    interval: dict[str, Any] = field(default_factory=dict)  # {"level", metric: [low, high]} when calibrated
    dp: int = 1  # attention replicas (gpus = tp x dp x pp)

    @property
    def throughput_tok_s(self) -> float:
        """Output tokens per second of the whole instance (all its GPUs)."""
        return self.throughput_per_gpu_tok_s * self.gpus

    def layout(self) -> str:
        """'8 GPUs (tp 8, pp 1, ep 1)', with ', dp N' when attention runs in N replicas."""
        dp = f", dp {self.dp}" if self.dp > 1 else ""
        return f"{self.gpus} GPU{'s' if self.gpus > 1 else ''} (tp {self.tp}, pp {self.pp}, ep {self.ep}{dp})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["throughput_tok_s"] = self.throughput_tok_s
        if not self.error_band:
            del d["error_band"]
        if not self.interval:
            del d["interval"]
        return d


@dataclass(frozen=True)
class DevicePoints:
    """Every configuration of one device that fits in memory, as columns (one entry per point).

    Times in seconds, throughput in output tokens/s per GPU, memory in GB per GPU.
    """

    device: str
    price_per_gpu_hour: float
    tdp_w: float
    capacity_gb: float
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    dp: np.ndarray
    batch: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    throughput_per_gpu_tok_s: np.ndarray
    memory_per_gpu_gb: np.ndarray
    energy_j_per_token: np.ndarray  # joules per output token from the power model (energy.py)
    # Prediction intervals per point (nan when the estimate is uncalibrated) and their level.
    throughput_per_gpu_low: np.ndarray
    throughput_per_gpu_high: np.ndarray
    ttft_low: np.ndarray
    ttft_high: np.ndarray
    tpot_low: np.ndarray
    tpot_high: np.ndarray
    interval_level: float = 0.0
    error_band: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.batch.size)

    @property
    def gpus(self) -> np.ndarray:
        return self.tp * self.dp * self.pp  # dp: data-parallel attention replicas

    @property
    def throughput_tok_s(self) -> np.ndarray:
        return self.throughput_per_gpu_tok_s * self.gpus

    @property
    def tokens_per_s_per_user(self) -> np.ndarray:
        return 1.0 / self.tpot_s

    @property
    def cost_per_million_tokens(self) -> np.ndarray:
        """USD per million output tokens: price per GPU-hour × GPUs / (3600 × system tokens/s) × 1e6."""
        return self.price_per_gpu_hour * self.gpus / (3600.0 * self.throughput_tok_s) * 1e6

    @property
    def energy_j_per_token_tdp(self) -> np.ndarray:
        """The ceiling: joules per output token at full board power, TDP × GPUs / system tokens/s."""
        return self.tdp_w * self.gpus / self.throughput_tok_s

    def meets(self, ttft_slo: float | None, tpot_slo: float | None) -> np.ndarray:
        """Which points meet the SLOs (None: no target)."""
        ok = np.ones(len(self), dtype=bool)
        if ttft_slo is not None:
            ok &= self.ttft_s <= ttft_slo
        if tpot_slo is not None:
            ok &= self.tpot_s <= tpot_slo
        return ok

    def slo_ratio(self, ttft_slo: float | None, tpot_slo: float | None) -> np.ndarray:
        """The worst of value / target over the SLOs given (<= 1: all met)."""
        r = np.zeros(len(self))
        if ttft_slo is not None:
            r = np.maximum(r, self.ttft_s / ttft_slo)
        if tpot_slo is not None:
            r = np.maximum(r, self.tpot_s / tpot_slo)
        return r

    def best(self, mask: np.ndarray) -> int:
        """Index of the cheapest point per token among `mask`; ties: more tokens/s per GPU, fewer
        GPUs, smaller batch. -1 if mask is empty."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return -1
        order = np.lexsort((self.batch[idx], self.gpus[idx], -self.throughput_per_gpu_tok_s[idx],
                            self.cost_per_million_tokens[idx]))
        return int(idx[order[0]])

    def subset(self, mask: np.ndarray) -> DevicePoints:
        cols = {k: getattr(self, k)[mask] for k in _COLUMNS}
        return DevicePoints(self.device, self.price_per_gpu_hour, self.tdp_w, self.capacity_gb,
                            interval_level=self.interval_level, error_band=self.error_band, **cols)

    def choice(self, i: int) -> Choice:
        return Choice(
            device=self.device, gpus=int(self.gpus[i]), tp=int(self.tp[i]), pp=int(self.pp[i]),
            ep=int(self.ep[i]), batch=int(self.batch[i]), ttft_s=float(self.ttft_s[i]),
            tpot_s=float(self.tpot_s[i]), throughput_per_gpu_tok_s=float(self.throughput_per_gpu_tok_s[i]),
            tokens_per_s_per_user=float(self.tokens_per_s_per_user[i]),
            price_per_gpu_hour=self.price_per_gpu_hour,
            cost_per_million_tokens=float(self.cost_per_million_tokens[i]),
            energy_j_per_token=float(self.energy_j_per_token[i]),
            energy_j_per_token_tdp=float(self.energy_j_per_token_tdp[i]),
            memory_per_gpu_gb=float(self.memory_per_gpu_gb[i]), memory_capacity_gb=self.capacity_gb,
            error_band=dict(self.error_band), interval=self._interval(i), dp=int(self.dp[i]),
        )

    def _interval(self, i: int) -> dict[str, Any]:
        if not self.interval_level or not np.isfinite(self.throughput_per_gpu_low[i]):
            return {}
        return {"level": self.interval_level,
                "throughput_per_gpu_tok_s": [float(self.throughput_per_gpu_low[i]), float(self.throughput_per_gpu_high[i])],
                "ttft_s": [float(self.ttft_low[i]), float(self.ttft_high[i])],
                "tpot_s": [float(self.tpot_low[i]), float(self.tpot_high[i])]}


_COLUMNS = ("tp", "pp", "ep", "dp", "batch", "ttft_s", "tpot_s", "throughput_per_gpu_tok_s", "memory_per_gpu_gb",
            "energy_j_per_token",
            "throughput_per_gpu_low", "throughput_per_gpu_high", "ttft_low", "ttft_high", "tpot_low", "tpot_high")


@dataclass(frozen=True)
class Exclusion:
    """A device that has no feasible configuration, and why. For an SLO miss, `closest` is the
    configuration nearest the targets and `slo_miss` how far over it is (0.25: 25% over)."""

    device: str
    reason: str
    closest: Choice | None = None
    slo_miss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"device": self.device, "reason": self.reason}
        if self.closest is not None:
            d["closest"] = self.closest.to_dict()
            d["slo_miss"] = self.slo_miss
        return d


@dataclass(frozen=True)
class Workload:
    """The question asked: model, lengths, targets and precisions (validated)."""

    model: ModelSpec
    input_len: int
    output_len: int
    ttft_slo: float | None
    tpot_slo: float | None
    max_gpus: int
    weight_dtype: WeightPrecision  # the format of each module group's weights
    kv_dtype: str
    calibrated: bool = True  # False: the plain roofline (an upper bound on speed)
    fixed: dict[str, int] = field(default_factory=dict)  # degrees the search keeps: tp, pp, ep, dp
    moe_imbalance: float | None = None  # None: the published default (moe_balance.py)
    redundant_experts: int = 0
    images: int = 0  # images per request (vision-language models)
    image_size: tuple[int, int] | None = None  # (width, height) pixels; None: the default
    widen_to: int = 0  # > max_gpus: a device where nothing fits is searched again up to this many GPUs

    @property
    def gpu_limit(self) -> str:
        """The GPUs one instance may use, in words (the widened search included)."""
        wide = (f" (≤ {self.widen_to} with wide expert parallelism on devices where nothing fits within "
                f"{self.max_gpus})") if self.widen_to > self.max_gpus else ""
        return f"≤ {self.max_gpus} GPUs{wide}"

    @property
    def image_tokens(self) -> int:
        """Prompt tokens the images add to each request."""
        v = self.model.vision
        return self.images * v.layout(self.image_size).tokens if self.images and v else 0

    def to_dict(self) -> dict[str, Any]:
        d = {"model": self.model.id, "input_len": self.input_len, "output_len": self.output_len,
             "ttft_slo_s": self.ttft_slo, "tpot_slo_s": self.tpot_slo, "max_gpus": self.max_gpus, "wide_ep_up_to": self.widen_to or None,
             "weight_dtype": self.weight_dtype.label, "kv_dtype": self.kv_dtype, "mode": "continuous"}
        if self.fixed:
            d["fixed"] = dict(self.fixed)
        if self.model.is_moe:
            d.update(moe_imbalance=self.moe_imbalance, redundant_experts=self.redundant_experts)
        if self.images:
            d.update(images=self.images, image_tokens=self.image_tokens)
        return d


@dataclass(frozen=True)
class DeviceSearch:
    """Everything evaluated on one device: its fitting points, or why none."""

    device: str
    points: DevicePoints | None
    reason: str = ""  # why nothing fits or runs


@dataclass(frozen=True)
class Recommendation:
    """`ranking`: the best feasible configuration per device, cheapest per token first;
    `excluded`: devices with none, and why."""

    workload: Workload
    ranking: list[Choice]
    excluded: list[Exclusion]
    searches: list[DeviceSearch]

    def closest(self) -> list[Exclusion]:
        """Devices that fit but miss the SLOs, nearest first."""
        return sorted((e for e in self.excluded if e.closest is not None), key=lambda e: e.slo_miss or 0.0)

    def pareto(self) -> Pareto:
        """The throughput-latency frontier of the configurations this search evaluated."""
        return _pareto_from(self.workload, self.searches)

    def to_dict(self) -> dict[str, Any]:
        return {**self.workload.to_dict(), "ranking": [c.to_dict() for c in self.ranking],
                "excluded": [e.to_dict() for e in self.excluded]}


# ---- validation ----------------------------------------------------------------------------

def _whole(name: str, value: Any, upper: float) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a whole number, got {show(value)}")
    if value > upper:  # first: an int such as 10**400 has no float for isfinite
        raise InputError(f"{name} = {show(value)} is absurd (allowed up to {upper:g})")
    if not math.isfinite(value) or value < 1 or value != round(value):
        raise InputError(f"{name} must be a whole number >= 1, got {show(value)}")
    return int(value)


def _slo(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number of seconds, got {value!r}")
    require_positive(name, float(value), upper=1e6)
    return float(value)


def resolve_devices(devices: Any) -> list[Hardware]:
    """None or 'all': the whole catalog; else names (a list, or one comma-separated string) or
    Hardware objects. Unknown names raise InputError; duplicates are dropped."""
    if devices is None or (isinstance(devices, str) and devices.strip().lower() == "all"):
        out = list_hardware()
        if not out:
            raise InputError("the device catalog is empty; name devices explicitly")
        return out
    if isinstance(devices, (str, Hardware)):
        devices = [devices]
    if not isinstance(devices, Iterable):
        raise InputError(f"devices must be a list of device names, got {devices!r}")
    names: list[Any] = []
    for d in devices:
        if isinstance(d, str):
            parts = [p.strip() for p in d.split(",")]
            if any(not p for p in parts):
                raise InputError(f"devices: empty name in {d!r}")
            names += parts
        else:
            names.append(d)
    if not names:
        raise InputError("devices: name at least one device (or 'all')")
    out, seen = [], set()
    for n in names:
        hw = load_hardware(n)
        if hw.id not in seen:
            seen.add(hw.id)
            out.append(hw)
    return out


def resolve_prices(prices: Mapping[str, Any] | None, hws: list[Hardware]) -> dict[str, float]:
    """Price overrides, USD per GPU-hour, keyed by canonical device id. Names are matched against
    the devices searched first (id or alias), then the catalog."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise InputError(f"prices must map device names to USD per GPU-hour, got {prices!r}")
    local = {hw.id.lower(): hw.id for hw in hws}
    for hw in hws:
        for a in hw.aliases:
            local.setdefault(a.lower(), hw.id)
    out: dict[str, float] = {}
    for name, value in prices.items():
        key = str(name).strip()
        dev = local.get(key.lower()) or load_hardware(key).id
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputError(f"price for {key}: must be a number of USD per GPU-hour, got {value!r}")
        require_positive(f"price for {key} (USD per GPU-hour)", float(value), upper=1e4)  # NaN, inf too
        out[dev] = float(value)
    return out


def make_workload(model: Any, input_len: Any, output_len: Any, *, ttft_slo: Any = None, tpot_slo: Any = None,
                  max_gpus: Any = None, weight_dtype: Any = None, kv_dtype: str | None = None, tp: Any = None,
                  pp: Any = None, ep: Any = None, dp: Any = None, moe_imbalance: Any = None,
                  redundant_experts: Any = 0, images: Any = 0, image_size: Any = None) -> Workload:
    """The validated question. max_gpus None: DEFAULT_MAX_GPUS, widened for a MoE model with no
    fixed degree up to WIDE_EP_AUTO_GPUS on devices where nothing fits within it."""
    m = load_model(model)
    n_img = check_images(images)
    if n_img.ndim or (n_img and m.vision is None):
        raise InputError(f"images = {images!r}: " + ("one whole number per workload" if n_img.ndim else
                         f"{m.id} has no vision tower this tool models (a text-only model)"))
    fixed = {k: _whole(k, v, MAX_GPUS_LIMIT) for k, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp))
             if v is not None}
    if "tp" in fixed and m.num_heads % fixed["tp"]:
        raise InputError(f"tp = {fixed['tp']} does not divide the {m.num_heads} attention heads of {m.id}")
    # A fixed layout must be possible for the model at all (devices aside), else say why now.
    resolve_parallelism(m, fixed.get("tp", 1), fixed.get("pp", 1), fixed.get("ep"),
                        fixed.get("dp"), redundant_experts)
    need = fixed.get("tp", 1) * fixed.get("pp", 1) * max(fixed.get("dp", 1), fixed.get("ep", 1) // fixed.get("tp", 1))
    widen_to = WIDE_EP_AUTO_GPUS if max_gpus is None and m.is_moe and not fixed else 0
    max_gpus = _whole("max_gpus", DEFAULT_MAX_GPUS if max_gpus is None else max_gpus, MAX_GPUS_LIMIT)
    if need > max_gpus:
        raise InputError(f"the fixed layout ({', '.join(f'{k} {v}' for k, v in fixed.items())}) needs {need} GPUs; "
                         f"max_gpus is {max_gpus} (raise --max-gpus)")
    return Workload(
        model=m,
        input_len=_whole("input_len", input_len, ABSURD_LENGTH),
        output_len=_whole("output_len", output_len, ABSURD_LENGTH),
        ttft_slo=_slo("ttft_slo", ttft_slo),
        tpot_slo=_slo("tpot_slo", tpot_slo),
        max_gpus=max_gpus,
        weight_dtype=m.weight_precision(weight_dtype),
        kv_dtype=normalize(kv_dtype or "fp16", field="kv_dtype"),
        fixed=fixed, moe_imbalance=check_imbalance(moe_imbalance), redundant_experts=int(redundant_experts),
        images=int(n_img),
        image_size=check_image_size(image_size) if image_size is not None else None,
        widen_to=widen_to,
    )


# ---- the search ----------------------------------------------------------------------------

def search_device(w: Workload, hw: Hardware, *, price: float, calibration: Calibration,
                  max_batch_size: int = MAX_BATCH, runtime: Any = None) -> DeviceSearch:
    """Evaluate every configuration of one device (see the module docstring for the space)."""
    prof = calibration.runtime(runtime)
    return _evaluate(w, hw, _plan(w, hw, prof, max_batch_size), price=price, calibration=calibration, prof=prof)


Layout = tuple[int, int, int, int]  # tp, pp, ep, dp


@dataclass(frozen=True)
class _Plan:
    """One device's search space: the (tp, pp) layouts tried, and the batch grid of each
    (tp, pp, ep, dp) configuration that holds at least one sequence."""

    layouts: list[tuple[int, int]]
    grids: dict[Layout, np.ndarray]


def _plan(w: Workload, hw: Hardware, prof: RuntimeProfile, max_batch_size: int,
          footprints: dict[tuple[int, int, int], tuple] | None = None) -> _Plan:
    """footprints: `serving_footprint` by (tp, pp, ep), shared by the devices of one search (it does
    not depend on the device)."""
    m, context = w.model, prof.kv_tokens(w.input_len + w.image_tokens, w.output_len)
    footprints = {} if footprints is None else footprints
    per_replica: dict[tuple[int, int, int], int] = {}

    def largest(tp: int, pp: int, ep: int = 1, dp: int = 1) -> int:
        """Largest batch of the whole instance: each attention replica's, up to the batch limit."""
        if (tp, pp, ep) not in per_replica:
            if (tp, pp, ep) not in footprints:
                footprints[tp, pp, ep] = serving_footprint(m, context, weight_dtype=w.weight_dtype,
                                                           kv_dtype=w.kv_dtype, tp=tp, pp=pp, ep=ep,
                                                           redundant_experts=w.redundant_experts)
            per_replica[tp, pp, ep] = int(min(batch_in_memory(
                hw, footprints[tp, pp, ep], kv_fraction=prof.memory_fraction, rule=prof.memory_rule,
                limit=max_batch_size), max_batch_size))
        return per_replica[tp, pp, ep] * dp

    fixed = w.fixed
    tps = [fixed["tp"]] if "tp" in fixed else tp_choices(m, hw, w.max_gpus)
    if "pp" in fixed:
        layouts = {(tp, fixed["pp"]): 1 for tp in tps}
    else:
        layouts = {(tp, 1): largest(tp, 1) for tp in tps}
        if not any(layouts.values()):  # no single scale-up domain holds it: pipeline over several
            layouts.update({(tp, pp): largest(tp, pp) for tp in tps for pp in pp_choices(m, tp, w.max_gpus)})
    grids = {}
    for tp, pp in layouts:
        for ep, dp in _expert_layouts(w, hw, tp, pp, wide=tp in (min(tps), max(tps))):
            batches = _kept_batch_grid(largest(tp, pp, ep, dp))
            if batches.size:
                grids[tp, pp, ep, dp] = batches
    return _Plan(list(layouts), grids)


def _shared_grids(plans: Iterable[_Plan]) -> dict[Layout, np.ndarray]:
    """Per configuration, the union of the devices' batch grids.

    Each device's grid is a log grid cut at its own largest batch; evaluated over the union, every
    device that shares its GEMM rates shares the configuration's operator lists (built once
    inside `reuse_passes()`), and each point's values are computed from its own inputs alone, so
    a device's points are those its own grid gives.
    """
    grids: dict[Layout, list[np.ndarray]] = {}
    for plan in plans:
        for key, batches in plan.grids.items():
            grids.setdefault(key, []).append(batches)
    return {key: np.unique(np.concatenate(gs)) for key, gs in grids.items()}


def _evaluate(w: Workload, hw: Hardware, plan: _Plan, *, price: float, calibration: Calibration,
              prof: RuntimeProfile, shared: Mapping[Layout, np.ndarray] | None = None) -> DeviceSearch:
    """One device's points: each configuration of its plan evaluated in one continuous-batching
    estimate, over its own batch grid or over the `shared` grid holding it."""
    results = {}
    for key, batches in plan.grids.items():
        grid = shared[key] if shared else batches
        results[key] = _points(_estimate(w, hw, key, grid, calibration, prof), grid, batches)
    return _device_search(w, hw, plan, price, results, prof)


def _estimate(w: Workload, hw: Hardware, layout: Layout, grid: np.ndarray, calibration: Calibration,
              prof: RuntimeProfile) -> Estimate:
    """One configuration in continuous batching over a batch grid; on a device stack, over a
    (batch, 1) column so that the members take the last axis."""
    tp, pp, ep, dp = layout
    return estimate(w.model, hw, batch=grid[:, None] if isinstance(hw, DeviceStack) else grid,
                    input_len=w.input_len, output_len=w.output_len, tp=tp, pp=pp, ep=ep, dp=dp,
                    weight_dtype=w.weight_dtype, kv_dtype=w.kv_dtype, mode="continuous", calibration=calibration,
                    runtime=prof, moe_imbalance=w.moe_imbalance, redundant_experts=w.redundant_experts if ep > 1 else 0,
                    images=w.images, image_size=w.image_size, with_warnings=False)


_Points = tuple[dict[str, np.ndarray], dict[str, float], float]  # columns, error band, interval level


def _result_columns(r: Estimate) -> dict[str, np.ndarray]:
    """The values a search keeps of an estimate, by point column name, plus `fits`; a device
    stack's with the members first (row j: member j)."""
    cols = {"fits": r.memory.fits, "batch": r.batch, "ttft_s": r.ttft_s, "tpot_s": r.tpot_s,
            "throughput_per_gpu_tok_s": r.throughput_per_gpu_tok_s, "memory_per_gpu_gb": r.memory.total / GB,
            "energy_j_per_token": r.energy_j_per_token}
    for key, name in (("throughput_per_gpu_tok_s", "throughput_per_gpu"), ("ttft_s", "ttft"), ("tpot_s", "tpot")):
        lo, hi = r.interval.get(key, (np.full(r.batch.shape, np.nan),) * 2)
        cols[f"{name}_low"], cols[f"{name}_high"] = lo, hi
    return {k: np.broadcast_to(v, r.batch.shape).T for k, v in cols.items()}


def _points(r: Estimate, grid: np.ndarray, batches: np.ndarray, columns: dict[str, np.ndarray] | None = None,
            member: int | None = None) -> _Points:
    """The fitting points of one configuration: the device's own batches out of the evaluated grid.
    On a device stack, member j's row of its `_result_columns`."""
    columns = _result_columns(r) if columns is None else columns
    rows = {k: v[member] if member is not None else v for k, v in columns.items()}
    own = np.searchsorted(grid, batches)  # this device's grid points within the evaluated one
    keep = own[rows.pop("fits")[own]]
    return {k: v[keep] for k, v in rows.items()}, dict(r.error_band), float(r.interval.get("level", 0.0))


def _device_search(w: Workload, hw: Hardware, plan: _Plan, price: float, results: Mapping[Layout, _Points],
                   prof: RuntimeProfile) -> DeviceSearch:
    """A device's DeviceSearch from the points of each configuration of its plan, in plan order."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
    band: dict[str, float] = {}
    level = 0.0
    for key in plan.grids:
        values, band, level = results[key]
        n = values["batch"].size
        for name, degree in zip(("tp", "pp", "ep", "dp"), key, strict=True):
            cols[name].append(np.full(n, degree))
        for name, v in values.items():
            cols[name].append(v)
    points = DevicePoints(hw.id, price, hw.tdp_w, hw.memory_bytes / GB, error_band=band, interval_level=level,
                          **{k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()})
    if len(points):
        return DeviceSearch(hw.id, points)
    context = prof.kv_tokens(w.input_len + w.image_tokens, w.output_len)
    return DeviceSearch(hw.id, None, _does_not_fit(w, hw, plan.layouts, context, prof))


def _rates_key(model: ModelSpec, weights: WeightPrecision, hw: Hardware) -> tuple[tuple[str, str], ...]:
    """What the devices of one stack must share: the GEMM rate of each module group, fp16 and bf16
    as one where the device runs both at the same peak (a stack times them at each member's own)."""
    rates = gemm_rates(model, weights, hw)
    try:  # a device with one of the two runs the other at its rate (roofline.device_peak)
        twins = device_peak(hw, "fp16") == device_peak(hw, "bf16")
    except InputError:
        twins = False
    if twins:
        rates = {g: "fp16" if r == "bf16" else r for g, r in rates.items()}
    return tuple(sorted(rates.items()))


def _evaluate_stacked(w: Workload, hws: list[Hardware], plans: list[_Plan | str], cal: Calibration,
                      prof: RuntimeProfile, shared: Mapping[Layout, np.ndarray]
                      ) -> dict[int, dict[Layout, _Points]]:
    """Every device's configurations, each configuration evaluated once for all the devices that
    search it at the same GEMM rates (a device stack, device_stack.py): their points by device
    index. A device left out (its rates or a stacked estimate raised an error) is searched alone."""
    weights = w.model.weight_precision(w.weight_dtype)
    by_rates: dict[tuple[Layout, tuple], list[int]] = {}
    for i, (hw, plan) in enumerate(zip(hws, plans, strict=True)):
        if not isinstance(plan, _Plan):
            continue
        try:
            rates = _rates_key(w.model, weights, hw)
        except InputError:
            continue
        for key in plan.grids:
            by_rates.setdefault((key, rates), []).append(i)
    out: dict[int, dict[Layout, _Points]] = {}
    failed: set[int] = set()
    for (key, _), members in by_rates.items():
        grid = shared[key]
        try:
            r = _estimate(w, stack_devices([hws[i] for i in members]), key, grid, cal, prof)
        except InputError:  # searched alone, each device gets its own reason
            failed.update(members)
            continue
        columns = _result_columns(r)
        for j, i in enumerate(members):
            out.setdefault(i, {})[key] = _points(r, grid, plans[i].grids[key], columns, j)  # type: ignore[union-attr]
    return {i: v for i, v in out.items() if i not in failed and len(v) == len(plans[i].grids)}  # type: ignore[union-attr]


def _expert_layouts(w: Workload, hw: Hardware, tp: int, pp: int, wide: bool) -> list[tuple[int, int]]:
    """(ep, dp) pairs searched at this (tp, pp): the fixed ones, else expert parallelism inside one
    scale-up domain and, at one stage and when `wide`, beyond it. Impossible layouts and layouts
    over max_gpus are left out."""
    m, fixed = w.model, w.fixed
    if "dp" in fixed:
        pairs = [(fixed.get("ep", tp * fixed["dp"] if m.is_moe else 1), fixed["dp"])]
    elif "ep" in fixed:
        pairs = [(fixed["ep"], fixed["ep"] // tp if fixed["ep"] > tp else 1)]
    else:
        eps = ep_choices(m, tp, hw, w.max_gpus // pp)
        if pp == 1 and wide:
            eps = eps + wide_ep_choices(m, tp, w.max_gpus, w.redundant_experts)
        pairs = [(ep, ep // tp if ep > tp else 1) for ep in eps]
    out = []
    for ep, dp in pairs:
        if tp * dp * pp > w.max_gpus:
            continue
        try:
            resolve_parallelism(m, tp, pp, ep, dp, w.redundant_experts if ep > 1 else 0)
        except InputError:
            continue
        out.append((ep, dp))
    return out


def _does_not_fit(w: Workload, hw: Hardware, layouts: list[tuple[int, int]], context: float,
                  prof: RuntimeProfile) -> str:
    """The reason a device holds no configuration, citing the layout that needs least memory."""
    if not layouts:
        return f"no tensor-parallel degree in {TP_CHOICES} divides the {w.model.num_heads} heads"
    needs = [(memory_needed(w.model, hw, context, weight_dtype=w.weight_dtype, kv_dtype=w.kv_dtype,
                            tp=tp, pp=pp, rule=prof.memory_rule, fraction=prof.memory_fraction), tp, pp)
             for tp, pp in layouts]
    need, tp, pp = min(needs, key=lambda x: (x[0]["total"], x[1] * x[2]))
    gpus = tp * pp
    limits = f"at most {w.max_gpus} GPUs, {hw.max_devices} per scale-up domain"
    if w.model.is_moe and w.max_gpus <= max(EP_CHOICES):
        limits += "; raise --max-gpus (e.g. 32) to search wide expert parallelism"
    return (f"does not fit: one sequence holding {context:,.0f} tokens of KV cache needs {need['total'] / GB:.1f} GB per GPU even on "
            f"{gpus} GPU{'s' if gpus > 1 else ''} (tp {tp}, pp {pp}: {need['weights'] / GB:.1f} GB weights + "
            f"{need['sequence'] / GB:.1f} GB KV cache + {need['workspace'] / GB:.1f} GB workspace), "
            f"{need['capacity'] / GB:.1f} GB available ({limits})")


def _slo_text(c: Choice, w: Workload) -> str:
    parts = []
    for name, value, slo, scale, unit in (("TTFT", c.ttft_s, w.ttft_slo, 1.0, "s"),
                                          ("TPOT", c.tpot_s, w.tpot_slo, 1e3, "ms")):
        if slo is None:
            continue
        if value <= slo:
            parts.append(f"{name} {value * scale:.3g} {unit} meets {slo * scale:.3g} {unit}")
        else:
            parts.append(f"{name} {value * scale:.3g} {unit} > {slo * scale:.3g} {unit} (+{(value / slo - 1) * 100:.0f}%)")
    return ", ".join(parts)


def _search(model: Any, input_len: Any, output_len: Any, devices: Any, *, ttft_slo: Any, tpot_slo: Any,
            max_gpus: Any, prices: Any, weight_dtype: Any, kv_dtype: str | None, calibration: Any,
            max_batch_size: int, runtime: Any = None, layout: Mapping[str, Any] | None = None,
            images: Any = 0, image_size: Any = None) -> tuple[Workload, list[DeviceSearch]]:
    w = make_workload(model, input_len, output_len, ttft_slo=ttft_slo, tpot_slo=tpot_slo, max_gpus=max_gpus,
                      weight_dtype=weight_dtype, kv_dtype=kv_dtype, images=images, image_size=image_size,
                      **(layout or {}))
    hws = resolve_devices(devices)
    price = resolve_prices(prices, hws)
    cal = load_calibration(calibration)
    cal.runtime(runtime)  # an unknown stack is an error before any device is searched
    w = replace(w, calibrated=cal.source != "plain roofline")
    if not 1 <= max_batch_size <= MAX_BATCH * 64:
        raise InputError(f"max_batch_size must be from 1 to {MAX_BATCH * 64}, got {max_batch_size!r}")
    # Devices with the same rates share their passes (a lone prompt's prefill is the same pass on each),
    # and over the union of the devices' batch grids, every configuration's passes.
    prof = cal.runtime(runtime)
    footprints: dict[tuple[int, int, int], tuple] = {}
    plans = [_plan_one(w, hw, prof, max_batch_size, footprints) for hw in hws]
    # A MoE model that fits nowhere on a device within max_gpus, when the limit was not given:
    # that device is searched again with wide expert parallelism (the model needs it).
    # The widened search is the DeepSeek-style layout only: attention data-parallel (tp 1, one
    # stage) with the experts over every device, which keeps it to a handful of configurations.
    wide = replace(w, max_gpus=w.widen_to, widen_to=0, fixed={"tp": 1, "pp": 1}) if w.widen_to > w.max_gpus else None
    searched = [w] * len(hws)
    for i, (hw, plan) in enumerate(zip(hws, plans, strict=True)):
        if wide is not None and isinstance(plan, _Plan) and not plan.grids:
            wider = _plan_one(wide, hw, prof, max_batch_size, footprints)
            if isinstance(wider, _Plan) and wider.grids:
                plans[i], searched[i] = wider, wide
    shared = _shared_grids(p for p in plans if isinstance(p, _Plan))
    with reuse_passes():
        stacked = _evaluate_stacked(w, hws, plans, cal, prof, shared)
        return w, [_device_search(wd, hw, plan, price.get(hw.id, hw.price_per_hour_usd), stacked[i], prof)
                   if i in stacked and isinstance(plan, _Plan) else _search_one(wd, hw, plan, price, cal, prof, shared)
                   for i, (wd, hw, plan) in enumerate(zip(searched, hws, plans, strict=True))]


def _plan_one(w: Workload, hw: Hardware, prof: RuntimeProfile, max_batch_size: int,
              footprints: dict[tuple[int, int, int], tuple]) -> _Plan | str:
    try:
        return _plan(w, hw, prof, max_batch_size, footprints)
    except InputError as e:  # a device that cannot run this model at all (e.g. no usable precision)
        return f"cannot run: {e}"


def _search_one(w: Workload, hw: Hardware, plan: _Plan | str, price: Mapping[str, float], cal: Calibration,
                prof: RuntimeProfile, shared: Mapping[Layout, np.ndarray]) -> DeviceSearch:
    if isinstance(plan, str):
        return DeviceSearch(hw.id, None, plan)
    try:
        return _evaluate(w, hw, plan, price=price.get(hw.id, hw.price_per_hour_usd), calibration=cal, prof=prof,
                         shared=shared)
    except InputError as e:
        return DeviceSearch(hw.id, None, f"cannot run: {e}")


def recommend(model: Any, input_len: Any, output_len: Any, devices: Any = None, ttft_slo: float | None = None,
              tpot_slo: float | None = None, max_gpus: int | None = None, prices: Mapping[str, float] | None = None,
              weight_dtype: Any = None, kv_dtype: str | None = None,
              calibration: str | Calibration | None = "default", *, max_batch_size: int = MAX_BATCH,
              runtime: Any = None, tp: int | None = None, pp: int | None = None, ep: int | None = None,
              dp: int | None = None, moe_imbalance: float | None = None,
              redundant_experts: int = 0, images: Any = 0,
              image_size: Any = None) -> Recommendation:
    """The cheapest configuration per device that fits and meets the SLOs, best first.

    devices: names or Hardware objects (None or 'all': the whole catalog); SLOs in seconds;
    prices: USD per GPU-hour by device name, overriding the catalog. Returns a Recommendation
    whose `ranking` holds Choices (seconds, output tokens/s, USD per million output tokens,
    joules per output token) and whose `excluded` says why the other devices have none.
    tp, pp, ep, dp: fix that degree (the search covers the others; see the module docstring);
    moe_imbalance, redundant_experts: as in estimate. images: per request, of image_size pixels
    (vision-language models: their tokens lengthen the prompt, their encoder pass the prefill).
    """
    layout = dict(tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    w, searches = _search(model, input_len, output_len, devices, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                          max_gpus=max_gpus, prices=prices, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          calibration=calibration, max_batch_size=max_batch_size, runtime=runtime, layout=layout,
                          images=images, image_size=image_size)
    ranking: list[Choice] = []
    excluded: list[Exclusion] = []
    for s in searches:
        if s.points is None:
            excluded.append(Exclusion(s.device, s.reason))
            continue
        ok = s.points.meets(w.ttft_slo, w.tpot_slo)
        if ok.any():
            ranking.append(s.points.choice(s.points.best(ok)))
            continue
        ratio = s.points.slo_ratio(w.ttft_slo, w.tpot_slo)
        nearest = ratio <= ratio.min()
        c = s.points.choice(s.points.best(nearest))
        excluded.append(Exclusion(s.device, f"misses the SLO: closest is {c.layout()} at batch {c.batch}: "
                                            f"{_slo_text(c, w)}", closest=c, slo_miss=float(ratio.min() - 1)))
    ranking.sort(key=lambda c: (c.cost_per_million_tokens, -c.throughput_per_gpu_tok_s, c.device))
    return Recommendation(w, ranking, excluded, searches)


# ---- Pareto frontier -----------------------------------------------------------------------

def frontier_mask(x, y) -> np.ndarray:
    """Points no other point beats on both axes (higher is better on both); exact duplicates
    count once.

    >>> frontier_mask([1, 2, 3, 2], [3, 2, 1, 1]).tolist()
    [True, True, True, False]
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.lexsort((-y, -x))  # x descending, then y descending
    ys = y[order]
    before = np.maximum.accumulate(np.concatenate([[-np.inf], ys[:-1]])) if ys.size else ys
    mask = np.zeros(x.size, dtype=bool)
    mask[order] = ys > before
    return mask


@dataclass(frozen=True)
class Pareto:
    """Per device, the fitting configurations as (tokens/s per user, output tokens/s per GPU)
    points and their frontier; `overall` is the frontier across devices as (device, index)."""

    workload: Workload
    points: dict[str, DevicePoints]
    frontiers: dict[str, np.ndarray]  # boolean mask over each device's points
    overall: list[tuple[str, int]]  # sorted by tokens/s per user
    excluded: list[Exclusion]

    def frontier(self, device: str) -> list[Choice]:
        """A device's frontier, slowest per user (highest throughput) first."""
        p = self.points[device]
        idx = np.flatnonzero(self.frontiers[device])
        return [p.choice(int(i)) for i in idx[np.argsort(p.tokens_per_s_per_user[idx])]]

    def overall_frontier(self) -> list[Choice]:
        return [self.points[d].choice(i) for d, i in self.overall]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.workload.to_dict(),
            "x": "tokens_per_s_per_user", "y": "throughput_per_gpu_tok_s",
            "devices": [{"device": d, "points": [p.choice(i).to_dict() for i in range(len(p))],
                         "frontier": [c.to_dict() for c in self.frontier(d)]} for d, p in self.points.items()],
            "frontier": [c.to_dict() for c in self.overall_frontier()],
            "excluded": [e.to_dict() for e in self.excluded],
        }


def _pareto_from(w: Workload, searches: list[DeviceSearch]) -> Pareto:
    points: dict[str, DevicePoints] = {}
    excluded: list[Exclusion] = []
    for s in searches:
        if s.points is None:
            excluded.append(Exclusion(s.device, s.reason))
            continue
        p = s.points.subset(s.points.meets(w.ttft_slo, w.tpot_slo))
        if len(p):
            points[s.device] = p
        else:
            excluded.append(Exclusion(s.device, "misses the SLO at every configuration"))
    frontiers = {d: frontier_mask(p.tokens_per_s_per_user, p.throughput_per_gpu_tok_s) for d, p in points.items()}
    owners = [(d, i) for d, p in points.items() for i in range(len(p))]
    x = np.concatenate([p.tokens_per_s_per_user for p in points.values()]) if points else np.zeros(0)
    y = np.concatenate([p.throughput_per_gpu_tok_s for p in points.values()]) if points else np.zeros(0)
    on = np.flatnonzero(frontier_mask(x, y))
    overall = [owners[i] for i in on[np.argsort(x[on])]]
    return Pareto(w, points, frontiers, overall, excluded)


def pareto(model: Any, input_len: Any, output_len: Any, devices: Any = None, *, ttft_slo: float | None = None,
           tpot_slo: float | None = None, max_gpus: int | None = None, prices: Mapping[str, float] | None = None,
           weight_dtype: Any = None, kv_dtype: str | None = None,
           calibration: str | Calibration | None = "default", max_batch_size: int = MAX_BATCH,
           runtime: Any = None, tp: int | None = None, pp: int | None = None, ep: int | None = None,
           dp: int | None = None, moe_imbalance: float | None = None, redundant_experts: int = 0) -> Pareto:
    """Throughput per GPU against tokens/s per user over batch and parallelism, per device, with
    the frontier per device and across devices. Points that miss a given SLO are left out."""
    layout = dict(tp=tp, pp=pp, ep=ep, dp=dp, moe_imbalance=moe_imbalance, redundant_experts=redundant_experts)
    w, searches = _search(model, input_len, output_len, devices, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                          max_gpus=max_gpus, prices=prices, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                          calibration=calibration, max_batch_size=max_batch_size, runtime=runtime, layout=layout)
    return _pareto_from(w, searches)
