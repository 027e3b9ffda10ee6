"""Load imbalance of expert parallelism: how many routed-expert rows the busiest device computes,
relative to the mean over the ep devices that hold the experts.

A router does not spread tokens evenly: some experts are hot, and the device holding them
computes (and receives by all-to-all) more rows than the mean while the others wait. The factor
here is the hottest device's rows over the mean (1 = perfectly balanced, ep = every row on one
device).

Default, from published routing statistics. TensorRT-LLM's wide-EP load-balancer guide reports
DeepSeek-R1 on 32-way expert parallelism (256 routed experts, 8 per device): on average the
hottest rank receives 1.56 times more routed tokens than the mean, i.e. a factor 2.56; with 32
redundant experts placed by EPLB on 36-way EP (8 slots per device) the excess falls to 0.115
(https://github.com/NVIDIA/TensorRT-LLM/blob/main/examples/wide_ep/ep_load_balancer/README.md).

Rule for other layouts: a device holds E/ep experts whose loads vary independently, so its load
varies by a relative standard deviation proportional to sqrt(ep/E); the largest of ep such loads
lies about sqrt(2 ln ep) standard deviations above the mean (the extreme of ep near-normal
draws). The excess is therefore 1.56 × sqrt((ep/E)·ln ep / ((32/256)·ln 32)), exactly the
published figure at ep 32 of 256 experts. It is fitted on DeepSeek-R1's fine-grained experts and
applied only to models with at least FINE_GRAINED_EXPERTS routed experts. For a model with a few
large experts (Mixtral's 8, Llama 4 Scout's 16) no published per-rank statistics exist and the
rule's cv would put nearly every row on one of two devices, which is not physical; the default
there is balanced (1), said in the estimate's warnings: give the factor measured on your traffic
(`moe_imbalance`).

Redundant experts (EPLB: R extra copies of the hottest experts, R/ep per device) shrink the
excess by exp(-3·R/ep): 3 is fitted to the published pair above (the rule's excess at ep 36 is
1.68; exp(-3 × 32/36) × 1.68 = 0.117 against the measured 0.115).
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError, show

PUBLISHED_EXCESS = 1.56  # (max - mean) / mean of routed tokens per rank: DeepSeek-R1, EP 32, no EPLB
PUBLISHED_EP, PUBLISHED_EXPERTS = 32, 256
REDUNDANCY_DECAY = 3.0  # excess × exp(-3 R / ep); fitted to EP 36 with 32 redundant experts (0.115)
MAX_IMBALANCE = 1000.0
FINE_GRAINED_EXPERTS = 64  # fewest routed experts the published statistics are extrapolated to


def routing_skew(num_experts: int, ep: int) -> float:
    """The hottest device's routed rows over the mean without redundant experts (the default).

    >>> round(routing_skew(256, 32), 2)   # the published figure
    2.56
    >>> routing_skew(256, 1)               # one device holds every expert
    1.0
    >>> routing_skew(8, 2)                 # coarse experts: no published statistics, balanced
    1.0
    """
    if ep <= 1 or num_experts < FINE_GRAINED_EXPERTS:
        return 1.0
    spread = (ep / num_experts) * math.log(ep) / ((PUBLISHED_EP / PUBLISHED_EXPERTS) * math.log(PUBLISHED_EP))
    return min(1.0 + PUBLISHED_EXCESS * math.sqrt(spread), float(ep))


def hottest_device_factor(num_experts: int, ep: int, redundant_experts: int = 0, skew: float | None = None) -> float:
    """Rows of the busiest device over the mean, with `redundant_experts` extra copies placed to
    balance the load. skew: the factor measured without redundant experts (None: routing_skew).

    >>> round(hottest_device_factor(256, 32, redundant_experts=32), 3)   # one extra expert per device
    1.078
    """
    if ep <= 1:
        return 1.0
    if skew is None:
        skew = routing_skew(num_experts, ep)
    return min(1.0 + (skew - 1.0) * math.exp(-REDUNDANCY_DECAY * redundant_experts / ep), float(ep))


def check_imbalance(value) -> float | None:
    """None, or a finite factor from 1 to MAX_IMBALANCE (InputError naming the constraint)."""
    if value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if not ok or not math.isfinite(value) or not 1.0 <= value <= MAX_IMBALANCE:
        raise InputError(f"moe_imbalance (the busiest device's routed rows over the mean) must be a number from 1 "
                         f"to {MAX_IMBALANCE:g}, got {show(value)}")
    return float(value)
