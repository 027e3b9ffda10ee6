"""Vision encoders of vision-language models: how an image becomes patches and language-model tokens,
the encoder's parameters, and its operators (the prefill cost of the images of a request).

Three families, read from a config's `vision_config`:

- `qwen2_5_vl` (Qwen2.5-VL): a ViT over 14-px patches at the image's own resolution (rounded to
  28 px, within min/max pixels), SwiGLU MLP, RMSNorm, attention within 112-px windows except in the
  `fullatt_block_indexes` layers; a merger concatenates 2x2 patches into one language-model token
  (one token per 28x28 pixels) through a two-layer MLP. Qwen's processor duplicates a still image
  over two frames (temporal_patch_size 2), so a patch is 3 x 2 x 14 x 14 values.
  Source: Qwen2.5-VL technical report (arXiv:2502.13923), section 2.1; the model's config.json.
- `siglip` (Gemma 3): SigLIP at a fixed 896 px (64x64 patches of 14 px, learned positions,
  LayerNorm, GELU MLP, global attention), average-pooled to `mm_tokens_per_image` (256) tokens,
  then an RMSNorm and one projection into the language model. Source: Gemma 3 technical report
  (arXiv:2503.19786), section 2.1.
- `llama4` (Llama 4): a ViT over 336-px tiles (24x24 patches + a class token, LayerNorm, GELU
  MLP), a pixel shuffle (ratio 0.5: 2x2 patches into one token, 144 tokens per tile), a two-layer
  adapter and a projection. An image takes ceil(W/336) x ceil(H/336) tiles (at most 16) plus a
  global tile when it takes more than one. Source: transformers' Llama 4 image processor and
  modelling code (the published config's fields).

Sizes are element counts; every formula has its derivation beside it. The encoder's operators
are in vision_ops.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError, show

KINDS = ("qwen2_5_vl", "siglip", "llama4")
DEFAULT_IMAGE_SIZE = (1024, 1024)  # width x height in pixels, for models that take any resolution
MAX_IMAGE_SIDE = 100_000  # pixels: larger is a typo
MAX_IMAGES = 10_000  # images per request
VISION_BYTES = 2.0  # the vision tower stays 16 bit (quantized checkpoints leave it out)
LLAMA4_MAX_TILES = 16  # transformers' Llama4ImageProcessor max_patches


@dataclass(frozen=True)
class VisionSpec:
    """A vision encoder (ViT) and its projector into the language model. Sizes are element counts."""

    kind: str  # qwen2_5_vl | siglip | llama4 (how an image becomes patches and tokens)
    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    gated_mlp: bool  # SwiGLU (three matrices) or a plain GELU MLP (two)
    linear_bias: bool  # biases on the attention and MLP matrices
    layernorm: bool  # LayerNorm (weight and bias) rather than RMSNorm (weight)
    patch_size: int  # pixels per side of a patch
    patch_inputs: int  # values per patch: channels x frames x patch_size²
    patch_bias: bool
    tile_size: int  # pixels per side of the encoder's input (qwen2_5_vl: 0, any resolution)
    merge: int  # patches per side merged (or pooled) into one language-model token
    window: int  # patches per side of an attention window (0: every layer attends globally)
    full_attention_layers: int  # layers that attend over the whole image despite a window
    positions: int  # learned position embeddings (0: rotary)
    class_token: bool  # a class token in the encoder's sequence (dropped before the merge)
    post_norm: bool  # a final norm after the last layer
    projector_norm: int  # width of the norm in front of the projector (0: none)
    projector: tuple[tuple[int, int], ...]  # (in, out) of each projector matrix, over the merged tokens
    projector_bias: bool
    min_pixels: int = 0  # qwen2_5_vl: an image is scaled into [min_pixels, max_pixels]
    max_pixels: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"vision kind must be one of {', '.join(KINDS)}, got {show(self.kind)}")
        for name in ("depth", "hidden_size", "num_heads", "intermediate_size", "patch_size", "patch_inputs", "merge"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10**8:
                raise InputError(f"vision_config: {name} must be a whole number from 1 to 100,000,000, got {show(v)}")
        if self.hidden_size % self.num_heads:
            raise InputError(f"vision_config: hidden_size {self.hidden_size} is not divisible by {self.num_heads} heads")
        if not 0 <= self.full_attention_layers <= self.depth:
            raise InputError(f"vision_config: {self.full_attention_layers} full-attention layers, but depth is {self.depth}")
        if not self.projector or any(a < 1 or b < 1 for a, b in self.projector):
            raise InputError(f"vision_config: the projector needs matrices of positive sizes, got {self.projector}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def window_layers(self) -> int:
        """Layers attending within windows (0 without a window)."""
        return self.depth - self.full_attention_layers if self.window else 0

    # ---- parameters (elements) ---------------------------------------------------------------
    def layer_matrices(self) -> int:
        """One encoder layer's matrices: Q, K, V, O (4d²) and the MLP ((3 or 2)·d·m)."""
        d, m = self.hidden_size, self.intermediate_size
        return 4 * d * d + (3 if self.gated_mlp else 2) * d * m

    def layer_vectors(self) -> int:
        """One layer's biases and norms: QKV and O biases (4d), MLP biases ((2m + d) or (m + d)),
        two norms (2d, twice that with LayerNorm biases)."""
        d, m = self.hidden_size, self.intermediate_size
        n = (4 if self.layernorm else 2) * d
        if self.linear_bias:
            n += 4 * d + ((2 * m if self.gated_mlp else m) + d)
        return n

    def weight_elements(self) -> tuple[int, int]:
        """(matrix elements, vector elements) of the whole tower: patch embedding, positions,
        layers, final norm, projector."""
        d = self.hidden_size
        matrices = self.depth * self.layer_matrices() + self.patch_inputs * d
        matrices += sum(a * b for a, b in self.projector)
        vectors = self.depth * self.layer_vectors() + self.positions * d
        vectors += d * (self.patch_bias + self.class_token) + (2 if self.layernorm else 1) * d * self.post_norm
        vectors += self.projector_norm
        if self.kind == "llama4":
            vectors += 2 * d  # Llama 4 also normalizes before the first layer (layernorm_pre)
        if self.projector_bias:
            vectors += sum(b for _, b in self.projector)
        return matrices, vectors

    @property
    def params(self) -> int:
        return sum(self.weight_elements())

    # ---- images -------------------------------------------------------------------------------
    def layout(self, image_size: Any = None) -> ImageLayout:
        """How one image of `image_size` (width, height) pixels enters the encoder and the
        language model. None: DEFAULT_IMAGE_SIZE (siglip ignores it: every image is resized to its
        tile)."""
        w, h = check_image_size(image_size)
        if self.kind == "qwen2_5_vl":
            return self._qwen_layout(w, h)
        if self.kind == "siglip":
            side = self.tile_size // self.patch_size  # 896 / 14 = 64 patches per side
            n = side * side
            return ImageLayout(tiles=1, sequence=n, full_pairs=n * n, window_pairs=n * n,
                               tokens=(side // self.merge) ** 2, pixels=(self.tile_size, self.tile_size))
        t = self.tile_size
        across, down = math.ceil(w / t), math.ceil(h / t)
        while across * down > LLAMA4_MAX_TILES:  # scale the canvas down until it fits
            across, down = (across - 1, down) if across >= down else (across, down - 1)
        tiles = across * down + (1 if across * down > 1 else 0)  # + the global (thumbnail) tile
        side = t // self.patch_size  # 336 / 14 = 24
        n = side * side + int(self.class_token)  # 577
        return ImageLayout(tiles=tiles, sequence=n, full_pairs=n * n, window_pairs=n * n,
                           tokens=tiles * (side // self.merge) ** 2, pixels=(across * t, down * t))

    def _qwen_layout(self, w: int, h: int) -> ImageLayout:
        """Qwen's smart resize: each side rounded to a multiple of patch x merge (28 px), then
        scaled into [min_pixels, max_pixels] keeping the aspect ratio."""
        f = self.patch_size * self.merge
        hh, ww = max(f, round(h / f) * f), max(f, round(w / f) * f)
        if self.max_pixels and hh * ww > self.max_pixels:
            beta = math.sqrt(h * w / self.max_pixels)
            hh, ww = max(f, math.floor(h / beta / f) * f), max(f, math.floor(w / beta / f) * f)
        elif self.min_pixels and hh * ww < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (h * w))
            hh, ww = math.ceil(h * beta / f) * f, math.ceil(w * beta / f) * f
        gh, gw = hh // self.patch_size, ww // self.patch_size
        n = gh * gw
        return ImageLayout(tiles=1, sequence=n, full_pairs=n * n,
                           window_pairs=self._window_sum(gh) * self._window_sum(gw),
                           tokens=n // (self.merge * self.merge), pixels=(ww, hh))

    def _window_sum(self, patches: int) -> int:
        """Σ over the windows along one side of (their length in patches)²: windows tile the merged
        grid in steps of window/merge merged tokens, the last one shorter. The pairs of a 2-D
        window grid are the product of the two sides' sums (Σ_ij (a_i b_j)² = Σa² Σb²)."""
        if not self.window:
            return patches * patches
        step = self.window // self.merge  # merged tokens per window side (112 px / 28 px = 4)
        merged = patches // self.merge
        full, rest = divmod(merged, step)
        return full * (step * self.merge) ** 2 + (rest * self.merge) ** 2

    def summary(self, image_size: Any = None) -> dict[str, Any]:
        """The tower as `models show` prints it."""
        lay = self.layout(image_size)
        return {"kind": self.kind, "params": self.params, "depth": self.depth, "hidden_size": self.hidden_size,
                "heads": self.num_heads, "intermediate_size": self.intermediate_size, "patch_size": self.patch_size,
                "merge": self.merge, "window_patches": self.window, "full_attention_layers": self.full_attention_layers
                if self.window else self.depth, "image_size": list(lay.pixels), "tiles_per_image": lay.tiles,
                "patches_per_image": lay.tiles * lay.sequence, "tokens_per_image": lay.tokens}


@dataclass(frozen=True)
class ImageLayout:
    """One image in the encoder: `tiles` sequences of `sequence` patches each; (query, key) pairs per
    head per tile in a global and in a windowed layer; `tokens` it adds to the language model's
    prompt; the `pixels` (width, height) the encoder sees."""

    tiles: int
    sequence: int
    full_pairs: int
    window_pairs: int
    tokens: int
    pixels: tuple[int, int]


def check_image_size(image_size: Any) -> tuple[int, int]:
    """(width, height) in pixels from None (the default), a pair, or a string 'WxH'."""
    if image_size is None:
        return DEFAULT_IMAGE_SIZE
    pair = image_size
    if isinstance(image_size, str):
        parts = image_size.lower().replace("×", "x").split("x")
        try:
            pair = tuple(int(p.strip()) for p in parts)
        except ValueError:
            pair = None
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE
                       for v in pair)):
        raise InputError(f"image_size must be WIDTHxHEIGHT in pixels, each from 1 to {MAX_IMAGE_SIDE:,} "
                         f"(e.g. 1024x768), got {show(image_size)}")
    return int(pair[0]), int(pair[1])


def check_images(images: Any) -> np.ndarray:
    """Images per request: whole numbers from 0 to MAX_IMAGES (a number or an array) as floats."""
    if type(images) is int and 0 <= images <= MAX_IMAGES:  # the common case (no images), checked in one step
        return np.array(float(images))
    a = None
    if not isinstance(images, (str, bytes, bool, np.bool_, dict, set)):
        try:
            if np.asarray(images).dtype != bool:
                a = np.asarray(images, dtype=float)
        except (TypeError, ValueError, OverflowError):
            a = None
    if (a is None or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > MAX_IMAGES)
            or np.any(a != np.round(a))):
        raise InputError(f"images must be whole numbers from 0 to {MAX_IMAGES:,} per request, got {show(images)}")
    return a


# ---- parsing ---------------------------------------------------------------------------------

def _whole(vc: dict[str, Any], where: str, *names: str, default: Any = None, minimum: int = 1,
           prefix: str = "vision_config.") -> int:
    for n in names:
        v = vc.get(n)
        if v is not None:
            if (isinstance(v, bool) or not isinstance(v, (int, float))
                    or (isinstance(v, float) and not (math.isfinite(v) and v.is_integer()))
                    or not minimum <= v <= 10**8):
                raise InputError(f"{where}: {prefix}{n} must be a whole number from {minimum} to "
                                 f"100,000,000, got {show(v)}")
            return int(v)
    if default is None:
        raise InputError(f"{where}: {prefix.rstrip('.') or 'config'} is missing {names[0]!r}")
    return int(default)


def vision_kind(cfg: dict[str, Any]) -> str | None:
    """The encoder family of a config's vision_config, from its model_type or the wrapper's; None
    when the config has no vision_config."""
    vc = cfg.get("vision_config")
    if vc is None:
        return None
    vtype = vc.get("model_type") if isinstance(vc, dict) else None
    top = cfg.get("model_type")
    if vtype in ("qwen2_5_vl",) or top == "qwen2_5_vl":
        return "qwen2_5_vl"
    if vtype in ("siglip_vision_model", "gemma3_vision") or top == "gemma3":
        return "siglip"
    if vtype == "llama4_vision_model" or top == "llama4":
        return "llama4"
    return "unknown"


def vision_from_config(cfg: dict[str, Any], text_hidden: int, where: str) -> VisionSpec | None:
    """The vision tower of a multimodal config (None without a vision_config). A vision_config of
    a family this tool does not model gives None too (no warning: a bundled config of such a model
    must load quietly): the text tower loads, and an estimate with images is an error naming the
    model and the families this tool models."""
    kind = vision_kind(cfg)
    if kind is None:
        return None
    vc = cfg["vision_config"]
    if not isinstance(vc, dict):
        raise InputError(f"{where}: vision_config must be an object, got {show(vc)}")
    if kind == "unknown":
        return None  # the text tower loads alone; an estimate with images says the model has no tower
    d = _whole(vc, where, "hidden_size", "embed_dim")
    heads = _whole(vc, where, "num_heads", "num_attention_heads")
    depth = _whole(vc, where, "depth", "num_hidden_layers")
    inter = _whole(vc, where, "intermediate_size")
    patch = _whole(vc, where, "patch_size", "spatial_patch_size", default=14)
    channels = _whole(vc, where, "in_channels", "in_chans", "num_channels", default=3)
    if kind == "qwen2_5_vl":
        merge = _whole(vc, where, "spatial_merge_size", default=2)
        frames = _whole(vc, where, "temporal_patch_size", default=2)
        window_px = _whole(vc, where, "window_size", default=0, minimum=0)
        full = vc.get("fullatt_block_indexes", [])
        if not isinstance(full, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < depth
                                                 for i in full):
            raise InputError(f"{where}: vision_config.fullatt_block_indexes must list layer indexes from 0 to "
                             f"{depth - 1}, got {show(full)}")
        if window_px % (patch * merge):
            raise InputError(f"{where}: vision_config.window_size {window_px} must be a multiple of patch_size x "
                             f"spatial_merge_size ({patch * merge})")
        out = _whole(vc, where, "out_hidden_size", default=text_hidden)
        wide = d * merge * merge
        return VisionSpec(
            kind=kind, depth=depth, hidden_size=d, num_heads=heads, intermediate_size=inter, gated_mlp=True,
            linear_bias=True, layernorm=False, patch_size=patch, patch_inputs=channels * frames * patch * patch,
            patch_bias=False, tile_size=0, merge=merge, window=window_px // patch,
            full_attention_layers=len(set(full)) if window_px else depth, positions=0, class_token=False,
            post_norm=False, projector_norm=d, projector=((wide, wide), (wide, out)), projector_bias=True,
            # Qwen2.5-VL's preprocessor_config.json: min_pixels 3136 (56²), max_pixels 12845056 (28² x 16384)
            min_pixels=_whole(vc, where, "min_pixels", default=56 * 56),
            max_pixels=_whole(vc, where, "max_pixels", default=28 * 28 * 16384),
        )
    size = _whole(vc, where, "image_size", default=896 if kind == "siglip" else 336)
    if size % patch:
        raise InputError(f"{where}: vision_config.image_size {size} is not a multiple of patch_size {patch}")
    side = size // patch
    if kind == "siglip":
        tokens = _whole(cfg, where, "mm_tokens_per_image", default=256, prefix="")
        pooled = math.isqrt(tokens)
        if pooled * pooled != tokens or side % pooled:
            raise InputError(f"{where}: mm_tokens_per_image {tokens} must be a square whose side divides the "
                             f"{side} patches per side")
        return VisionSpec(
            kind=kind, depth=depth, hidden_size=d, num_heads=heads, intermediate_size=inter, gated_mlp=False,
            linear_bias=True, layernorm=True, patch_size=patch, patch_inputs=channels * patch * patch,
            patch_bias=True, tile_size=size, merge=side // pooled, window=0, full_attention_layers=depth,
            positions=side * side, class_token=False, post_norm=True, projector_norm=d,
            projector=((d, text_hidden),), projector_bias=False,
        )
    ratio = vc.get("pixel_shuffle_ratio", 0.5)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1 \
            or not float(1 / ratio).is_integer() or side % int(1 / ratio):
        raise InputError(f"{where}: vision_config.pixel_shuffle_ratio must be 1/k for a k dividing the {side} "
                         f"patches per side, got {show(ratio)}")
    merge = int(1 / ratio)
    adapter_in = _whole(vc, where, "projector_input_dim", default=4096)
    adapter_out = _whole(vc, where, "projector_output_dim", default=4096)
    out = _whole(vc, where, "vision_output_dim", default=adapter_out)
    return VisionSpec(
        kind=kind, depth=depth, hidden_size=d, num_heads=heads, intermediate_size=inter, gated_mlp=False,
        linear_bias=True, layernorm=True, patch_size=patch, patch_inputs=channels * patch * patch,
        patch_bias=False, tile_size=size, merge=merge, window=0, full_attention_layers=depth,
        positions=side * side + 1, class_token=True, post_norm=True, projector_norm=0,
        # pixel-shuffle adapter (fc1, fc2) and the projection into the language model
        projector=((d * merge * merge, adapter_in), (adapter_out, out), (out, text_hidden)), projector_bias=False,
    )
