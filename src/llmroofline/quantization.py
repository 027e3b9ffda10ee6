"""The precision a checkpoint stores its weights in, read from a Hugging Face `config.json`.

`quantization_config` names a method and its parameters; each supported method maps to one
`WeightFormat` per module group (precision.WeightPrecision). Modules the config leaves out
(`modules_to_not_convert`, `ignore`, `exclude_modules`) keep the checkpoint's 16-bit type.
Without a `quantization_config` every group is 16 bit: bf16 when `torch_dtype` says bfloat16,
else fp16 (fp32 checkpoints are served at 16 bit, as vLLM's `--dtype auto` does: "FP16 precision
for FP32 and FP16 models, BF16 precision for BF16 models", vLLM engine-arguments docs).

Supported methods and what they store per weight (sources in the comments below):
`mxfp4` (gpt-oss), `fp8` (fine-grained FP8, DeepSeek-V3), `awq`, `gptq`, `compressed-tensors`
(llm-compressor) and `modelopt` (NVIDIA TensorRT Model Optimizer). Anything else, or a
parameter outside what the method allows, is an InputError naming the field.

A group is one format: a pattern that leaves a group's modules out in any layer keeps the whole
group at 16 bit (the larger, conservative size).
"""

from __future__ import annotations

import fnmatch
import numbers
import re
from dataclasses import replace
from typing import Any

from .errors import InputError, show
from .precision import (
    GROUPS,
    LINEAR_GROUPS,
    WeightFormat,
    WeightPrecision,
    fp4_blocks,
    fp8_blocks,
    int_groups,
    plain,
)

METHODS = ("mxfp4", "fp8", "awq", "gptq", "compressed-tensors", "modelopt")

# Module names as Hugging Face checkpoints spell them, per group ({i}: layer, {j}: expert). A
# pattern from the config that matches any of a group's names concerns that group.
_LAYER_PREFIXES = ("model.layers.{i}.", "model.language_model.layers.{i}.", "language_model.model.layers.{i}.")
_GROUP_MODULES: dict[str, tuple[str, ...]] = {
    "attention": tuple(f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj", "q_a_proj", "q_b_proj",
                                                   "kv_a_proj_with_mqa", "kv_b_proj", "qkv_proj")),
    "mlp": ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "mlp.fc1", "mlp.fc2"),
    "experts": ("mlp.experts.{j}.gate_proj", "mlp.experts.{j}.up_proj", "mlp.experts.{j}.down_proj",
                "mlp.experts.gate_up_proj", "mlp.experts.down_proj",  # gpt-oss stacks the experts
                "block_sparse_moe.experts.{j}.w1", "block_sparse_moe.experts.{j}.w2",
                "block_sparse_moe.experts.{j}.w3", "feed_forward.experts.gate_up_proj",
                "feed_forward.experts.down_proj"),
    "shared_experts": ("mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj", "mlp.shared_experts.down_proj",
                       "mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj", "mlp.shared_expert.down_proj",
                       "feed_forward.shared_expert.gate_proj", "feed_forward.shared_expert.down_proj"),
    "router": ("mlp.gate", "mlp.router", "block_sparse_moe.gate", "feed_forward.router"),
}
# Families that spell a group one way only: a pattern must then be matched against that spelling
# (MiniMax-M2 leaves "gate", its router, in 16 bit; the generic spellings would also catch the
# experts' gate_proj, which MiniMax calls w1: transformers modeling_minimax_m2 / modeling_mixtral).
_BLOCK_SPARSE_MOE = {"experts": ("block_sparse_moe.experts.{j}.w1", "block_sparse_moe.experts.{j}.w2",
                                 "block_sparse_moe.experts.{j}.w3"),
                     "router": ("block_sparse_moe.gate",)}
_GROUP_MODULES_BY_TYPE: dict[str, dict[str, tuple[str, ...]]] = {
    "mixtral": _BLOCK_SPARSE_MOE, "minimax": _BLOCK_SPARSE_MOE, "minimax_m2": _BLOCK_SPARSE_MOE}
_EMBEDDINGS = ("model.embed_tokens", "lm_head", "model.language_model.embed_tokens", "language_model.lm_head")


def _module_names(group: str, layers: list[int], model_type: str = "") -> list[str]:
    if group == "embeddings":
        return list(_EMBEDDINGS)
    spellings = _GROUP_MODULES_BY_TYPE.get(model_type, {}).get(group, _GROUP_MODULES[group])
    return [prefix.format(i=i) + m.format(j=0) for i in layers for prefix in _LAYER_PREFIXES
            for m in spellings]


