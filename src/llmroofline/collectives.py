"""Collectives on two levels: inside a scale-up domain and across domains over the NICs.

n devices with a domain of d are laid out as k = ceil(n / d) domains of m = n / k devices each
(a group is spread evenly; m is an average where d does not divide n). Bandwidths are achieved
bytes per second per device per direction; `nbytes` is the message per device (arrays broadcast).

- all-reduce of S bytes: reduce-scatter inside each domain ((m-1)/m S on the scale-up link),
  ring all-reduce of each device's S/m shard with its k-1 peers in the other domains
  (2(k-1)/k · S/m on its NIC, all NICs at once), all-gather inside ((m-1)/m S). One domain:
  the flat ring, 2(n-1)/n S. Latency: the fixed cost of one collective plus 2(k-1) NIC messages.
- all-gather / reduce-scatter of an S-byte result: (k-1)/k · S/m on the NIC and (m-1)/m S on
  the scale-up link; k-1 NIC messages.
- all-to-all of S bytes held per device (S/n to each peer): (m-1)/n S to the peers in the domain
  on the scale-up link and (n-m)/n S to the others on the NIC, at the same time (the slower one
  bounds), or one after the other where the NIC sits on the same PCIe link; one NIC message.
- p2p: S over the scale-up link inside a domain, over the NIC across (plus one NIC message).

Traffic that leaves the domain goes no faster than the device's own link: the scale-out rate is
min(NIC, scale-up link). With k = 1 every formula is the flat one on the scale-up link.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .efficiency import Efficiency
from .hardware import Hardware

PATTERNS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


@dataclass(frozen=True, slots=True)
class Links:
    """The two levels a collective runs on, as achieved rates (bytes/s per device per direction);
    for a device stack, arrays over its members."""

    domain: int  # devices in one scale-up domain
    up_bandwidth: float  # inside a domain
    out_bandwidth: float  # across domains (NIC), at most up_bandwidth
    up_latency_s: float  # fixed cost of one collective (launch, synchronization)
    out_latency_s: float  # one message across domains
    shared_link: bool = False  # the NIC sits on the scale-up link (PCIe cards): no overlap


def links(hw: Hardware, eff: Efficiency) -> Links:
    """A device's two levels under achieved fractions (`eff.comm_bandwidth`, `eff.nic_bandwidth`).
    For a device stack (device_stack.py) each field may be an array over its members."""
    args = (hw.max_devices, hw.interconnect_bandwidth, hw.scale_out_bandwidth, hw.scale_out_latency_s,
            hw.nic_shares_link, eff.comm_bandwidth, eff.nic_bandwidth, eff.comm_latency_s)
    if any(isinstance(a, np.ndarray) for a in args):
        return _links.__wrapped__(*args)
    return _links(*args)


@functools.lru_cache(maxsize=1024)
def _links(domain: int, link: float, nic: float, nic_latency_s: float, shared: bool, link_fraction: float,
           nic_fraction: float, latency_s: float) -> Links:
    # Built once per device and efficiency: a pass prices several collectives on the same links.
    up, out = link * link_fraction, nic * nic_fraction
    out = np.minimum(out, up) if isinstance(out, np.ndarray) or isinstance(up, np.ndarray) else min(out, up)
    return Links(domain=domain, up_bandwidth=up, out_bandwidth=out, up_latency_s=latency_s,
                 out_latency_s=nic_latency_s, shared_link=shared)


def layout(n: int, domain):
    """(domains k, devices per domain m) for n devices in domains of `domain`: k = ceil(n/d), m = n/k.
    domain may be an array (a device stack's members): then k and m are arrays."""
    if isinstance(domain, np.ndarray):
        ks = np.maximum(np.ceil(n / domain), 1.0)
        return ks, n / ks
    k = max(math.ceil(n / domain), 1)
    return k, n / k


def all_reduce_time(nbytes, n: int, lk: Links):
    """Seconds of an all-reduce of `nbytes` per device over n devices."""
    k, m = layout(n, lk.domain)
    s = np.asarray(nbytes, dtype=float)
    t = 2.0 * (m - 1.0) / np.maximum(m, 1.0) * s / lk.up_bandwidth
    if np.any(k > 1):  # on one domain the NIC term is zero: skipped (a stack's one-domain members add 0)
        t = t + 2.0 * (k - 1.0) / k / m * s / lk.out_bandwidth
    return t + (lk.up_latency_s + 2 * (k - 1) * lk.out_latency_s)


def all_gather_time(nbytes, n: int, lk: Links):
    """Seconds of an all-gather whose result is `nbytes` per device (each holds nbytes/n); a
    reduce-scatter of `nbytes` per device takes the same (the same traffic, reversed)."""
    k, m = layout(n, lk.domain)
    s = np.asarray(nbytes, dtype=float)
    t = (m - 1.0) / np.maximum(m, 1.0) * s / lk.up_bandwidth
    if np.any(k > 1):
        t = t + (k - 1.0) / k / m * s / lk.out_bandwidth
    return t + (lk.up_latency_s + (k - 1) * lk.out_latency_s)


reduce_scatter_time = all_gather_time


def all_to_all_time(nbytes, n: int, lk: Links):
    """Seconds of an all-to-all where each of n devices holds `nbytes` and sends nbytes/n to each peer."""
    k, m = layout(n, lk.domain)
    s = np.asarray(nbytes, dtype=float)
    t = (m - 1.0) / max(float(n), 1.0) * s / lk.up_bandwidth
    if np.any(k > 1):
        out = (n - m) / n * s / lk.out_bandwidth  # 0 for a stack's one-domain members: t + 0 and max(t, 0) are t
        if isinstance(lk.shared_link, np.ndarray):
            t = np.where(lk.shared_link, t + out, np.maximum(t, out))
        else:
            t = t + out if lk.shared_link else np.maximum(t, out)
    return t + (lk.up_latency_s + np.minimum(k - 1, 1) * lk.out_latency_s)


def p2p_time(nbytes, lk: Links, *, across: bool):
    """Seconds to send `nbytes` to one peer, inside the domain or across it."""
    if across:
        return np.asarray(nbytes, dtype=float) / lk.out_bandwidth + (lk.up_latency_s + lk.out_latency_s)
    return np.asarray(nbytes, dtype=float) / lk.up_bandwidth + lk.up_latency_s


_TIMES = {"all_reduce": all_reduce_time, "all_gather": all_gather_time, "reduce_scatter": reduce_scatter_time,
          "all_to_all": all_to_all_time}


def collective_time(pattern: str, nbytes, n: int, lk: Links):
    """Seconds of a collective by its name (PATTERNS)."""
    if pattern not in _TIMES:
        raise ValueError(f"collective {pattern!r} is not one of {', '.join(PATTERNS)}")
    return _TIMES[pattern](nbytes, n, lk)


def boundaries_across(stages: int, per_stage: int, domain):
    """Of the stages - 1 boundaries of a pipeline of `stages` stages of `per_stage` devices laid
    out one after the other, how many join two stages that do not share one domain (there the
    hand-over goes over the NICs; the slowest rank's send bounds the hop). domain may be an array
    (a device stack's members): then the counts are one."""
    if isinstance(domain, np.ndarray):
        return np.array([boundaries_across(stages, per_stage, int(d)) for d in domain.ravel()]).reshape(domain.shape)
    if stages * per_stage <= domain:
        return 0  # the whole pipeline in one domain
    if per_stage >= domain:
        return stages - 1  # every stage fills a domain or more: every hand-over leaves it
    i = np.arange(1, stages)
    first = (i - 1) * per_stage // domain  # domain of the first device of stage i-1
    last = ((i + 1) * per_stage - 1) // domain  # domain of the last device of stage i
    return int(np.count_nonzero(first != last))
