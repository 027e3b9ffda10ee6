"""Model architectures parsed from Hugging Face `config.json` files.

A `ModelSpec` holds what the performance model needs: layer count, widths, attention kind
(MHA/GQA/MQA/MLA), sliding windows, MoE layout. Parameter counts follow from it by formula.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .catalog import catalog_files, looks_like_path, name_table
from .errors import InputError, clean_name, show, unknown_name
from .files import MAX_CONFIG_BYTES, parse_json, read_text
from .hybrid import MAMBA1_CHUNK_TOKENS
from .precision import (
    CHECKPOINT,
    GROUPS,
    WeightPrecision,
    bytes_per_element,
    check_weight_precision,
    normalize,
)
from .quantization import checkpoint_precision
from .vision import VisionSpec, vision_from_config

KNOWN_MODEL_TYPES = {
    "llama", "llama4", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "gptj", "falcon", "RefinedWeb", "RefinedWebModel", "gemma", "gemma2", "gemma3", "gemma3_text",
    "deepseek_v2", "deepseek_v3", "kimi_k2", "gpt_oss", "phi3", "phi", "glm4", "glm", "glm4_moe", "yi",
    "olmo2", "starcoder2", "cohere", "exaone", "internlm2", "minimax", "minimax_m2", "ernie4_5", "ernie4_5_moe",
    "qwen2_5_vl", "qwen2_5_vl_text",
    "qwen3_next", "nemotron_h", "deepseek_v32", "falcon_h1", "jamba",
}
# Vision-language wrappers whose language model is a known text architecture: read it as that one.
_TEXT_TOWER_TYPES = {"qwen2_5_vl": "qwen2", "qwen2_5_vl_text": "qwen2"}
EMBEDDING_COUNTS = ("both", "output", "none")
# What `params_active` counts, the convention OpenAI's gpt-oss model card uses for its active figures.
ACTIVE_PARAMS_CONVENTION = (
    "active = weights one token's forward pass reads: every layer's attention, norms, dense MLP or "
    "top-k routed experts plus shared experts and router, and the output head; the input embedding "
    "table is a row lookup and is not counted (a tied table counts once, as the output head). This is "
    "how OpenAI counts gpt-oss (5.13B active for gpt-oss-120b); publishers that count both embedding "
    "tables (Qwen, Mistral, Meta's Llama 4) give figures higher by vocab x hidden, GLM's leave out both.")
_GELU_MLP_TYPES = {"gptj", "falcon", "RefinedWeb", "RefinedWebModel", "phi", "starcoder2"}
_LAYERNORM_TYPES = {"gptj", "falcon", "RefinedWeb", "RefinedWebModel", "phi", "starcoder2"}


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer. Sizes are element counts, not bytes."""

    id: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # width of the dense MLP (0 if every layer is MoE)
    vocab_size: int
    tie_word_embeddings: bool = False
    gated_mlp: bool = True  # SwiGLU/GeGLU: three matrices; plain GELU MLP: two
    layernorm_bias: bool = False
    qkv_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    # Sliding-window attention: the window in tokens and how many layers use it.
    sliding_window: int = 0
    num_sliding_layers: int = 0
    # Mixture of experts.
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0  # total width of always-active shared experts
    num_moe_layers: int = 0
    expert_bias: bool = False
    # Multi-head latent attention (DeepSeek-V2/V3): zero ranks mean ordinary attention.
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    attention_sinks: bool = False
    # Hybrid token mixers (see hybrid.py): Gated DeltaNet linear attention (Qwen3-Next), Mamba-2
    # (Nemotron-H), blocks with only an MLP or only a mixer (Nemotron-H), attention output gate.
    num_linear_layers: int = 0
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel: int = 0
    num_mamba_layers: int = 0
    mamba_num_heads: int = 0
    mamba_head_dim: int = 0
    ssm_state_size: int = 0
    mamba_groups: int = 0
    mamba_conv_kernel: int = 0
    mamba_chunk_size: int = 0
    mamba_dt_rank: int = 0  # > 0: Mamba-1 (Jamba), one head per channel, dt/B/C from x_proj
    num_mlp_only_layers: int = 0
    num_mixer_only_layers: int = 0
    mamba_parallel: bool = False  # Falcon-H1: Mamba-2 beside attention in the same layers, outputs summed
    attn_output_gate: bool = False
    # DeepSeek sparse attention (V3.2): a lightning indexer picks index_topk cached tokens per query.
    index_n_heads: int = 0
    index_head_dim: int = 0
    index_topk: int = 0
    # How the checkpoint stores each module group's weights (quantization_config, torch_dtype);
    # None when its quantization_config cannot be read, checkpoint_problem saying why (an explicit
    # weight_dtype still works then).
    checkpoint_precision: WeightPrecision | None = WeightPrecision.uniform("fp16")
    checkpoint_problem: str = ""
    # Tokens of context the model was trained for (max_position_embeddings; 0: not stated).
    max_context: int = 0
    # Catalog metadata.
    aliases: tuple[str, ...] = ()
    published_params: float | None = None
    published_active_params: float | None = None
    # Which embedding tables the publisher's active figure counts, where its arithmetic shows it:
    # "both", "output" (our convention) or "none"; "" when not known.
    published_active_embeddings: str = ""
    params_source: str = ""
    config_source: str = ""
    config_notes: str = ""  # how far the bundled file was checked against the published one
    base_id: str = ""  # the base (pre-trained) repository of an instruct model: same architecture
    # Other Hub repositories this entry's config serves (base/instruct/revised checkpoints of the
    # same architecture), and, for a spec built from a catalog file, the entry and file it came from.
    variants: tuple[str, ...] = ()
    catalog_entry: str = ""
    catalog_file: str = ""
    # The vision encoder and projector of a vision-language model (vision.py); None: text only.
    vision: VisionSpec | None = None

    def __post_init__(self) -> None:
        _check_spec(self)

    # ---- derived architecture facts -------------------------------------------------------
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0 and self.num_moe_layers > 0

    @property
    def num_attention_layers(self) -> int:
        """Layers with softmax attention (the rest hold a linear-attention or Mamba mixer, or none)."""
        beside = self.num_mamba_layers if self.mamba_parallel else 0  # Mamba that shares its layer with attention
        return self.num_layers - self.num_linear_layers - self.num_mamba_layers + beside - self.num_mlp_only_layers

    @property
    def num_mixer_layers(self) -> int:
        """Layers with a token mixer of any kind (attention, linear attention, Mamba)."""
        return self.num_layers - self.num_mlp_only_layers

    @property
    def num_mlp_layers(self) -> int:
        """Layers with an MLP (dense or MoE)."""
        return self.num_layers - self.num_mixer_only_layers

    @property
    def num_dense_layers(self) -> int:
        return self.num_mlp_layers - self.num_moe_layers

    @property
    def num_global_layers(self) -> int:
        return self.num_attention_layers - self.num_sliding_layers

    @property
    def is_sparse_attention(self) -> bool:
        """DeepSeek sparse attention: each query attends to index_topk tokens the indexer picks."""
        return self.index_topk > 0

    @property
    def attention_span(self) -> float:
        """Cached positions one query of a global layer attends to at most: index_topk under sparse
        attention, else unbounded."""
        return float(self.index_topk) if self.index_topk else math.inf

    @property
    def attention_kind(self) -> str:
        if self.is_mla:
            return "MLA"
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    @property
    def q_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.is_mla else self.head_dim

    @property
    def attn_v_head_dim(self) -> int:
        return self.v_head_dim if self.is_mla else self.head_dim

    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: K and V for each KV head, or MLA's latent + rope key."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token_per_layer(self, kv_dtype: str = "fp16") -> float:
        """Cached bytes per token in one attention layer: K and V (or MLA's latent) at kv_dtype,
        plus the sparse-attention indexer's own fp8 key (hybrid.indexer_key_bytes)."""
        from .hybrid import indexer_key_bytes

        return self.kv_elements_per_token_per_layer * bytes_per_element(kv_dtype) + indexer_key_bytes(self)

    def kv_cache_bytes_per_token(self, kv_dtype: str = "fp16") -> float:
        """KV-cache bytes per token over the attention layers (ignoring window caps); linear-attention
        and Mamba layers keep a fixed state per sequence instead (state_bytes_per_sequence)."""
        return self.num_attention_layers * self.kv_bytes_per_token_per_layer(kv_dtype)

    def state_bytes_per_sequence(self) -> float:
        """Recurrent and convolution state per sequence over all linear-attention and Mamba layers,
        bytes (16 bit), whatever the context length."""
        from .hybrid import state_bytes_per_sequence

        return state_bytes_per_sequence(self)

    # ---- parameter counts (elements) ------------------------------------------------------
    def attention_params(self) -> int:
        """One attention layer (with its sparse-attention indexer, where it has one)."""
        from .hybrid import indexer_params

        h, H, K = self.hidden_size, self.num_heads, self.num_kv_heads
        if self.is_mla:
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * H * self.q_head_dim
                 if self.q_lora_rank else h * H * self.q_head_dim)
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv += self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + H * self.v_head_dim * h + sum(indexer_params(self))
        d = self.head_dim
        n = h * (H + 2 * K) * d + H * d * h
        if self.attn_output_gate:
            n += h * H * d  # q_proj also emits a sigmoid gate per output channel
        if self.qkv_bias:
            n += (H + 2 * K) * d
        if self.qk_norm:
            n += 2 * d
        if self.attention_sinks:
            n += H
        return n

    def dense_mlp_params(self) -> int:
        h, i = self.hidden_size, self.intermediate_size
        n = (3 if self.gated_mlp else 2) * h * i
        if self.mlp_bias:
            n += (2 * i if self.gated_mlp else i) + h
        return n

    def expert_params(self) -> int:
        """One routed expert (elements)."""
        h, i = self.hidden_size, self.moe_intermediate_size
        n = 3 * h * i
        if self.expert_bias:
            n += 2 * i + h
        return n

    def moe_layer_params(self, active: bool = False) -> int:
        h = self.hidden_size
        experts = self.experts_per_token if active else self.num_experts
        n = experts * self.expert_params() + h * self.num_experts
        n += 3 * h * self.shared_expert_intermediate_size
        return n

    def norm_params_per_layer(self) -> int:
        return (4 if self.layernorm_bias else 2) * self.hidden_size

    def norm_params(self) -> int:
        """Layer norms of all layers: one before each token mixer and one before each MLP."""
        per_norm = (2 if self.layernorm_bias else 1) * self.hidden_size
        return (self.num_mixer_layers + self.num_mlp_layers) * per_norm

    def mixer_params(self) -> int:
        """Token mixers of all layers: attention, linear attention and Mamba."""
        from .hybrid import recurrent_layer_params

        return self.num_attention_layers * self.attention_params() + sum(recurrent_layer_params(self))

    def embedding_params(self) -> int:
        n = self.vocab_size * self.hidden_size
        return n if self.tie_word_embeddings else 2 * n

    def _params(self, active: bool) -> int:
        total = self.mixer_params() + self.norm_params() + self.embedding_params() + self.hidden_size
        total += self.num_dense_layers * self.dense_mlp_params()
        total += self.num_moe_layers * self.moe_layer_params(active)
        return total

    @property
    def params_total(self) -> int:
        """All parameters, the vision tower's included."""
        return self._params(active=False) + (self.vision.params if self.vision else 0)

    @property
    def params_active(self) -> int:
        """Parameters a token's forward pass reads (ACTIVE_PARAMS_CONVENTION): top-k routed experts
        instead of all, and without the input embedding table when it is not tied to the output head.
        A vision tower is left out too: it runs once per image, not per text token."""
        lookup = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        return self._params(active=self.is_moe) - lookup

    def params_active_counting(self, embeddings: str) -> int:
        """params_active counted with `embeddings` tables ("both", "output" or "none"), as some
        publishers count their active figures (untied tables only; a tied one always counts once)."""
        if embeddings not in EMBEDDING_COUNTS:
            raise InputError(f"embeddings must be one of {', '.join(EMBEDDING_COUNTS)}, got {show(embeddings)}")
        table = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        return self.params_active + {"both": table, "output": 0, "none": -table}[embeddings]

    def attention_matrix_params(self) -> int:
        """Elements of one layer's attention weight matrices (attention_params less biases, norms, sinks)."""
        from .hybrid import indexer_params

        h, H, K = self.hidden_size, self.num_heads, self.num_kv_heads
        if self.is_mla:
            q = h * self.q_lora_rank + self.q_lora_rank * H * self.q_head_dim if self.q_lora_rank else h * H * self.q_head_dim
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + H * self.v_head_dim * h + indexer_params(self)[0]
        gate = h * H * self.head_dim if self.attn_output_gate else 0
        return h * (H + 2 * K) * self.head_dim + H * self.head_dim * h + gate

    @property
    def weight_groups(self) -> tuple[str, ...]:
        """The module groups (precision.GROUPS) this model has."""
        has = {"attention": True, "mlp": self.num_dense_layers > 0, "experts": self.is_moe,
               "shared_experts": self.is_moe and self.shared_expert_intermediate_size > 0,
               "router": self.is_moe, "embeddings": True}
        return tuple(g for g in GROUPS if has[g])

    def weight_elements(self) -> dict[str, tuple[int, int]]:
        """Elements of the whole model by module group: (matrix elements, vector elements).

        Matrices take their group's precision; vectors (biases, norms, attention sinks) stay
        16 bit. `norms` holds the layer norms and the final norm. The sum is params_total.
        """
        from .hybrid import recurrent_layer_params

        La, Ld, Lm = self.num_attention_layers, self.num_dense_layers, self.num_moe_layers
        h, E = self.hidden_size, self.num_experts
        attn = self.attention_matrix_params()
        rec_matrix, rec_vectors = recurrent_layer_params(self)  # the recurrent mixers count as attention
        mlp = (3 if self.gated_mlp else 2) * h * self.intermediate_size
        expert = 3 * h * self.moe_intermediate_size
        moe = self.is_moe
        return {
            "attention": (La * attn + rec_matrix, La * (self.attention_params() - attn) + rec_vectors),
            "mlp": (Ld * mlp, Ld * (self.dense_mlp_params() - mlp)),
            "experts": (Lm * E * expert, Lm * E * (self.expert_params() - expert)) if moe else (0, 0),
            "shared_experts": (Lm * 3 * h * self.shared_expert_intermediate_size, 0) if moe else (0, 0),
            "router": (Lm * h * E, 0) if moe else (0, 0),
            "embeddings": (self.embedding_params(), 0),
            "norms": (0, self.norm_params() + h),
            # The vision tower stays 16 bit (vision.VISION_BYTES), whatever the linear layers use.
            "vision": self.vision.weight_elements() if self.vision else (0, 0),
        }

    def weight_precision(self, weight_dtype: Any = None) -> WeightPrecision:
        """The format of each module group's weights.

        None (or "checkpoint"/"auto"): as the checkpoint stores them. A precision name: the linear
        layers (attention, MLP, experts) in it, router and embeddings as the checkpoint has them
        (16 bit). A WeightPrecision: as given.
        """
        # Kept per model (derived, not a field: eq and hash ignore it), by value for names and by
        # identity for a WeightPrecision (hashing one walks all its formats).
        memo = self.__dict__.setdefault("_weight_precisions", {})
        key = (type(weight_dtype), weight_dtype if weight_dtype is None or isinstance(weight_dtype, str)
               else id(weight_dtype))
        hit = memo.get(key)
        if hit is not None and (hit[0] is weight_dtype or isinstance(weight_dtype, str)):
            return hit[1]
        wp = self._weight_precision(weight_dtype)
        if isinstance(weight_dtype, (str, WeightPrecision)) or weight_dtype is None:
            if len(memo) >= 64:
                memo.clear()
            memo[key] = (weight_dtype, wp)  # the object is kept, so that its id stays its own
        return wp

    def _weight_precision(self, weight_dtype: Any) -> WeightPrecision:
        if weight_dtype is None or (isinstance(weight_dtype, str) and weight_dtype.strip().lower() in CHECKPOINT + ("",)):
            if self.checkpoint_precision is None:
                raise InputError(f"{self.checkpoint_problem}; give a weight precision (--weight-dtype) instead")
            wp = self.checkpoint_precision
        elif isinstance(weight_dtype, WeightPrecision):
            wp = check_weight_precision(weight_dtype)
        else:
            try:
                name = normalize(weight_dtype, field="weight_dtype")
            except InputError as e:
                raise InputError(f"{e}, or checkpoint") from None
            wp = (self.checkpoint_precision or WeightPrecision.uniform("fp16")).with_linear(name)
        return wp.for_groups(self.weight_groups)

    def weight_bytes_by_group(self, weight_dtype: Any = None) -> dict[str, float]:
        """Bytes of each module group (and `norms`): matrices at the group's bytes per element
        (scales included), vectors at 2 bytes."""
        wp = self.weight_precision(weight_dtype)
        memo = self.__dict__.setdefault("_weight_bytes", {})
        hit = memo.get(id(wp))
        if hit is None or hit[0] is not wp:
            if len(memo) >= 64:
                memo.clear()
            hit = memo[id(wp)] = (wp, {g: matrix * (wp.bytes(g) if g in GROUPS else 2.0) + vectors * 2.0
                                       for g, (matrix, vectors) in self.weight_elements().items()})
        return dict(hit[1])

    def weight_bytes(self, weight_dtype: Any = None) -> float:
        """Bytes of all weights. None: as the checkpoint stores them; a precision name: the linear
        layers in it (norms, biases, routers and embedding tables stay 16 bit)."""
        return sum(self.weight_bytes_by_group(weight_dtype).values())

    def summary(self) -> dict[str, Any]:
        """The fields `models show` prints (SPEC.md) plus derived figures."""
        d = {k: v for k, v in asdict(self).items()
             if k not in ("aliases", "variants", "checkpoint_precision", "checkpoint_problem", "vision")}
        readable = self.checkpoint_precision is not None
        checkpoint = self.weight_precision() if readable else None
        d.update(
            id=self.id,
            aliases=list(self.aliases),
            layers=self.num_layers,
            heads=self.num_heads,
            kv_heads=self.num_kv_heads,
            experts=self.num_experts,
            experts_per_token=self.experts_per_token,
            # The MLP width: of the dense layers, or of one routed expert when every layer is MoE.
            intermediate_size=self.intermediate_size or self.moe_intermediate_size,
            dense_intermediate_size=self.intermediate_size,
            attention=self.attention_kind,
            params_total=self.params_total,
            params_active=self.params_active,
            params_active_convention=ACTIVE_PARAMS_CONVENTION,
            # Ours over the publisher's figure, minus one (None without a published figure).
            params_total_vs_published=_relative(self.params_total, self.published_params),
            params_active_vs_published=_relative(self.params_active, self.published_active_params),
            # Ours recounted with the embedding tables the publisher counts, when that is known.
            params_active_counted_as_published=(self.params_active_counting(self.published_active_embeddings)
                                                if self.published_active_embeddings else None),
            variants=list(self.variants),
            kv_cache_bytes_per_token=int(self.kv_cache_bytes_per_token("fp16")),
            state_bytes_per_sequence=int(self.state_bytes_per_sequence()),
            layer_kinds={"attention": self.num_attention_layers, "linear_attention": self.num_linear_layers,
                         "mamba2": self.num_mamba_layers, "mlp_only": self.num_mlp_only_layers},
            weight_dtype=checkpoint.label if checkpoint else None,  # as the checkpoint stores the weights
            weight_formats=checkpoint.to_dict() if checkpoint else {},
            weight_gb={**({"checkpoint": self.weight_bytes() / 1e9} if readable else {}),
                       **{p: self.weight_bytes(p) / 1e9 for p in ("fp16", "fp8", "int4")}},
        )
        if not readable:
            d["weight_dtype_error"] = self.checkpoint_problem
        d["vision"] = self.vision.summary() if self.vision else None
        return d


