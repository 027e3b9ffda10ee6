"""Model architectures parsed from Hugging Face `config.json` files.

A `ModelSpec` holds what the performance model needs: layer count, widths, attention kind
(MHA/GQA/MQA/MLA), sliding windows, MoE layout. Parameter counts follow from it by formula.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .catalog import catalog_files, looks_like_path
from .errors import InputError, unknown_name
from .precision import bytes_per_element

KNOWN_MODEL_TYPES = {
    "llama", "llama4", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "gptj", "falcon", "RefinedWeb", "RefinedWebModel", "gemma", "gemma2", "gemma3", "gemma3_text",
    "deepseek_v2", "deepseek_v3", "kimi_k2", "gpt_oss", "phi3", "phi", "glm4", "glm", "glm4_moe", "yi",
    "olmo2", "starcoder2", "cohere", "exaone", "internlm2", "minimax", "ernie4_5", "ernie4_5_moe",
}
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
    # Catalog metadata.
    aliases: tuple[str, ...] = ()
    published_params: float | None = None
    published_active_params: float | None = None
    params_source: str = ""
    config_source: str = ""

    # ---- derived architecture facts -------------------------------------------------------
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0 and self.num_moe_layers > 0

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def num_global_layers(self) -> int:
        return self.num_layers - self.num_sliding_layers

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

    def kv_cache_bytes_per_token(self, kv_dtype: str = "fp16") -> float:
        """KV-cache bytes per token over all layers (ignoring window caps)."""
        return self.num_layers * self.kv_elements_per_token_per_layer * bytes_per_element(kv_dtype)

    # ---- parameter counts (elements) ------------------------------------------------------
    def attention_params(self) -> int:
        h, H, K = self.hidden_size, self.num_heads, self.num_kv_heads
        if self.is_mla:
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * H * self.q_head_dim
                 if self.q_lora_rank else h * H * self.q_head_dim)
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv += self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + H * self.v_head_dim * h
        d = self.head_dim
        n = h * (H + 2 * K) * d + H * d * h
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

    def embedding_params(self) -> int:
        n = self.vocab_size * self.hidden_size
        return n if self.tie_word_embeddings else 2 * n

    def _params(self, active: bool) -> int:
        per_layer = self.attention_params() + self.norm_params_per_layer()
        total = self.num_layers * per_layer + self.embedding_params() + self.hidden_size
        total += self.num_dense_layers * self.dense_mlp_params()
        total += self.num_moe_layers * self.moe_layer_params(active)
        return total

    @property
    def params_total(self) -> int:
        return self._params(active=False)

    @property
    def params_active(self) -> int:
        """Parameters touched per token (top-k routed experts instead of all)."""
        return self._params(active=True) if self.is_moe else self.params_total

    def weight_bytes(self, weight_dtype: str = "fp16") -> float:
        """Bytes of all weights. Embedding tables, norms and routers stay at 16 bit when quantized."""
        b = bytes_per_element(weight_dtype)
        emb = self.embedding_params() + self.hidden_size
        small = self.num_layers * self.norm_params_per_layer() + self.num_moe_layers * self.hidden_size * self.num_experts
        return (self.params_total - emb - small) * b + (emb + small) * 2.0

    def summary(self) -> dict[str, Any]:
        """The fields `models show` prints (SPEC.md) plus derived figures."""
        d = {k: v for k, v in asdict(self).items() if k not in ("aliases",)}
        d.update(
            id=self.id,
            aliases=list(self.aliases),
            layers=self.num_layers,
            heads=self.num_heads,
            kv_heads=self.num_kv_heads,
            experts=self.num_experts,
            experts_per_token=self.experts_per_token,
            attention=self.attention_kind,
            params_total=self.params_total,
            params_active=self.params_active,
            kv_cache_bytes_per_token=self.kv_cache_bytes_per_token("fp16"),
            weight_gb={p: self.weight_bytes(p) / 1e9 for p in ("fp16", "fp8", "int4")},
        )
        return d


# ---- config.json parsing ------------------------------------------------------------------

_MISSING = object()


def _get(cfg: dict[str, Any], *names: str, default: Any = _MISSING, where: str = "config") -> Any:
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    if default is _MISSING:
        raise InputError(f"{where}: missing field {names[0]!r}" + (f" (or {', '.join(names[1:])})" if names[1:] else ""))
    return default


def _int(cfg: dict[str, Any], *names: str, default: Any = _MISSING, where: str = "config", minimum: int = 1) -> int:
    v = _get(cfg, *names, default=default, where=where)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise InputError(f"{where}: {names[0]} must be an integer, got {v!r}")
    v = int(v)
    if v < minimum or v > 10**8:
        raise InputError(f"{where}: {names[0]} = {v} is out of range ({minimum} to 1e8)")
    return v


def _sliding_layers(cfg: dict[str, Any], layers: int, model_type: str, window: int) -> int:
    """How many layers attend within a window (the rest attend globally)."""
    if not window:
        return 0
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        return sum(1 for t in types if "sliding" in str(t) or "chunked" in str(t))
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if not cfg.get("use_sliding_window", False):
            return 0
        # Qwen: layers with index >= max_window_layers use the window.
        return max(0, layers - int(cfg.get("max_window_layers", layers)))
    if model_type == "gemma2":
        return (layers + 1) // 2  # even-indexed layers are local
    if model_type in ("gemma3", "gemma3_text"):
        pattern = int(cfg.get("sliding_window_pattern", 6))
        return layers - layers // pattern  # every pattern-th layer is global
    if model_type in ("llama4", "llama4_text"):
        no_rope = cfg.get("no_rope_layers")
        if isinstance(no_rope, list) and no_rope:
            return sum(1 for x in no_rope if x)  # rope layers use chunked (local) attention
        step = int(cfg.get("interleave_moe_layer_step", 4) or 4)
        return layers - layers // 4 if step else layers
    return layers


def model_from_config(cfg: Any, *, model_id: str = "custom", meta: dict[str, Any] | None = None) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config mapping. Never executes remote code."""
    where = f"config of {model_id}"
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    top_type = str(cfg.get("model_type", ""))
    if isinstance(cfg.get("text_config"), dict):
        # Multimodal wrappers (Gemma 3, Llama 4) nest the language model.
        inner = dict(cfg["text_config"])
        inner.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings", inner.get("tie_word_embeddings")))
        cfg = inner
    model_type = str(cfg.get("model_type", top_type) or top_type)
    if model_type and model_type not in KNOWN_MODEL_TYPES:
        warnings.warn(f"{where}: model_type {model_type!r} is not one this tool knows; reading standard fields",
                      stacklevel=2)
    if not model_type:
        warnings.warn(f"{where}: no model_type; reading standard fields", stacklevel=2)

    hidden = _int(cfg, "hidden_size", "n_embd", "d_model", where=where)
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers", where=where)
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads", where=where)
    multi_query = bool(cfg.get("multi_query", False)) and not cfg.get("new_decoder_architecture", False)
    default_kv = 1 if multi_query else heads
    kv_heads = _int(cfg, "num_key_value_heads", "num_kv_heads", "multi_query_group_num", "n_head_kv",
                    default=default_kv, where=where)
    if heads % kv_heads:
        raise InputError(f"{where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})")
    head_dim = _int(cfg, "head_dim", "kv_channels", default=hidden // heads, where=where)
    if "head_dim" not in cfg and hidden % heads:
        raise InputError(f"{where}: hidden_size {hidden} is not divisible by {heads} heads and no head_dim is given")
    vocab = _int(cfg, "vocab_size", "padded_vocab_size", where=where)
    gelu_mlp = model_type in _GELU_MLP_TYPES
    intermediate = _int(cfg, "intermediate_size_mlp" if model_type.startswith("llama4") else "intermediate_size",
                        "intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim",
                        default=4 * hidden, where=where)
    tie = cfg.get("tie_word_embeddings")
    if tie is None:
        tie = model_type in ("falcon", "RefinedWeb", "RefinedWebModel", "gemma", "gemma2", "gemma3", "gemma3_text")

    # Mixture of experts.
    experts = int(_get(cfg, "num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts", default=0) or 0)
    top_k = int(_get(cfg, "num_experts_per_tok", "experts_per_token", "moe_topk", "num_experts_per_token", default=0) or 0)
    moe_inter = 0
    shared = 0
    moe_layers = 0
    if experts:
        if not 1 <= top_k <= experts:
            raise InputError(f"{where}: num_experts_per_tok = {top_k} must be between 1 and the {experts} experts")
        # Routed-expert width: moe_intermediate_size where given, else intermediate_size
        # (Mixtral, gpt-oss and Llama 4 name the expert width so).
        moe_inter = _int(cfg, "moe_intermediate_size", "intermediate_size", where=where)
        n_shared = int(cfg.get("n_shared_experts") or cfg.get("num_shared_experts") or 0)
        shared = n_shared * moe_inter
        if cfg.get("shared_expert_intermediate_size"):
            shared = int(cfg["shared_expert_intermediate_size"])
        if model_type.startswith("llama4"):
            shared = moe_inter  # one shared expert of the routed experts' width
            step = int(cfg.get("interleave_moe_layer_step", 1) or 1)
            moe_layers = layers // step
        elif "first_k_dense_replace" in cfg:
            freq = int(cfg.get("moe_layer_freq", 1) or 1)
            moe_layers = len([i for i in range(int(cfg["first_k_dense_replace"]), layers) if i % freq == 0])
        else:
            step = int(cfg.get("decoder_sparse_step", 1) or 1)
            dense_only = set(cfg.get("mlp_only_layers") or [])
            moe_layers = len([i for i in range(layers) if (i + 1) % step == 0 and i not in dense_only])

    # Multi-head latent attention.
    kv_lora = int(cfg.get("kv_lora_rank") or 0)
    mla = dict(q_lora_rank=0, kv_lora_rank=0, qk_rope_head_dim=0, qk_nope_head_dim=0, v_head_dim=0)
    if kv_lora:
        mla = dict(
            q_lora_rank=int(cfg.get("q_lora_rank") or 0),
            kv_lora_rank=kv_lora,
            qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where=where),
            qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", where=where),
            v_head_dim=_int(cfg, "v_head_dim", where=where),
        )
        kv_heads = heads  # MLA decompresses to every head; the cache is the shared latent

    window = cfg.get("sliding_window") or cfg.get("attention_chunk_size") or 0
    if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0:
        raise InputError(f"{where}: sliding_window must be a non-negative integer, got {window!r}")
    window = int(window)
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and not cfg.get("use_sliding_window", False):
        window = 0
    n_sliding = _sliding_layers(cfg, layers, model_type, window)
    if window and window >= int(cfg.get("max_position_embeddings", 0) or 0) > 0:
        window, n_sliding = 0, 0  # a window as long as the context changes nothing
    if not n_sliding:
        window = 0

    meta = meta or {}
    return ModelSpec(
        id=model_id,
        model_type=model_type or "unknown",
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate if moe_layers < layers else 0,
        vocab_size=vocab,
        tie_word_embeddings=bool(tie),
        gated_mlp=not gelu_mlp,
        layernorm_bias=model_type in _LAYERNORM_TYPES,
        qkv_bias=bool(cfg.get("attention_bias", False) or cfg.get("qkv_bias", False) or cfg.get("add_qkv_bias", False)
                      or model_type in ("qwen2", "qwen2_moe")),
        mlp_bias=bool(cfg.get("mlp_bias", False)) or model_type == "gptj",
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"),
        sliding_window=window,
        num_sliding_layers=n_sliding,
        num_experts=experts,
        experts_per_token=top_k if experts else 0,
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared,
        num_moe_layers=moe_layers,
        expert_bias=model_type == "gpt_oss",
        attention_sinks=model_type == "gpt_oss",
        aliases=tuple(str(a).lower() for a in meta.get("aliases", [])),
        published_params=meta.get("published_params"),
        published_active_params=meta.get("published_active_params"),
        params_source=str(meta.get("params_source", "")),
        config_source=str(meta.get("config_source", "")),
        **mla,
    )


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path} is not valid JSON: {e.msg} at line {e.lineno}") from None


