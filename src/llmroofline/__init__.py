"""llmroofline: how fast a large language model runs on an accelerator, without running it.

The names below are imported on first use (PEP 562 `__getattr__`), not when the package is: a
command such as `llmroofline estimate` then loads only the modules it runs (comparison meshes,
`recommend`, serving and plots cost a one-shot process tens of milliseconds it never uses).
`from llmroofline import X` and `llmroofline.X` work as with eager imports.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .heap import keep_freed_memory

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from .compare import Comparison, compare, parse_axis
    from .efficiency import Calibration, Efficiency, load_calibration
    from .energy import EnergyUse, PowerModel, power_model
    from .errors import InputError
    from .estimate import Deployment, Estimate, decode_step, estimate, make_deployment
    from .hardware import Hardware, list_hardware, load_hardware
    from .intensity import whole_model
    from .memory import max_batch, memory_use
    from .model import ModelSpec, list_models, load_model, model_from_config
    from .operators import AttentionGroup, Operator, forward_ops
    from .plots import plot_comparison, plot_roofline
    from .recommend import pareto, recommend
    from .roofline import attainable_flops, roofline_time, time_ops
    from .serving import Serving, serve

__version__ = "0.1.0"

keep_freed_memory()  # numpy temporaries reuse freed memory instead of faulting in new pages (heap.py)

# Each public name -> the submodule that defines it.
_EXPORTS = {
    "compare": ("Comparison", "compare", "parse_axis"),
    "efficiency": ("Calibration", "Efficiency", "load_calibration"),
    "energy": ("EnergyUse", "PowerModel", "power_model"),
    "errors": ("InputError",),
    "estimate": ("Deployment", "Estimate", "decode_step", "estimate", "make_deployment"),
    "hardware": ("Hardware", "list_hardware", "load_hardware"),
    "intensity": ("whole_model",),
    "memory": ("max_batch", "memory_use"),
    "model": ("ModelSpec", "list_models", "load_model", "model_from_config"),
    "operators": ("AttentionGroup", "Operator", "forward_ops"),
    "plots": ("plot_comparison", "plot_roofline"),
    "recommend": ("pareto", "recommend"),
    "roofline": ("attainable_flops", "roofline_time", "time_ops"),
    "serving": ("Serving", "serve"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "AttentionGroup", "Calibration", "Comparison", "Deployment", "Efficiency", "Estimate", "Hardware",
    "InputError", "ModelSpec", "Operator", "attainable_flops", "compare", "decode_step", "estimate",
    "forward_ops", "list_hardware", "list_models", "load_calibration", "load_hardware", "load_model",
    "make_deployment", "max_batch", "memory_use", "model_from_config", "parse_axis", "roofline_time",
    "time_ops", "whole_model", "plot_comparison", "plot_roofline", "pareto", "recommend", "Serving", "serve",
    "EnergyUse", "PowerModel", "power_model",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


class _Package(types.ModuleType):
    """Three exported functions share their name with the submodule defining them (`compare`,
    `estimate`, `recommend`). Importing a submodule sets it as an attribute of its package, which
    would hide the function; with eager imports the package's own `from .estimate import
    estimate` ran last and won. This keeps that outcome whenever the submodule is imported:
    `llmroofline.estimate` is always the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
