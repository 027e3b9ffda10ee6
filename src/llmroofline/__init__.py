"""llmroofline: how fast a large language model runs on an accelerator, without running it."""

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
from .plots import (  # matplotlib is imported only when they are called
    plot_comparison,
    plot_roofline,
)
from .recommend import pareto, recommend
from .roofline import attainable_flops, roofline_time, time_ops
from .serving import Serving, serve

__version__ = "0.1.0"

__all__ = [
    "AttentionGroup", "Calibration", "Comparison", "Deployment", "Efficiency", "Estimate", "Hardware",
    "InputError", "ModelSpec", "Operator", "attainable_flops", "compare", "decode_step", "estimate",
    "forward_ops", "list_hardware", "list_models", "load_calibration", "load_hardware", "load_model",
    "make_deployment", "max_batch", "memory_use", "model_from_config", "parse_axis", "roofline_time",
    "time_ops", "whole_model", "plot_comparison", "plot_roofline", "pareto", "recommend", "Serving", "serve",
    "EnergyUse", "PowerModel", "power_model",
]