def _regex(pattern: str) -> tuple[bool, str] | None:
    """A module-name pattern of a quantization config as (anchored, regular expression), or None
    if it is not a valid one.

    `re:REGEX` (compressed-tensors) is matched from the start of the name; a glob with `*`
    (gpt-oss, ModelOpt) matches the whole name or one of its parents; a plain name matches as a
    substring (not anchored), as transformers' and vLLM's loaders test `modules_to_not_convert`.
    """
    if pattern.startswith("re:"):
        anchored, text = True, pattern[3:]
    elif any(c in pattern for c in "*?["):
        anchored, text = True, f"{fnmatch.translate(pattern)}|{fnmatch.translate(pattern + '.*')}"
    else:
        anchored, text = False, re.escape(pattern)
    try:
        re.compile(text)
    except re.error:
        return None
    return anchored, f"(?:{text})"


FIRST_LAYERS = 4  # layer-specific patterns are tried on the first layers and on those they name
MAX_NAMED_LAYERS = 128


def groups_matching(patterns: list[str], num_layers: int, model_type: str = "") -> set[str]:
    """The module groups a list of patterns touches (in any layer)."""
    parts = [r for r in map(_regex, patterns) if r is not None]
    if not parts:
        return set()
    anchored = re.compile("|".join(t for a, t in parts if a) or "(?!)", re.DOTALL)
    anywhere = re.compile("|".join(t for a, t in parts if not a) or "(?!)", re.DOTALL)
    # Layer-specific patterns need every layer's names; others are decided by one layer.
    if any(any(c.isdigit() for c in p) for p in patterns):
        named = sorted({int(d) for p in patterns for d in re.findall(r"\d+", p) if len(d) < 9 and int(d) < num_layers})
        layers = sorted(set(range(min(num_layers, FIRST_LAYERS))) | set(named[:MAX_NAMED_LAYERS]))
    else:
        layers = [0]
    return {group for group in GROUPS
            if any(anchored.match(n) or anywhere.search(n) for n in _module_names(group, layers, model_type))}


# ---- field checks ---------------------------------------------------------------------------

def _field(qc: dict[str, Any], where: str, *names: str, default: Any = None) -> tuple[str, Any]:
    for n in names:
        if qc.get(n) is not None:
            return f"{where}.{n}", qc[n]
    return f"{where}.{names[0]}", default


def _whole(name: str, v: Any, allowed: str, ok) -> int:
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, float)) or (
            isinstance(v, float) and not v.is_integer()):
        raise InputError(f"{name} must be a whole number ({allowed}), got {show(v)}")
    n = int(v)
    if not ok(n):
        raise InputError(f"{name} = {show(v)} is not supported ({allowed})")
    return n


def _patterns(qc: dict[str, Any], where: str, *names: str) -> list[str]:
    out: list[str] = []
    for n in names:
        v = qc.get(n)
        if v is None:
            continue
        if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
            raise InputError(f"{where}.{n} must be a list of module names, got {show(v)}")
        out += v
    return out


def _bits(name: str, v: Any, allowed: tuple[int, ...]) -> int:
    return _whole(name, v, f"{' or '.join(map(str, allowed))} bits", lambda n: n in allowed)


def _group_size(name: str, v: Any, hidden: int) -> int:
    """A group size: positive, or -1 (GPTQ/AWQ: one scale per output channel, taken as a group of
    hidden_size, the input width of most matrices)."""
    g = _whole(name, v, "a positive group size, or -1 for one per channel", lambda n: n == -1 or 1 <= n <= 1 << 20)
    return hidden if g == -1 else g


# ---- methods ----------------------------------------------------------------------------------

def _mxfp4(qc: dict[str, Any], where: str) -> tuple[dict[str, WeightFormat], list[str]]:
    # transformers Mxfp4Config (gpt-oss): the MoE experts are stored as MXFP4 (blocks of 32 FP4
    # values, one uint8 E8M0 scale each: `*_blocks` and `*_scales` tensors); all else stays bf16.
    return {"experts": fp4_blocks("mxfp4")}, _patterns(qc, where, "modules_to_not_convert")


def _fp8(qc: dict[str, Any], where: str) -> tuple[dict[str, WeightFormat], list[str]]:
    # transformers FineGrainedFP8Config / vLLM Fp8Config (DeepSeek-V3 README_WEIGHTS.md: FP8 e4m3
    # weights, one fp32 `weight_scale_inv` per 128x128 block). Without weight_block_size: one
    # scale per tensor (negligible).
    name, fmt = _field(qc, where, "fmt", default="e4m3")
    if not isinstance(fmt, str) or fmt.lower() not in ("e4m3", "e5m2", "float8_e4m3fn"):
        raise InputError(f"{name} must be e4m3 or e5m2 (both 1 byte), got {show(fmt)}")
    name, block = _field(qc, where, "weight_block_size")
    if block is None:
        f = plain("fp8")
    else:
        if not isinstance(block, list) or len(block) != 2:
            raise InputError(f"{name} must be two block sizes [rows, cols], got {show(block)}")
        r, c = (_whole(f"{name}[{k}]", v, "a block size from 1 to 65536", lambda n: 1 <= n <= 65536)
                for k, v in enumerate(block))
        f = fp8_blocks(r, c)
    return dict.fromkeys(LINEAR_GROUPS, f), _patterns(qc, where, "modules_to_not_convert", "ignored_layers")


