"""Numeric precisions: storage bytes per element and which peak a GEMM uses.

Quantized formats carry scale factors; their storage cost is included (bytes per weight):

- int4 (GPTQ/AWQ, one fp16 scale per group of 128): 0.5 + 2/128;
- mxfp4 (OCP Microscaling: one E8M0 byte scale per block of 32 FP4 values): 0.5 + 1/32;
- nvfp4 (one FP8 E4M3 scale per block of 16 FP4 values; the per-tensor fp32 scale is
  negligible): 0.5 + 1/16. `fp4` is the older name of the same format;
- fp8 block-scaled (DeepSeek-V3: one fp32 scale per 128x128 block): 1 + 4/16384.

A model's weights need not share one format: `WeightPrecision` keeps one `WeightFormat` per
module group (attention, dense MLP, routed experts, shared experts, router, embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .errors import InputError, show

# Tensor-core rates a device lists (hardware catalogs key `peak_tflops` by these).
RATES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4")
# Precisions a user may name for weights or KV cache: the rates plus the named 4-bit float formats.
PRECISIONS = RATES + ("mxfp4", "nvfp4")

BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,  # stored as fp32, multiplied at tf32 rate
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5 + 1 / 16,  # NVFP4 (kept for compatibility)
    "int4": 0.5 + 2 / 128,
    # OCP Microscaling Formats (MX) v1.0 spec, sec. 5: MXFP4 = 32 FP4 (E2M1) elements sharing one
    # 8-bit E8M0 scale.
    "mxfp4": 0.5 + 1 / 32,
    # NVIDIA NVFP4 (Blackwell): 16 FP4 (E2M1) elements share one FP8 E4M3 scale, plus one fp32
    # scale per tensor (negligible).
    "nvfp4": 0.5 + 1 / 16,
}

_ALIASES = {
    "float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16", "e4m3": "fp8", "fp8_e4m3": "fp8", "float8": "fp8",
    "w4a16": "int4", "awq": "int4", "gptq": "int4",
}

# Spellings of "as the checkpoint stores it" for a weight precision (None does the same).
CHECKPOINT = ("checkpoint", "auto")


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
_FP4 = {"fp4", "nvfp4", "mxfp4"}


def gemm_precision(weight_dtype: str, available: set[str], activation_dtype: str = "fp16") -> str:
    """Precision of the tensor-core rate a linear layer runs at (a key of the device's peaks).

    fp8 weights: W8A8 GEMMs at the fp8 rate if the device has it. FP4 weights (fp4, nvfp4,
    mxfp4): W4A4 at the fp4 rate if the device has one, else at the fp8 rate, else weight-only at
    the activation precision (as Marlin-style kernels do on Ampere). int8/int4: weight-only.
    """
    w = normalize(weight_dtype)
    a = normalize(activation_dtype)
    if w in _FP4:
        w = "fp4"
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


# ---- formats with scale factors --------------------------------------------------------------

@dataclass(frozen=True)
class WeightFormat:
    """How a group of weight matrices is stored: an element precision plus its scale factors."""

    precision: str  # canonical precision name: the element type, which picks the GEMM rate
    bytes_per_element: float  # bytes per weight, scales included
    detail: str = ""  # how the scales are laid out, for people ("128x128 blocks, fp32 scales")

    @property
    def label(self) -> str:
        return f"{self.precision} ({self.detail})" if self.detail else self.precision


def plain(precision: str, *, field: str = "weight_dtype") -> WeightFormat:
    """A precision by name, with the scale cost that BYTES_PER_ELEMENT states for it."""
    p = normalize(precision, field=field)
    return WeightFormat(p, BYTES_PER_ELEMENT[p])


def fp8_blocks(rows: int, cols: int) -> WeightFormat:
    """FP8 with one fp32 scale per rows x cols block: 1 + 4 / (rows·cols) bytes per weight."""
    return WeightFormat("fp8", 1.0 + 4.0 / (rows * cols), f"{rows}x{cols} blocks, fp32 scales")


def int_groups(bits: int, group: int, zero_points: bool) -> WeightFormat:
    """bits-bit integers with one fp16 scale per `group` weights, and optionally a zero point per
    group packed at the same bit width (as AWQ and GPTQ store `qzeros`):
    bits/8 + 2/group (+ bits/8/group) bytes per weight."""
    b = bits / 8 + 2.0 / group + (bits / 8 / group if zero_points else 0.0)
    detail = f"groups of {group}, fp16 scales" + (", zero points" if zero_points else "")
    return WeightFormat(f"int{bits}", b, detail)


def fp4_blocks(kind: str) -> WeightFormat:
    """MXFP4 (E8M0 scale per 32) or NVFP4 (E4M3 scale per 16), costs as BYTES_PER_ELEMENT."""
    return WeightFormat(kind, BYTES_PER_ELEMENT[kind],
                        "E8M0 scale per 32" if kind == "mxfp4" else "E4M3 scale per 16")


# ---- precision per module group -----------------------------------------------------------------

LINEAR_GROUPS = ("attention", "mlp", "experts", "shared_experts")
GROUPS = LINEAR_GROUPS + ("router", "embeddings")
SIXTEEN_BIT = ("fp16", "bf16")


@dataclass(frozen=True)
class WeightPrecision:
    """The storage format of each module group's weight matrices.

    Groups: `attention` (Q/K/V/O projections, MLA's low-rank ones), `mlp` (dense MLP layers),
    `experts` (routed experts), `shared_experts`, `router`, `embeddings` (input table and
    lm_head). Norms and biases are always 16 bit. `groups` lists the groups the model has (the
    rest do not appear in labels); `source` says where the formats come from: "checkpoint" (the
    model's config) or "weight_dtype" (the user's choice for the linear layers).
    """

    attention: WeightFormat
    mlp: WeightFormat
    experts: WeightFormat
    shared_experts: WeightFormat
    router: WeightFormat
    embeddings: WeightFormat
    groups: tuple[str, ...] = GROUPS
    source: str = "checkpoint"

    @classmethod
    def uniform(cls, precision: str = "fp16", *, small: str = "fp16", source: str = "checkpoint",
                groups: tuple[str, ...] = GROUPS) -> WeightPrecision:
        """Every linear group in `precision`; router and embeddings in `small` (16 bit)."""
        linear, rest = plain(precision), plain(small)
        return cls(linear, linear, linear, linear, rest, rest, groups=groups, source=source)

    def format(self, group: str) -> WeightFormat:
        if group not in GROUPS:
            raise InputError(f"unknown module group {show(group)}; groups are {', '.join(GROUPS)}")
        return getattr(self, group)

    def bytes(self, group: str) -> float:
        """Bytes per weight of a group's matrices."""
        return self.format(group).bytes_per_element

    def with_linear(self, precision: str) -> WeightPrecision:
        """The linear layers (attention, MLP, experts) in `precision`; router and embeddings as they are."""
        f = plain(precision)
        return replace(self, attention=f, mlp=f, experts=f, shared_experts=f, source="weight_dtype")

    def with_formats(self, formats: dict[str, WeightFormat]) -> WeightPrecision:
        """These formats for the groups named, the others as they are."""
        a, m, e, s, r, emb = (formats.get(g, self.format(g)) for g in GROUPS)
        return WeightPrecision(a, m, e, s, r, emb, groups=self.groups, source=self.source)

    def for_groups(self, groups: tuple[str, ...]) -> WeightPrecision:
        return replace(self, groups=tuple(g for g in GROUPS if g in groups))

    @property
    def label(self) -> str:
        """One line: a single precision when all linear layers share it ("fp8", "bf16"), else each
        precision with its groups, the commonest one as "rest": "mxfp4 (experts), bf16 (rest)".
        Router and embeddings count only when a linear group shares their precision."""
        linear = [g for g in LINEAR_GROUPS if g in self.groups] or ["attention"]
        by_precision: dict[str, list[str]] = {}
        for g in linear:
            by_precision.setdefault(self.format(g).precision, []).append(g)
        if len(by_precision) == 1:
            return next(iter(by_precision))
        # "rest": a 16-bit precision if there is one, else the one covering most groups.
        rest = next((p for p in by_precision if p in SIXTEEN_BIT),
                    max(by_precision, key=lambda p: len(by_precision[p])))
        parts = [f"{p} ({', '.join(g.replace('_', ' ') for g in gs)})" for p, gs in by_precision.items() if p != rest]
        return ", ".join(parts + [f"{rest} (rest)"])

    def __str__(self) -> str:
        return self.label

    def to_dict(self) -> dict[str, dict[str, object]]:
        """{group: {format, precision, bytes_per_element}} for the groups the model has."""
        return {g: {"format": self.format(g).label, "precision": self.format(g).precision,
                    "bytes_per_element": self.format(g).bytes_per_element}
                for g in GROUPS if g in self.groups}


def check_weight_precision(wp: object, where: str = "weight_dtype") -> WeightPrecision:
    """InputError unless wp is a WeightPrecision of WeightFormats with positive byte counts."""
    if not isinstance(wp, WeightPrecision):
        raise InputError(f"{where} must be a precision name or a WeightPrecision, got {show(wp)}")
    try:
        if wp in _CHECKED:
            return wp
    except TypeError:  # a field that cannot be hashed: not a valid format anyway
        pass
    for f in fields(WeightPrecision):
        if f.name in ("groups", "source"):
            continue
        fmt = getattr(wp, f.name)
        if not isinstance(fmt, WeightFormat):
            raise InputError(f"{where}.{f.name} must be a WeightFormat, got {show(fmt)}")
        b = fmt.bytes_per_element
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b <= 8:
            raise InputError(f"{where}.{f.name}: bytes_per_element must be in (0, 8], got {show(b)}")
        normalize(fmt.precision, field=f"{where}.{f.name}.precision")
    if len(_CHECKED) < 1024:
        _CHECKED.add(wp)
    return wp


_CHECKED: set[WeightPrecision] = set()  # already checked (they are immutable)