def _relative(ours: int, published: float | None) -> float | None:
    return None if not published else ours / published - 1.0


# ---- validation ----------------------------------------------------------------------------

MAX_SIZE = 10**8  # no real model has a width, count or vocabulary near this: larger is a typo
MAX_LENGTH = 10**9  # windows and context lengths, in tokens
_AT_LEAST_ONE = {"num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size"}
_META_KEYS = {"id", "aliases", "published_params", "published_active_params", "published_active_embeddings",
              "params_source", "config_source",
              "config_notes", "base_id", "variants", "config"}
_VARIANT_KEYS = {"id", "note", "config"}


def _check_spec(m: ModelSpec) -> None:
    """InputError unless a ModelSpec's sizes are whole numbers in range and consistent with each other."""
    if not isinstance(m.id, str) or not m.id.strip():
        raise InputError(f"model id must be a non-empty string, got {show(m.id)}")
    where = f"model {m.id}"
    for f in fields(m):
        v = getattr(m, f.name)
        if f.type in ("int", int):  # annotations are strings under `from __future__ import annotations`
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise InputError(f"{where}: {f.name} must be a whole number, got {show(v)}")
            lo = 1 if f.name in _AT_LEAST_ONE else 0
            hi = MAX_LENGTH if f.name in ("sliding_window", "max_context") else MAX_SIZE
            if not lo <= int(v) <= hi:
                raise InputError(f"{where}: {f.name} = {v} is out of range ({lo} to {hi:,})")
        elif f.type in ("bool", bool) and not isinstance(v, bool):
            raise InputError(f"{where}: {f.name} must be true or false, got {show(v)}")
        elif f.type == "float | None" and v is not None and (
                isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0):
            raise InputError(f"{where}: {f.name} must be a positive number or null, got {show(v)}")
    if m.num_heads % m.num_kv_heads:
        raise InputError(f"{where}: num_heads ({m.num_heads}) is not a multiple of num_kv_heads ({m.num_kv_heads})")
    for name in ("num_sliding_layers", "num_moe_layers"):
        if getattr(m, name) > m.num_layers:
            raise InputError(f"{where}: {name} = {getattr(m, name)} exceeds the {m.num_layers} layers")
    if m.num_sliding_layers and not m.sliding_window:
        raise InputError(f"{where}: {m.num_sliding_layers} sliding-window layers need sliding_window >= 1")
    if m.num_moe_layers:
        if not 1 <= m.experts_per_token <= m.num_experts:
            raise InputError(f"{where}: experts_per_token = {m.experts_per_token} must be from 1 to the "
                             f"{m.num_experts} experts")
        if not m.moe_intermediate_size:
            raise InputError(f"{where}: MoE layers need moe_intermediate_size >= 1")
    if m.num_dense_layers and not m.intermediate_size:
        raise InputError(f"{where}: {m.num_dense_layers} dense layers need intermediate_size >= 1")
    if m.kv_lora_rank:
        for name in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            if not getattr(m, name):
                raise InputError(f"{where}: multi-head latent attention (kv_lora_rank > 0) needs {name} >= 1")
    _check_hybrid(m, where)
    if m.checkpoint_precision is not None:
        check_weight_precision(m.checkpoint_precision, f"{where}: checkpoint_precision")
    elif not isinstance(m.checkpoint_problem, str) or not m.checkpoint_problem:
        raise InputError(f"{where}: checkpoint_precision is None, so checkpoint_problem must say why")
    if m.published_active_embeddings not in ("", *EMBEDDING_COUNTS):
        raise InputError(f"{where}: published_active_embeddings must be one of {', '.join(EMBEDDING_COUNTS)}, "
                         f"got {show(m.published_active_embeddings)}")
    for name in ("aliases", "variants"):
        v = getattr(m, name)
        if not isinstance(v, tuple) or not all(isinstance(a, str) for a in v):
            raise InputError(f"{where}: {name} must be a tuple of strings, got {show(v)}")
    if m.vision is not None and not isinstance(m.vision, VisionSpec):
        raise InputError(f"{where}: vision must be a VisionSpec or None, got {type(m.vision).__name__}")