def load_config_file(path: str | Path) -> ModelSpec:
    """A model from a local `config.json`, or a folder holding one."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "config.json"
    if not p.exists():
        raise InputError(f"no config file at {p}")
    cfg = read_json(p, "model config")
    name = p.parent.name if p.name == "config.json" else p.stem
    return model_from_config(cfg, model_id=name)


@functools.lru_cache(maxsize=1)
def model_catalog() -> dict[str, ModelSpec]:
    """Bundled models by Hugging Face id."""
    out: dict[str, ModelSpec] = {}
    for path in catalog_files("models", (".json",)):
        entry = read_json(path, "catalog entry")
        if not isinstance(entry, dict) or "config" not in entry or "id" not in entry:
            raise InputError(f"{path}: catalog entry needs 'id' and 'config'")
        spec = model_from_config(entry["config"], model_id=entry["id"], meta=entry)
        out[spec.id] = spec
    return out


def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for spec in model_catalog().values():
        table[spec.id.lower()] = spec.id
        table.setdefault(spec.id.split("/")[-1].lower(), spec.id)
        for a in spec.aliases:
            table.setdefault(a, spec.id)
    return table


def _fetch_from_hub(repo_id: str) -> ModelSpec:
    """Download only config.json of a Hub repo (cached by huggingface_hub); no remote code."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise unknown_name("model", repo_id, model_catalog()) from None
    try:
        path = hf_hub_download(repo_id, "config.json")
    except Exception as e:  # offline, gated or missing repo: say so, with the catalog suggestion
        base = unknown_name("model", repo_id, model_catalog())
        raise InputError(f"{base} (Hub lookup failed: {type(e).__name__})") from None
    cfg = read_json(Path(path), "model config")
    return model_from_config(cfg, model_id=repo_id)


def load_model(name: str | ModelSpec) -> ModelSpec:
    """A model by Hub id or alias from the bundled catalog, a path to a config.json (or its
    folder), or, for an `owner/name` id not bundled, its config.json fetched from the Hub."""
    if isinstance(name, ModelSpec):
        return name
    key = str(name).strip()
    table = _lookup_table()
    if key.lower() in table:
        return model_catalog()[table[key.lower()]]
    if looks_like_path(key):
        return load_config_file(key)
    if key.count("/") == 1 and all(key.split("/")):
        return _fetch_from_hub(key)
    raise unknown_name("model", key, model_catalog())


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