def _awq(qc: dict[str, Any], where: str, hidden: int) -> tuple[dict[str, WeightFormat], list[str]]:
    # AutoAWQ WQLinear_GEMM: qweight packs 4-bit weights in int32; `scales` fp16 and `qzeros` (4-bit,
    # packed in int32) hold one scale and one zero point per group of group_size inputs.
    name, bits = _field(qc, where, "bits", "w_bit", default=4)
    _bits(name, bits, (4,))
    name, g = _field(qc, where, "group_size", "q_group_size", default=128)
    group = _group_size(name, g, hidden)
    name, zp = _field(qc, where, "zero_point", default=True)
    if not isinstance(zp, bool):
        raise InputError(f"{name} must be true or false, got {show(zp)}")
    return dict.fromkeys(LINEAR_GROUPS, int_groups(4, group, zp)), _patterns(qc, where, "modules_to_not_convert")


def _gptq(qc: dict[str, Any], where: str, hidden: int) -> tuple[dict[str, WeightFormat], list[str]]:
    # AutoGPTQ QuantLinear: qweight packed in int32, `scales` fp16 and `qzeros` (packed at the same
    # bit width, stored even when sym is true) per group of group_size inputs; g_idx (one int32
    # per input row) is negligible.
    name, bits = _field(qc, where, "bits", default=4)
    b = _bits(name, bits, (4, 8))
    name, g = _field(qc, where, "group_size", default=128)
    return (dict.fromkeys(LINEAR_GROUPS, int_groups(b, _group_size(name, g, hidden), True)),
            _patterns(qc, where, "modules_to_not_convert"))


def _compressed_scheme(w: Any, where: str, hidden: int) -> WeightFormat:
    """A compressed-tensors QuantizationArgs of weights (num_bits, type, strategy, group_size,
    symmetric, block_structure) as a storage format."""
    if not isinstance(w, dict):
        raise InputError(f"{where} must be an object, got {show(w)}")
    name, kind = _field(w, where, "type", default="int")
    if kind not in ("int", "float"):
        raise InputError(f"{name} must be int or float, got {show(kind)}")
    bits = _bits(f"{where}.num_bits", w.get("num_bits", 8), (4, 8))
    name, strategy = _field(w, where, "strategy", default="tensor")
    strategies = ("tensor", "channel", "group", "tensor_group", "block")
    if strategy not in strategies:
        raise InputError(f"{name} must be one of {', '.join(strategies)}, got {show(strategy)}")
    sym = w.get("symmetric", True)
    if not isinstance(sym, bool):
        raise InputError(f"{where}.symmetric must be true or false, got {show(sym)}")
    if kind == "float" and bits == 4:
        # NVFP4: group_size 16 with FP8 E4M3 scales; MXFP4: group_size 32 with E8M0 scales.
        g = _whole(f"{where}.group_size", w.get("group_size"), "16 for NVFP4 or 32 for MXFP4", lambda n: n in (16, 32))
        return fp4_blocks("nvfp4" if g == 16 else "mxfp4")
    if kind == "float":  # fp8
        if strategy == "block":
            block = w.get("block_structure")
            if not isinstance(block, list) or len(block) != 2:
                raise InputError(f"{where}.block_structure must be [rows, cols], got {show(block)}")
            r, c = (_whole(f"{where}.block_structure[{k}]", v, "a block size from 1 to 65536",
                           lambda n: 1 <= n <= 65536) for k, v in enumerate(block))
            return fp8_blocks(r, c)
        if strategy in ("group", "tensor_group"):
            raise InputError(f"{where}.strategy = {strategy!r} is not supported for fp8 weights "
                             f"(tensor, channel or block)")
        return replace(plain("fp8"), detail=f"per-{strategy} scales")  # one scale per row: negligible
    if strategy in ("group", "tensor_group"):
        g = _group_size(f"{where}.group_size", w.get("group_size"), hidden)
        return int_groups(bits, g, zero_points=not sym)
    return WeightFormat(f"int{bits}", bits / 8, f"per-{strategy} scales")