def _check_hybrid(m: ModelSpec, where: str) -> None:
    """InputError unless the layer kinds add up and each mixer kind present has its sizes."""
    mixers = m.num_linear_layers + (0 if m.mamba_parallel else m.num_mamba_layers) + m.num_mlp_only_layers
    if mixers > m.num_layers or m.num_mamba_layers > m.num_layers:
        raise InputError(f"{where}: {m.num_linear_layers} linear-attention + {m.num_mamba_layers} Mamba + "
                         f"{m.num_mlp_only_layers} MLP-only layers exceed the {m.num_layers} layers")
    if m.num_mlp_only_layers + m.num_mixer_only_layers > m.num_layers:
        raise InputError(f"{where}: {m.num_mlp_only_layers} MLP-only + {m.num_mixer_only_layers} mixer-only "
                         f"layers exceed the {m.num_layers} layers")
    if m.num_sliding_layers > m.num_attention_layers:
        raise InputError(f"{where}: {m.num_sliding_layers} sliding-window layers exceed the "
                         f"{m.num_attention_layers} attention layers")
    if m.num_moe_layers > m.num_mlp_layers:
        raise InputError(f"{where}: {m.num_moe_layers} MoE layers exceed the {m.num_mlp_layers} layers with an MLP")
    needs = {"num_linear_layers": ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                                   "linear_value_head_dim", "linear_conv_kernel"),
             "num_mamba_layers": ("mamba_num_heads", "mamba_head_dim", "ssm_state_size", "mamba_groups",
                                  "mamba_conv_kernel", "mamba_chunk_size"),
             "index_topk": ("index_n_heads", "index_head_dim")}
    for kind, sizes in needs.items():
        if getattr(m, kind):
            for name in sizes:
                if not getattr(m, name):
                    raise InputError(f"{where}: {kind} = {getattr(m, kind)} needs {name} >= 1")
    if m.num_linear_layers and m.linear_num_value_heads % m.linear_num_key_heads:
        raise InputError(f"{where}: linear_num_value_heads ({m.linear_num_value_heads}) is not a multiple of "
                         f"linear_num_key_heads ({m.linear_num_key_heads})")
    if m.num_mamba_layers and m.mamba_num_heads % m.mamba_groups:
        raise InputError(f"{where}: mamba_num_heads ({m.mamba_num_heads}) is not a multiple of n_groups "
                         f"({m.mamba_groups})")
    if m.index_topk and not m.is_mla:
        raise InputError(f"{where}: sparse attention (index_topk) is modelled for multi-head latent attention only")


