"""Several devices evaluated as one: their specs as arrays along a trailing axis of the grid.

`recommend` times the same configuration (model, layout, GEMM rates) on dozens of devices. The
operators do not depend on the device; only the numbers they are divided by do. A `DeviceStack`
is a `Hardware` whose numeric specs are arrays with one entry per member device (a plain number
where every member has the same one), and `stack_efficiencies` does the same for their
efficiencies. Given to `estimate` with inputs whose last axis has length 1, every result gains
a last axis with one column per member, each computed by the same elementwise steps as an estimate
on that device alone: the same values to the last bit (tests/test_device_stack.py).

Only what differs by value is stacked. What decides a code path must be the same for every
member: the GEMM rate each module group runs at (its peak, its low-precision factors). Group
devices by it first, as `recommend` does; fp16 and bf16 count as one rate on a device where they
have the same peak.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .hardware import Hardware

if TYPE_CHECKING:
    from .efficiency import Efficiency

# Hardware fields that become arrays over the members (max_devices too: collectives take it per member).
_NUMERIC = ("memory_bytes", "memory_bandwidth", "onchip_buffer_bytes", "interconnect_bandwidth", "max_devices",
            "tdp_w", "price_per_hour_usd", "scale_out_bandwidth", "scale_out_latency_s")


def stack_values(values: list[Any]) -> Any:
    """The value every member shares, else an array of them (a plain value keeps the scalar path)."""
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    return np.array(values, dtype=float if isinstance(first, float) else None)


@dataclass(frozen=True)
class DeviceStack(Hardware):
    """Member devices as one Hardware: numeric specs are arrays over the members (see the module
    docstring), peak_flops too (`stack_devices`)."""

    members: tuple[Hardware, ...] = ()

    def __post_init__(self) -> None:  # the members were validated one by one
        if not self.members:
            raise ValueError("a device stack needs at least one member")

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def nic_shares_link(self) -> Any:  # type: ignore[override]
        return stack_values([hw.nic_shares_link for hw in self.members])


def stack_devices(hws: list[Hardware]) -> DeviceStack:
    """One DeviceStack of `hws`, in order. Its peaks are each member's FLOP/s for every precision
    all of them can run, fp16 and bf16 standing in for each other as `roofline.device_peak` lets
    them on one device: an operator at any of those precisions gets each member's own figure."""
    from .roofline import device_peak  # roofline imports this module

    if not hws:
        raise ValueError("a device stack needs at least one member")
    if any(isinstance(hw, DeviceStack) for hw in hws):
        raise ValueError("a device stack's members are single devices")
    peaks = {}
    for p in sorted(set().union(*(set(hw.peak_flops) for hw in hws)) | {"fp16", "bf16"}):
        try:
            peaks[p] = stack_values([device_peak(hw, p) for hw in hws])
        except InputError:  # a precision some member lacks: not one of the stack's
            continue
    numeric = {name: stack_values([getattr(hw, name) for hw in hws]) for name in _NUMERIC}
    return DeviceStack(
        id="+".join(hw.id for hw in hws), name=f"{len(hws)} devices", vendor="", family="", peak_flops=peaks,
        interconnect_kind="", members=tuple(hws), memory_type="", scale_out_kind="", **numeric)


def per_member(hw: Hardware, value: Any) -> Any:
    """value(device) for one device; for a stack, the members' values as an array (or the shared one)."""
    if isinstance(hw, DeviceStack):
        return stack_values([value(m) for m in hw.members])
    return value(hw)


def stack_shape(hw: Hardware) -> tuple[int, ...]:
    """The trailing axis a device stack adds to every result: (members,), or () for one device."""
    return (hw.size,) if isinstance(hw, DeviceStack) else ()


def stack_efficiencies(effs: list[Efficiency]) -> Efficiency:
    """The members' efficiencies as one Efficiency: each field the shared value or an array."""
    from .efficiency import Efficiency  # efficiency imports this module

    return Efficiency(**{f.name: stack_values([getattr(e, f.name) for e in effs]) for f in fields(Efficiency)})