def _compressed_tensors(qc: dict[str, Any], where: str, hidden: int,
                        layers: int) -> tuple[dict[str, WeightFormat], list[str]]:
    # compressed-tensors QuantizationConfig: config_groups = {name: {targets, weights, ...}};
    # `ignore` lists modules left in 16 bit. A target "Linear" means every linear layer.
    groups = qc.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise InputError(f"{where}.config_groups must be a non-empty object, got {show(groups)}")
    out: dict[str, WeightFormat] = {}
    for key, scheme in groups.items():
        w = f"{where}.config_groups.{key}"
        if not isinstance(scheme, dict):
            raise InputError(f"{w} must be an object, got {show(scheme)}")
        targets = _patterns(scheme, w, "targets")
        if not targets:
            raise InputError(f"{w}.targets must list the modules it quantizes")
        if scheme.get("weights") is None:
            continue  # activations only
        fmt = _compressed_scheme(scheme["weights"], f"{w}.weights", hidden)
        hit = set(LINEAR_GROUPS) if "Linear" in targets else groups_matching(
            [t for t in targets if t != "Linear"], layers)
        for g in hit:
            out.setdefault(g, fmt)
    return out, _patterns(qc, where, "ignore")


def _modelopt(qc: dict[str, Any], where: str) -> tuple[dict[str, WeightFormat], list[str]]:
    # NVIDIA TensorRT Model Optimizer export: quant_algo NVFP4 (FP4 weights, one FP8 E4M3 scale per
    # group_size = 16 values, one fp32 per tensor) or FP8 (per-tensor scales).
    name, algo = _field(qc, where, "quant_algo")
    if not isinstance(algo, str) or algo.upper() not in ("NVFP4", "FP8"):
        raise InputError(f"{name} must be NVFP4 or FP8, got {show(algo)}")
    if algo.upper() == "NVFP4":
        if qc.get("group_size") is not None:
            _whole(f"{where}.group_size", qc["group_size"], "16 for NVFP4", lambda n: n == 16)
        f = fp4_blocks("nvfp4")
    else:
        f = plain("fp8")
    return dict.fromkeys(LINEAR_GROUPS, f), _patterns(qc, where, "ignore", "exclude_modules")


# ---- the checkpoint --------------------------------------------------------------------------

def sixteen_bit(cfg: dict[str, Any], where: str) -> str:
    """bf16 when the config's torch_dtype (or dtype) says bfloat16, else fp16."""
    for key in ("torch_dtype", "dtype"):
        v = cfg.get(key)
        if v is None:
            continue
        if not isinstance(v, str):
            raise InputError(f"{where}: {key} must be a string such as 'bfloat16', got {show(v)}")
        return "bf16" if v.strip().lower() in ("bfloat16", "bf16") else "fp16"
    return "fp16"


def checkpoint_precision(cfg: dict[str, Any], *, hidden_size: int, num_layers: int,
                         where: str = "config", model_type: str = "") -> WeightPrecision:
    """How the checkpoint a config describes stores each module group's weights."""
    small = sixteen_bit(cfg, where)
    qc = cfg.get("quantization_config")
    if (isinstance(qc, dict) and qc.get("quant_method") == "mxfp4"
            and cfg.get("torch_dtype") is None and cfg.get("dtype") is None):
        # gpt-oss configs name no dtype; the model card: MoE weights in MXFP4, the rest in BF16.
        small = "bf16"
    base = WeightPrecision.uniform(small, small=small)
    if qc is None:
        return base
    w = "quantization_config"
    if not isinstance(qc, dict):
        raise InputError(f"{where}: {w} must be an object, got {show(qc)}")
    method = qc.get("quant_method")
    if not isinstance(method, str) or method.strip().lower() not in METHODS + ("modelopt_fp4",):
        raise InputError(f"{where}: {w}.quant_method {show(method)} is not one this tool reads; "
                         f"supported: {', '.join(METHODS)}")
    method = method.strip().lower()
    where_qc = f"{where}: {w}"
    if method == "mxfp4":
        formats, skipped = _mxfp4(qc, where_qc)
    elif method == "fp8":
        formats, skipped = _fp8(qc, where_qc)
    elif method == "awq":
        formats, skipped = _awq(qc, where_qc, hidden_size)
    elif method == "gptq":
        formats, skipped = _gptq(qc, where_qc, hidden_size)
    elif method == "compressed-tensors":
        formats, skipped = _compressed_tensors(qc, where_qc, hidden_size, num_layers)
    else:
        formats, skipped = _modelopt(qc, where_qc)
    kept = groups_matching(skipped, num_layers, model_type)
    # Router and embeddings stay 16 bit: the methods above quantize the linear layers only.
    chosen = {g: f for g, f in formats.items() if g in LINEAR_GROUPS and g not in kept}
    return base.with_formats(chosen)