# ---- config.json parsing ------------------------------------------------------------------

_MISSING = object()


def _lookup(cfg: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The first of `names` the config sets (not null) and its value; (names[0], None) if none."""
    for n in names:
        if cfg.get(n) is not None:
            return n, cfg[n]
    return names[0], None


def _whole(where: str, name: str, v: Any, minimum: int, maximum: int = MAX_SIZE) -> int:
    """A whole number (4096 or 4096.0; not true, "4096", 4096.5, NaN or inf) in [minimum, maximum]."""
    if (isinstance(v, bool) or not isinstance(v, (numbers.Integral, float))
            or (isinstance(v, float) and not (math.isfinite(v) and v.is_integer()))):
        raise InputError(f"{where}: {name} must be a whole number, got {show(v)}")
    n = int(v)
    if not minimum <= n <= maximum:
        raise InputError(f"{where}: {name} = {show(v)} is out of range ({minimum} to {maximum:,})")
    return n


def _int(cfg: dict[str, Any], *names: str, default: Any = _MISSING, where: str = "config", minimum: int = 1,
         maximum: int = MAX_SIZE) -> int:
    """The first field of `names` present, validated; `default` (unchecked) when none is."""
    name, v = _lookup(cfg, names)
    if v is None:
        if default is _MISSING:
            raise InputError(f"{where}: missing field {names[0]!r}"
                             + (f" (or {', '.join(names[1:])})" if names[1:] else ""))
        return int(default)
    return _whole(where, name, v, minimum, maximum)


def _flag(cfg: dict[str, Any], name: str, where: str, default: Any = False) -> Any:
    """A boolean field: true, false, or absent/null (default)."""
    v = cfg.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise InputError(f"{where}: {name} must be true or false, got {show(v)}")
    return v


def _list(cfg: dict[str, Any], name: str, where: str) -> list[Any] | None:
    v = cfg.get(name)
    if v is not None and not isinstance(v, list):
        raise InputError(f"{where}: {name} must be a list, got {show(v)}")
    return v


def _per_layer(cfg: dict[str, Any], name: str, layers: int, where: str) -> list[Any] | None:
    """A list with one entry per layer (layer_types, no_rope_layers), or None when absent or empty."""
    v = _list(cfg, name, where)
    if not v:
        return None
    if len(v) != layers:
        raise InputError(f"{where}: {name} lists {len(v)} layers, but the model has {layers}")
    return v


def _sliding_layers(cfg: dict[str, Any], layers: int, model_type: str, window: int, where: str) -> int:
    """How many layers attend within a window (the rest attend globally)."""
    types = _per_layer(cfg, "layer_types", layers, where)
    if types is not None and not all(isinstance(t, str) for t in types):
        raise InputError(f"{where}: layer_types must be a list of strings, got {show(types)}")
    no_rope = _per_layer(cfg, "no_rope_layers", layers, where) if model_type in ("llama4", "llama4_text") else None
    if no_rope is not None and not all(isinstance(x, bool) or x in (0, 1) for x in no_rope):
        raise InputError(f"{where}: no_rope_layers must hold 0 or 1 per layer, got {show(no_rope)}")
    if not window:
        return 0
    if types is not None:
        return sum(1 for t in types if "sliding" in t or "chunked" in t)
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if not _flag(cfg, "use_sliding_window", where):
            return 0
        # Qwen: layers with index >= max_window_layers use the window.
        return max(0, layers - _int(cfg, "max_window_layers", default=layers, minimum=0, where=where))
    if model_type == "gemma2":
        return (layers + 1) // 2  # even-indexed layers are local
    if model_type in ("gemma3", "gemma3_text"):
        pattern = _int(cfg, "sliding_window_pattern", default=6, where=where)
        return layers - layers // pattern  # every pattern-th layer is global
    if model_type in ("llama4", "llama4_text"):
        if no_rope is not None:
            return sum(1 for x in no_rope if x)  # rope layers use chunked (local) attention
        return layers - layers // 4  # every fourth layer is global (NoPE)
    return layers


def _moe_layers(cfg: dict[str, Any], layers: int, model_type: str, where: str) -> int:
    """How many layers have a mixture-of-experts MLP (the rest are dense)."""
    if model_type.startswith("llama4"):
        return layers // _int(cfg, "interleave_moe_layer_step", default=1, where=where)
    if cfg.get("expert_layer_period") is not None:  # Jamba: every period-th layer from the offset
        period = _int(cfg, "expert_layer_period", maximum=layers, where=where)
        offset = _int(cfg, "expert_layer_offset", default=0, minimum=0, maximum=period - 1, where=where)
        return len([i for i in range(layers) if i % period == offset])
    if cfg.get("first_k_dense_replace") is not None:
        first = _int(cfg, "first_k_dense_replace", minimum=0, maximum=layers, where=where)
        freq = _int(cfg, "moe_layer_freq", default=1, where=where)
        return len([i for i in range(first, layers) if i % freq == 0])
    step = _int(cfg, "decoder_sparse_step", default=1, where=where)
    dense_only = set(_whole(where, "mlp_only_layers[]", i, 0, layers - 1)
                     for i in _list(cfg, "mlp_only_layers", where) or [])
    return len([i for i in range(layers) if (i + 1) % step == 0 and i not in dense_only])


# Nemotron-H's hybrid_override_pattern: one character per block.
_PATTERN_KINDS = {"M": "mamba", "*": "attention", "-": "mlp"}


def _layer_kinds(cfg: dict[str, Any], layers: int, where: str) -> list[str] | None:
    """Each layer's kind (attention, linear_attention, mamba, mlp) for hybrid configs; None for
    a model whose every layer is attention + MLP."""
    pattern = cfg.get("hybrid_override_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or len(pattern) != layers:
            raise InputError(f"{where}: hybrid_override_pattern must be a string of one character per layer "
                             f"({layers}), got {show(pattern)}")
        unknown = sorted(set(pattern) - set(_PATTERN_KINDS))
        if unknown:
            raise InputError(f"{where}: hybrid_override_pattern holds {''.join(unknown)!r}; this tool models "
                             f"M (Mamba-2), * (attention) and - (MLP) blocks")
        return [_PATTERN_KINDS[c] for c in pattern]
    types = _per_layer(cfg, "layer_types", layers, where)
    if types is not None and any(t in ("linear_attention", "mamba") for t in types):
        return ["linear_attention" if t == "linear_attention" else "mamba" if t == "mamba" else "attention"
                for t in types]
    period = cfg.get("attn_layer_period")
    if period is not None and cfg.get("mamba_d_state") is not None:  # Jamba: attention every period-th layer
        n = _whole(where, "attn_layer_period", period, 1, layers)
        offset = _int(cfg, "attn_layer_offset", default=0, minimum=0, maximum=n - 1, where=where)
        return ["attention" if i % n == offset else "mamba1" for i in range(layers)]
    interval = cfg.get("full_attention_interval")
    if interval is not None:
        n = _whole(where, "full_attention_interval", interval, 1, layers)
        return ["attention" if (i + 1) % n == 0 else "linear_attention" for i in range(layers)]
    return None


def _hybrid_fields(cfg: dict[str, Any], layers: int, where: str) -> dict[str, Any]:
    """ModelSpec fields of linear-attention (Gated DeltaNet) and Mamba-2 layers; {} for a model
    without them. Nemotron-H blocks hold one part each: a mixer (M, *) or an MLP (-)."""
    if cfg.get("mamba_d_ssm") is not None or cfg.get("model_type") == "falcon_h1":
        return _parallel_mamba_fields(cfg, layers, where)
    kinds = _layer_kinds(cfg, layers, where)
    if kinds is None:
        return {}
    out: dict[str, Any] = {"num_linear_layers": kinds.count("linear_attention")}
    if out["num_linear_layers"]:
        out.update(
            linear_num_key_heads=_int(cfg, "linear_num_key_heads", where=where),
            linear_num_value_heads=_int(cfg, "linear_num_value_heads", where=where),
            linear_key_head_dim=_int(cfg, "linear_key_head_dim", where=where),
            linear_value_head_dim=_int(cfg, "linear_value_head_dim", where=where),
            linear_conv_kernel=_int(cfg, "linear_conv_kernel_dim", default=4, where=where),
        )
    if "hybrid_override_pattern" in cfg:
        out.update(num_mlp_only_layers=kinds.count("mlp"), num_mixer_only_layers=layers - kinds.count("mlp"))
    if "mamba1" in kinds:
        hidden = _int(cfg, "hidden_size", where=where)
        inner = _int(cfg, "mamba_expand", default=2, where=where) * hidden
        out.update(num_mamba_layers=kinds.count("mamba1"), mamba_num_heads=inner, mamba_head_dim=1,
                   ssm_state_size=_int(cfg, "mamba_d_state", where=where), mamba_groups=1,
                   mamba_conv_kernel=_int(cfg, "mamba_d_conv", default=4, where=where),
                   mamba_dt_rank=_int(cfg, "mamba_dt_rank", default=math.ceil(hidden / 16), where=where),
                   mamba_chunk_size=MAMBA1_CHUNK_TOKENS)
        return out
    out["num_mamba_layers"] = kinds.count("mamba")
    if out["num_mamba_layers"]:
        hidden = _int(cfg, "hidden_size", where=where)
        heads = _int(cfg, "mamba_num_heads", where=where)
        head_dim = _int(cfg, "mamba_head_dim", default=_int(cfg, "expand", default=2, where=where) * hidden // heads,
                        where=where)
        out.update(mamba_num_heads=heads, mamba_head_dim=head_dim,
                   ssm_state_size=_int(cfg, "ssm_state_size", "state_size", where=where),
                   mamba_groups=_int(cfg, "n_groups", default=1, where=where),
                   mamba_conv_kernel=_int(cfg, "conv_kernel", default=4, where=where),
                   mamba_chunk_size=_int(cfg, "chunk_size", default=256, where=where))
    return out


def _parallel_mamba_fields(cfg: dict[str, Any], layers: int, where: str) -> dict[str, Any]:
    """Falcon-H1: every layer runs attention and a Mamba-2 mixer side by side on the same input
    and sums them, then its MLP."""
    heads = _int(cfg, "mamba_n_heads", where=where)
    d_ssm = _int(cfg, "mamba_d_ssm", default=0, minimum=0, where=where)
    head_dim_value = cfg.get("mamba_d_head")
    if head_dim_value is None or head_dim_value == "auto":
        if not d_ssm or d_ssm % heads:
            raise InputError(f"{where}: mamba_d_head is {show(head_dim_value)}, so mamba_d_ssm ({d_ssm}) must be "
                             f"a multiple of mamba_n_heads ({heads})")
        head_dim = d_ssm // heads
    else:
        head_dim = _whole(where, "mamba_d_head", head_dim_value, 1)
    return dict(num_mamba_layers=layers, mamba_parallel=True, mamba_num_heads=heads, mamba_head_dim=head_dim,
                ssm_state_size=_int(cfg, "mamba_d_state", where=where),
                mamba_groups=_int(cfg, "mamba_n_groups", default=1, where=where),
                mamba_conv_kernel=_int(cfg, "mamba_d_conv", default=4, where=where),
                mamba_chunk_size=_int(cfg, "mamba_chunk_size", default=256, where=where))


def _sparse_attention_fields(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """DeepSeek sparse attention: the indexer's heads and width and the tokens each query keeps."""
    if cfg.get("index_topk") is None:
        return {}
    return dict(index_topk=_int(cfg, "index_topk", maximum=MAX_LENGTH, where=where),
                index_n_heads=_int(cfg, "index_n_heads", where=where),
                index_head_dim=_int(cfg, "index_head_dim", where=where))


def _check_meta(meta: dict[str, Any], where: str) -> None:
    """Catalog metadata: known keys, aliases a list of strings, sources strings, params numbers."""
    extra = set(meta) - _META_KEYS
    if extra:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
    aliases = meta.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise InputError(f"{where}: aliases must be a list of non-empty strings, got {show(aliases)}")
    for key in ("params_source", "config_source", "config_notes", "base_id"):
        if not isinstance(meta.get(key, ""), str):
            raise InputError(f"{where}: {key} must be a string, got {show(meta[key])}")
    counts = meta.get("published_active_embeddings", "")
    if counts not in ("", *EMBEDDING_COUNTS):
        raise InputError(f"{where}: published_active_embeddings must be one of {', '.join(EMBEDDING_COUNTS)}, "
                         f"got {show(counts)}")
    variants = meta.get("variants", [])
    if not isinstance(variants, list):
        raise InputError(f"{where}: variants must be a list of objects, got {show(variants)}")
    for i, v in enumerate(variants):
        w = f"{where}: variants[{i}]"
        if not isinstance(v, dict):
            raise InputError(f"{w} must be an object with id and note, got {show(v)}")
        extra = set(v) - _VARIANT_KEYS
        if extra:
            raise InputError(f"{w}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        for key in ("id", "note"):
            if not isinstance(v.get(key), str) or not v[key].strip():
                raise InputError(f"{w}.{key} must be a non-empty string, got {show(v.get(key))}")
        if v["id"].count("/") != 1:
            raise InputError(f"{w}.id must be a Hub id owner/name, got {show(v['id'])}")
        if not isinstance(v.get("config", {}), dict):
            raise InputError(f"{w}.config must be an object of the config fields that differ, got {show(v['config'])}")


def model_from_config(cfg: Any, *, model_id: str = "custom", meta: dict[str, Any] | None = None) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config mapping. Never executes remote code.

    Every field read is checked (whole numbers in range, booleans, lists) and the sizes for
    consistency; anything else raises InputError naming the field and the value.
    """
    where = f"config of {model_id}"
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    top_type = cfg.get("model_type") or ""
    if not isinstance(top_type, str):
        raise InputError(f"{where}: model_type must be a string, got {show(top_type)}")
    top = cfg
    text_config = cfg.get("text_config")
    if text_config is not None:
        if not isinstance(text_config, dict):
            raise InputError(f"{where}: text_config must be an object, got {show(text_config)}")
        # Multimodal wrappers (Gemma 3, Llama 4) nest the language model.
        inner = dict(text_config)
        inner.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings", inner.get("tie_word_embeddings")))
        cfg = inner
    model_type = cfg.get("model_type") or top_type
    if not isinstance(model_type, str):
        raise InputError(f"{where}: text_config.model_type must be a string, got {show(model_type)}")
    if model_type and model_type not in KNOWN_MODEL_TYPES:
        warnings.warn(f"{where}: model_type {model_type!r} is not one this tool knows; reading standard fields",
                      stacklevel=2)
    if not model_type:
        warnings.warn(f"{where}: no model_type; reading standard fields", stacklevel=2)
    model_type = _TEXT_TOWER_TYPES.get(model_type, model_type)

    hidden = _int(cfg, "hidden_size", "n_embd", "d_model", where=where)
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers", where=where)
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads", where=where)
    multi_query = _flag(cfg, "multi_query", where) and not _flag(cfg, "new_decoder_architecture", where)
    kv_heads = _int(cfg, "num_key_value_heads", "num_kv_heads", "multi_query_group_num", "n_head_kv",
                    default=1 if multi_query else heads, where=where)
    if heads % kv_heads:
        raise InputError(f"{where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})")
    vocab = _int(cfg, "vocab_size", "padded_vocab_size", where=where)
    gelu_mlp = model_type in _GELU_MLP_TYPES or cfg.get("mlp_hidden_act") == "relu2"  # Nemotron-H: relu^2, no gate
    intermediate = _int(cfg, "intermediate_size_mlp" if model_type.startswith("llama4") else "intermediate_size",
                        "intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim",
                        default=4 * hidden, where=where)
    tie = _flag(cfg, "tie_word_embeddings", where, default=None)
    if tie is None:
        tie = model_type in ("falcon", "RefinedWeb", "RefinedWebModel", "gemma", "gemma2", "gemma3", "gemma3_text")

    # Mixture of experts.
    experts = _int(cfg, "num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts", default=0,
                   minimum=0, where=where)
    top_k = _int(cfg, "num_experts_per_tok", "experts_per_token", "moe_topk", "num_experts_per_token", default=0,
                 minimum=0, where=where)
    moe_inter = 0
    shared = 0
    moe_layers = 0
    if experts:
        if not 1 <= top_k <= experts:
            raise InputError(f"{where}: num_experts_per_tok = {top_k} must be from 1 to the {experts} experts")
        # Routed-expert width: moe_intermediate_size where given, else intermediate_size
        # (Mixtral, gpt-oss and Llama 4 name the expert width so).
        moe_inter = _int(cfg, "moe_intermediate_size", "intermediate_size", where=where)
        shared = _int(cfg, "n_shared_experts", "num_shared_experts", default=0, minimum=0, where=where) * moe_inter
        shared = _int(cfg, "shared_expert_intermediate_size", default=0, minimum=0, where=where) or shared
        if model_type.startswith("llama4"):
            shared = moe_inter  # one shared expert of the routed experts' width
        moe_layers = _moe_layers(cfg, layers, model_type, where)
    hybrid = _hybrid_fields(cfg, layers, where)

    # Multi-head latent attention.
    kv_lora = _int(cfg, "kv_lora_rank", default=0, minimum=0, where=where)
    mla: dict[str, Any] = dict(q_lora_rank=0, kv_lora_rank=0, qk_rope_head_dim=0, qk_nope_head_dim=0, v_head_dim=0)
    if kv_lora:
        mla = dict(
            q_lora_rank=_int(cfg, "q_lora_rank", default=0, minimum=0, where=where),
            kv_lora_rank=kv_lora,
            qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where=where),
            qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", where=where),
            v_head_dim=_int(cfg, "v_head_dim", where=where),
        )
        kv_heads = heads  # MLA decompresses to every head; the cache is the shared latent

    # Head width: explicit, or hidden_size / heads (which must then divide; MLA has its own widths).
    dim_name, dim = _lookup(cfg, ("head_dim", "kv_channels", "attention_head_dim"))
    if dim is not None:
        head_dim = _whole(where, dim_name, dim, 1)
    elif hidden % heads and not kv_lora:
        raise InputError(f"{where}: hidden_size {hidden} is not divisible by {heads} heads and no head_dim is given")
    else:
        head_dim = max(hidden // heads, 1)

    window = (_int(cfg, "sliding_window", default=0, minimum=0, maximum=MAX_LENGTH, where=where)
              or _int(cfg, "attention_chunk_size", default=0, minimum=0, maximum=MAX_LENGTH, where=where))
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and not _flag(cfg, "use_sliding_window", where):
        window = 0
    n_sliding = _sliding_layers(cfg, layers, model_type, window, where)
    max_positions = _int(cfg, "max_position_embeddings", default=0, minimum=0, maximum=MAX_LENGTH, where=where)
    if window and window >= max_positions > 0:
        window, n_sliding = 0, 0  # a window as long as the context changes nothing
    if not n_sliding:
        window = 0

    # The quantization config sits at the top of multimodal wrappers; the dtype may sit in either.
    quant_cfg = {**cfg, **{k: top[k] for k in ("quantization_config", "torch_dtype", "dtype") if top.get(k) is not None}}
    # A quantization_config that cannot be read is reported when the checkpoint's precision is
    # needed, so that an explicit weight precision still works.
    try:
        stored: WeightPrecision | None = checkpoint_precision(quant_cfg, hidden_size=hidden, num_layers=layers,
                                                              where=where, model_type=model_type)
        problem = ""
    except InputError as e:
        stored, problem = None, str(e)

    meta = meta or {}
    _check_meta(meta, where)
    return ModelSpec(
        id=model_id,
        model_type=model_type or "unknown",
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate if moe_layers < layers - hybrid.get("num_mixer_only_layers", 0) else 0,
        vocab_size=vocab,
        tie_word_embeddings=bool(tie),
        gated_mlp=not gelu_mlp,
        layernorm_bias=model_type in _LAYERNORM_TYPES,
        qkv_bias=(_flag(cfg, "attention_bias", where) or _flag(cfg, "qkv_bias", where)
                  or _flag(cfg, "add_qkv_bias", where) or model_type in ("qwen2", "qwen2_moe")),
        mlp_bias=_flag(cfg, "mlp_bias", where) or model_type == "gptj",
        qk_norm=(model_type in ("qwen3", "qwen3_moe", "qwen3_next", "gemma3", "gemma3_text", "olmo2")
                 or (model_type == "glm4_moe" and _flag(cfg, "use_qk_norm", where))),  # GLM-4.5/4.6: per config
        sliding_window=window,
        num_sliding_layers=n_sliding,
        num_experts=experts,
        experts_per_token=top_k if experts else 0,
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared,
        num_moe_layers=moe_layers,
        expert_bias=model_type == "gpt_oss",
        attention_sinks=model_type == "gpt_oss",
        attn_output_gate=_flag(cfg, "attn_output_gate", where, default=model_type == "qwen3_next"),
        **hybrid,
        **_sparse_attention_fields(cfg, where),
        checkpoint_precision=stored,
        checkpoint_problem=problem,
        aliases=tuple(a.lower() for a in meta.get("aliases", [])),
        published_params=meta.get("published_params"),
        published_active_params=meta.get("published_active_params"),
        published_active_embeddings=meta.get("published_active_embeddings", ""),
        params_source=meta.get("params_source", ""),
        config_source=meta.get("config_source", ""),
        config_notes=meta.get("config_notes", ""),
        base_id=meta.get("base_id", ""),
        variants=tuple(v["id"] for v in meta.get("variants", [])),
        catalog_entry="",  # set by the catalog loader
        catalog_file="",
        max_context=max_positions,
        vision=vision_from_config(top, hidden, where),
        **mla,
    )


def read_json(path: Path, what: str) -> Any:
    """A JSON file (a regular file of at most MAX_CONFIG_BYTES) as plain data; InputError otherwise."""
    text = read_text(path, what, limit=MAX_CONFIG_BYTES)
    return parse_json(text, f"{what} {clean_name(str(path))}")


def load_config_file(path: str | Path) -> ModelSpec:
    """A model from a local `config.json`, or a folder holding one."""
    try:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "config.json"
        exists = p.exists()
    except (OSError, RuntimeError, ValueError) as e:  # unknown ~user, name too long, NUL byte
        raise InputError(f"cannot read model config {show(str(path))}: {getattr(e, 'strerror', None) or e}") from None
    if not exists:
        raise InputError(f"no config file at {clean_name(str(p))!r}")
    cfg = read_json(p, "model config")
    name = p.parent.name if p.name == "config.json" else p.stem
    return model_from_config(cfg, model_id=name)


@functools.lru_cache(maxsize=1)
def _catalog_entries() -> dict[str, tuple[Path, dict[str, Any]]]:
    """Bundled catalog files by model id: (path, the file's JSON object)."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in catalog_files("models", (".json",)):
        entry = read_json(path, "catalog entry")
        if not isinstance(entry, dict) or "config" not in entry or "id" not in entry:
            raise InputError(f"{path}: catalog entry needs 'id' and 'config'")
        if entry["id"] in out:
            raise InputError(f"{path}: model id {entry['id']!r} is already in the catalog")
        out[entry["id"]] = (path, entry)
    return out


@functools.cache
def _catalog_spec(ident: str) -> ModelSpec:
    """One bundled model, built once per process: the catalog and a lookup by name share the object."""
    path, entry = _catalog_entries()[ident]
    spec = model_from_config(entry["config"], model_id=ident, meta=entry)
    return dataclasses.replace(spec, catalog_entry=ident, catalog_file=_relative_path(path))


@functools.lru_cache(maxsize=1)
def model_catalog() -> dict[str, ModelSpec]:
    """Bundled models by Hugging Face id."""
    return {ident: _catalog_spec(ident) for ident in _catalog_entries()}


def _relative_path(path: Path) -> str:
    """A catalog file as `catalog/models/NAME.json` (where it sits in the package)."""
    return f"catalog/{path.parent.name}/{path.name}"


def _variant_names(spec: ModelSpec) -> list[str]:
    """Ids an entry serves besides its own: its base model (base_id) and its variants."""
    return [*([spec.base_id] if spec.base_id else []), *spec.variants]


def known_model_names() -> list[str]:
    """Every Hub id the catalog serves: entries, their base models and their variants."""
    return [n for s in model_catalog().values() for n in (s.id, *_variant_names(s))]


def _lookup_table() -> dict[str, str]:
    """Lower-cased names -> the catalog entry serving them."""
    return name_table("model", [(s.id, (*s.aliases, *_variant_names(s)),
                                 [n.split("/")[-1] for n in (s.id, *_variant_names(s))])
                                for s in model_catalog().values()])


@functools.lru_cache(maxsize=1)
def _entry_table() -> dict[str, str] | None:
    """`_lookup_table` from the catalog files' metadata alone, without building all 62 models
    (about 15 ms of a 0.3 s command that needs one); None if an entry's names are not plainly
    stated (then only the full catalog can say, with its error messages)."""
    entries = []
    for ident, (_, entry) in _catalog_entries().items():
        aliases, base, variants = entry.get("aliases", []), entry.get("base_id", ""), entry.get("variants", [])
        if (not isinstance(ident, str) or not isinstance(aliases, list)
                or not all(isinstance(a, str) and a.strip() for a in aliases) or not isinstance(base, str)
                or not isinstance(variants, list)
                or not all(isinstance(v, dict) and isinstance(v.get("id"), str) for v in variants)):
            return None
        served = [*([base] if base else []), *(v["id"] for v in variants)]  # as _variant_names
        entries.append((ident, (*(a.lower() for a in aliases), *served),
                        [n.split("/")[-1] for n in (ident, *served)]))
    try:
        return name_table("model", entries)
    except InputError:
        return None


@functools.lru_cache(maxsize=256)
def _variant_spec(entry_id: str, variant_id: str) -> ModelSpec:
    """Another repository served by a catalog entry: the entry's config (with the fields the
    variant changes), named as that repository, saying which file serves it."""
    spec = _catalog_spec(entry_id)
    path, entry = _catalog_entries()[entry_id]
    if variant_id == spec.base_id:
        note = (f"architecture of {spec.id} (the instruct model tuned from {spec.base_id}: same config "
                f"fields), served by {spec.catalog_file}")
        return dataclasses.replace(spec, id=variant_id, aliases=(), variants=(), config_notes=note)
    variant = next(v for v in entry.get("variants", []) if v["id"] == variant_id)
    changed = variant.get("config", {})
    config = {**entry["config"], **changed}
    meta = {k: v for k, v in entry.items() if k not in ("id", "aliases", "variants")}
    built = model_from_config(config, model_id=variant_id, meta=meta)
    differs = f"; config fields changed: {', '.join(sorted(changed))}" if changed else ""
    note = f"{variant['note']} Served by {spec.catalog_file}, the config of {spec.id}{differs}."
    return dataclasses.replace(built, catalog_entry=entry_id, catalog_file=spec.catalog_file, config_notes=note)


def _bundled_in_full(key: str) -> ModelSpec | None:
    """`_bundled` through the whole catalog (a name the metadata table does not hold: a path, a
    Hub id, a typo; the catalog is built as before, and a broken entry reported)."""
    model_catalog()
    return _bundled(key)


def _bundled(key: str) -> ModelSpec | None:
    """The bundled model a name resolves to (id, alias, base or variant id, or its part after the
    slash), named as asked for base and variant ids; None if the catalog has no such name."""
    fast = _entry_table() if model_catalog.cache_info().currsize == 0 else None
    entry_id = (fast if fast is not None else _lookup_table()).get(key.lower())
    if entry_id is None:
        return None if fast is None else _bundled_in_full(key)
    spec = _catalog_spec(entry_id)
    if key.lower() == spec.id.lower():
        return spec
    for name in _variant_names(spec):
        if key.lower() in (name.lower(), name.split("/")[-1].lower()):
            return _variant_spec(entry_id, name)
    return spec


def _fetch_from_hub(repo_id: str) -> ModelSpec:
    """Download only config.json of a Hub repo (cached by huggingface_hub); no remote code."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise unknown_name("model", repo_id, known_model_names()) from None
    import logging  # here: only a Hub download needs it, and importing it costs a few ms per command

    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry messages would break the one-line error contract
    try:
        path = hf_hub_download(repo_id, "config.json")
    except Exception as e:  # offline, gated or missing repo: say so, with the catalog suggestion
        base = unknown_name("model", repo_id, known_model_names())
        raise InputError(f"{base} (Hub lookup failed: {type(e).__name__})") from None
    finally:
        hub_log.setLevel(level)
    cfg = read_json(Path(path), "model config")
    return model_from_config(cfg, model_id=repo_id)


def load_model(name: str | ModelSpec) -> ModelSpec:
    """A model by Hub id or alias from the bundled catalog (a base or variant id an entry serves
    included), a path to a config.json (or its folder), or, for an `owner/name` id not bundled,
    its config.json fetched from the Hub."""
    if isinstance(name, ModelSpec):
        return name
    key = str(name).strip()
    spec = _bundled(key)
    if spec is not None:
        return spec
    if looks_like_path(key):
        return load_config_file(key)
    if key.count("/") == 1 and all(key.split("/")):
        return _fetch_from_hub(key)
    raise unknown_name("model", key, known_model_names())


def catalog_model(name: str) -> ModelSpec:
    """A bundled model by Hub id or alias only: never a file and never the Hub (the web app
    resolves what a request names with this, so a request cannot make the server read a file)."""
    key = str(name).strip() if isinstance(name, str) else ""
    spec = _bundled(key) if key else None
    if spec is not None:
        return spec
    raise unknown_name("model", key or show(name), known_model_names())


def list_models() -> list[ModelSpec]:
    return list(model_catalog().values())


def expected_experts_touched(num_experts: int, experts_per_token: int, tokens: Any) -> Any:
    """Expected number of distinct experts hit when `tokens` tokens each pick top-k of E experts.

    Each expert is missed by one token with probability 1 - k/E, so it is touched with
    probability 1 - (1 - k/E)^tokens (tokens routed independently).
    """
    import numpy as np

    miss = 1.0 - experts_per_token / num_experts
    return num_experts * (1.0 - np.power(miss, np.asarray(tokens, dtype=float)))
