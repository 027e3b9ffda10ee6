"""Numeric precisions: storage bytes per element and which peak a GEMM uses.

Quantized formats carry scale factors; their storage cost is included:
int4 (GPTQ/AWQ, one fp16 scale per group of 128): 0.5 + 2/128 bytes;
fp4 (NVFP4, one fp8 scale per block of 16): 0.5 + 1/16 bytes.
"""

from __future__ import annotations

from .errors import InputError, show

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4")

BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,  # stored as fp32, multiplied at tf32 rate
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5 + 1 / 16,
    "int4": 0.5 + 2 / 128,
}

_ALIASES = {
    "float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16", "e4m3": "fp8", "fp8_e4m3": "fp8", "float8": "fp8",
    "nvfp4": "fp4", "mxfp4": "fp4", "w4a16": "int4", "awq": "int4", "gptq": "int4",
}


def normalize(precision: str, *, field: str = "precision") -> str:
    """Canonical precision name (case-insensitive, common aliases accepted)."""
    if not isinstance(precision, str):
        raise InputError(f"{field}: a precision is a name ({', '.join(PRECISIONS)}), got {show(precision)}")
    p = precision.strip().lower()
    p = _ALIASES.get(p, p)
    if p not in BYTES_PER_ELEMENT:
        raise InputError(f"{field}: unknown precision {show(precision)}; choose one of {', '.join(PRECISIONS)}")
    return p


def bytes_per_element(precision: str) -> float:
    return BYTES_PER_ELEMENT[normalize(precision)]


# Formats whose GEMMs run natively on the matching tensor-core rate (weights and activations
# both quantized). Other low-bit weight formats are weight-only: dequantized to 16 bit on the fly.
_NATIVE_GEMM = {"fp8", "fp4", "fp32", "tf32"}


def gemm_precision(weight_dtype: str, available: set[str], activation_dtype: str = "fp16") -> str:
    """Precision of the tensor-core rate a linear layer runs at.

    fp8/fp4 weights: W8A8 / W4A4 GEMMs at that rate if the device has it, else weight-only at the
    activation precision (as Marlin-style kernels do on Ampere). int8/int4: weight-only.
    """
    w = normalize(weight_dtype)
    a = normalize(activation_dtype)
    if w in _NATIVE_GEMM and w in available:
        return w
    if w == "fp4" and "fp8" in available:
        return "fp8"
    for candidate in (a, "fp16", "bf16"):  # TPUs and Gaudi have bf16 but no fp16 rate
        if candidate in available:
            return candidate
    wanted = ", ".join(dict.fromkeys((w, a, "fp16", "bf16")))
    raise InputError(f"device has none of the precisions {wanted} for matrix multiplies "
                     f"(it has {', '.join(sorted(available)) or 'none'})")
