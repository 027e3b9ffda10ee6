"""Vision-language models: the vision tower's parameters, image tokens and encoder FLOPs derived by
hand from the configs, and the laws of an estimate with images (TTFT = the text prefill of the
longer prompt + the encoder's pass; images never make anything faster)."""

from __future__ import annotations

import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.efficiency import load_calibration
from llmroofline.errors import InputError
from llmroofline.estimate import make_deployment, vision_seconds
from llmroofline.memory import weights_per_device
from llmroofline.model import model_from_config
from llmroofline.operators import ATTN_PREFILL, GEMM
from llmroofline.vision_ops import vision_ops


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def matmul_flops(ops):
    """FLOPs of the GEMMs and of attention's QK and SV (not softmax or elementwise ops)."""
    return sum(op.count * op.flops for op in ops
               if op.kind == GEMM or (op.kind == ATTN_PREFILL and "softmax" not in op.name))


# ---- parameters --------------------------------------------------------------------------------

def test_qwen2_5_vl_7b_vision_tower_counted_by_hand():
    # d = 1280, m = 3420, 32 layers. Per layer: Q,K,V,O 4d² = 6,553,600; SwiGLU 3dm = 13,132,800;
    # biases qkv 3d + o d + gate/up 2m + down d = 13,240; two RMSNorms 2d = 2,560 -> 19,702,200.
    # Patch embedding (Conv3d 3x2x14x14 -> d, no bias) 1176 d = 1,505,280. Merger: RMSNorm d,
    # 5120x5120 + 5120 bias, 5120x3584 + 3584 bias = 44,574,464.
    v = lr.load_model("Qwen/Qwen2.5-VL-7B-Instruct").vision
    assert v is not None and v.kind == "qwen2_5_vl"
    assert v.params == 32 * 19_702_200 + 1_505_280 + 44_574_464 == 676_550_144  # about 0.68B


def test_gemma3_siglip_matches_the_technical_report():
    # Gemma 3 technical report (arXiv:2503.19786), Table 1: a 417M-parameter vision encoder.
    # SigLIP: d = 1152, m = 4304, 27 layers. Per layer: 4d² + 2dm = 5,308,416 + 9,916,416 =
    # 15,224,832 matrices; biases 4d + m + d = 10,064; two LayerNorms 4d = 4,608 -> 15,239,504.
    # Patch embedding 588 d + d,
    # 4096 learned positions x d, post LayerNorm 2d. Projector: RMSNorm d + d x 5376.
    v = lr.load_model("gemma-3-27b").vision
    assert v is not None and v.kind == "siglip"
    encoder = 27 * 15_239_504 + 588 * 1152 + 1152 + 4096 * 1152 + 2 * 1152
    projector = 1152 + 1152 * 5376
    assert v.params == encoder + projector
    assert encoder == pytest.approx(417e6, rel=0.005)


@pytest.mark.parametrize("model_id,published", [
    ("Qwen/Qwen2.5-VL-7B-Instruct", 8.29e9),     # Hugging Face safetensors count
    ("Qwen/Qwen2.5-VL-72B-Instruct", 73.4e9),    # Hugging Face safetensors count
    ("google/gemma-3-27b-it", 27.433e9),          # Gemma 3 report: 417M + 1,416M + 25,600M
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", 109e9),  # model card: the whole checkpoint
])
def test_totals_with_the_vision_tower_match_published(model_id, published):
    m = lr.load_model(model_id)
    assert m.params_total == pytest.approx(published, rel=0.01)
    # What runs per text token is the language model alone: params_active leaves the tower out
    # (and the input embedding table, ACTIVE_PARAMS_CONVENTION; counting it gives the language model).
    language = m.params_total - m.vision.params
    with_tables = m.params_active_counting("both")
    assert with_tables == language if not m.is_moe else with_tables < language


def test_vision_weights_are_resident_at_16_bit_whatever_the_linear_precision():
    m = lr.load_model("gemma-3-27b")
    text_only = model_from_config({k: v for k, v in _gemma_config().items() if k != "vision_config"},
                                  model_id="text")
    for dtype in (None, "fp8", "int4"):
        diff = weights_per_device(m, dtype) - weights_per_device(text_only, dtype)
        assert diff == pytest.approx(2.0 * m.vision.params, rel=1e-12)
    # over tensor parallelism the tower is sharded like the layers
    assert weights_per_device(m, None, tp=2) - weights_per_device(text_only, None, tp=2) == pytest.approx(
        m.vision.params, rel=1e-12)


def _gemma_config() -> dict:
    from llmroofline.catalog import catalog_files

    for path in catalog_files("models", (".json",)):
        entry = json.loads(path.read_text())
        if entry["id"] == "google/gemma-3-27b-it":
            return entry["config"]
    raise AssertionError("gemma-3-27b-it is bundled")


# ---- image tokens ------------------------------------------------------------------------------

@pytest.mark.parametrize("model,size,tokens", [
    # Qwen: each side rounded to 28 px; one token per 28x28 pixels.
    ("qwen2.5-vl-7b", None, 37 * 37),            # 1024 -> round(1024/28) = 37 -> 1036 px
    ("qwen2.5-vl-7b", (448, 448), 16 * 16),
    ("qwen2.5-vl-7b", (1920, 1080), 69 * 39),    # 1920/28 = 68.6 -> 69; 1080/28 = 38.6 -> 39
    ("qwen2.5-vl-7b", (10, 10), 2 * 2),          # below min_pixels 3136 = 56²: scaled up to 56x56
    ("qwen2.5-vl-7b", (8000, 8000), 128 * 128),  # above max_pixels 28² x 16384: scaled to 3584 px
    # Gemma 3: every image at 896 px, 64x64 patches pooled 4x4 -> mm_tokens_per_image = 256.
    ("gemma-3-27b", None, 256),
    ("gemma-3-27b", (3000, 200), 256),
    # Llama 4: 336-px tiles of 24x24 patches, pixel shuffle 2x2 -> 144 tokens per tile.
    ("llama4-scout", (336, 336), 144),
    ("llama4-scout", (700, 300), (3 * 1) * 144 + 144),  # 3 x 1 tiles + the global tile
    ("llama4-scout", None, (4 * 4 + 1) * 144),          # 1024 -> 4 x 4 tiles + global
])
def test_tokens_per_image(model, size, tokens):
    assert lr.load_model(model).vision.layout(size).tokens == tokens


def test_image_size_is_validated():
    v = lr.load_model("qwen2.5-vl-7b").vision
    assert v.layout("640x480").pixels == (644, 476)  # 23 x 17 units of 28 px
    for bad in ("640", "0x10", "axb", (1, 2, 3), (10.5, 3), "100001x5"):
        with pytest.raises(InputError, match="image_size"):
            v.layout(bad)


# ---- encoder FLOPs -----------------------------------------------------------------------------

def test_siglip_flops_per_image_by_hand():
    # n = 4096 patches, d = 1152, m = 4304 (GELU MLP: two matrices), L = 27, global attention:
    #   layers    2·n·(4d² + 2·d·m)·L   (QKV and O, MLP up and down)
    #   attention 4·n²·d·L              (QK and SV: 2·n²·head_dim per head, 16 heads of 72)
    #   patches   2·n·588·d, projector 2·256·d·5376 (after 4x4 pooling)
    n, d, m, L = 4096, 1152, 4304, 27
    v = lr.load_model("gemma-3-27b").vision
    expected = 2 * n * (4 * d * d + 2 * d * m) * L + 4 * n * n * d * L + 2 * n * 588 * d + 2 * 256 * d * 5376
    assert matmul_flops(vision_ops(v, 1)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(5.51e12, rel=0.01)  # about 5.5 TFLOP per image


def test_qwen_windowed_attention_flops_by_hand():
    # 1024x1024 -> 1036 px -> 74 x 74 = 5476 patches, d = 1280, m = 3420 (SwiGLU: three matrices).
    # 4 layers attend globally: 4·n²·d each. 28 attend in windows of 112 px = 8x8 patches laid on
    # the 37 x 37 merged grid in steps of 4: per side 9 windows of 8 patches and one of 2, so
    # Σ(window length)² = 9·64 + 4 = 580 per side and 580² = 336,400 pairs per head per layer.
    n, d, m = 5476, 1280, 3420
    v = lr.load_model("qwen2.5-vl-7b").vision
    layers = 2 * n * (4 * d * d + 3 * d * m) * 32
    attention = 4 * n * n * d * 4 + 4 * 336_400 * d * 28
    patches = 2 * n * 1176 * d
    merger = 2 * (n // 4) * (5120 * 5120 + 5120 * 3584)
    assert matmul_flops(vision_ops(v, 1)) == pytest.approx(layers + attention + patches + merger, rel=1e-12)


def test_encoder_work_is_linear_in_images_and_sharded_by_tp():
    v = lr.load_model("qwen2.5-vl-7b").vision
    one, three = matmul_flops(vision_ops(v, 1)), matmul_flops(vision_ops(v, 3))
    assert three == pytest.approx(3 * one, rel=1e-12)
    grid = vision_ops(v, np.array([0.0, 1.0, 2.0]))
    assert np.allclose(matmul_flops(grid), [0, one, 2 * one], rtol=1e-12)
    # tp = 2 halves the layers' work; the patch embedding and the merger are replicated
    replicated = 2 * 5476 * 1176 * 1280 + 2 * 1369 * (5120 * 5120 + 5120 * 3584)
    assert matmul_flops(vision_ops(v, 1, tp=2)) == pytest.approx((one - replicated) / 2 + replicated, rel=1e-12)


# ---- estimates with images -------------------------------------------------------------------

def test_ttft_with_images_is_the_longer_prefill_plus_the_encoder():
    # Plain roofline, static batch of 4 with 2 images each: the prompt is 512 + 2·1369 tokens and
    # the encoder runs over the 8 images before the prefill.
    kw = dict(batch=4, output_len=64, calibration="none")
    r = lr.estimate("qwen2.5-vl-7b", "H100-SXM5-80GB", input_len=512, images=2, **kw)
    text = lr.estimate("qwen2.5-vl-7b", "H100-SXM5-80GB", input_len=512 + 2 * 1369, **kw)
    dep = make_deployment("qwen2.5-vl-7b", "H100-SXM5-80GB")
    encoder = vision_seconds(dep, load_calibration("none").for_device(dep.hardware), 8)
    assert float(r.ttft_s) == pytest.approx(float(text.ttft_s) + float(encoder), rel=1e-12)
    assert float(r.tpot_s) == pytest.approx(float(text.tpot_s), rel=1e-12)  # decode sees the same KV
    # the encoder is at least its FLOPs at peak: 8 images of the hand-derived work
    peak = dep.hardware.peak_flops.get("bf16") or dep.hardware.peak_flops["fp16"]
    assert float(encoder) >= 8 * float(matmul_flops(vision_ops(dep.model.vision, 1))) / peak
    d = r.to_dict()
    assert (d["images"], d["image_tokens"], d["tokens_per_image"], d["input_len"]) == (2, 2738, 1369, 512)
    assert any(w.startswith("images: 1369 prompt tokens per image") for w in d["warnings"])


@pytest.mark.parametrize("mode", ["static", "continuous"])
def test_ttft_grows_with_images(mode):
    r = lr.estimate("gemma-3-27b", "H100-SXM5-80GB", batch=8, input_len=256, output_len=128, images=[0, 1, 2, 4],
                    mode=mode)
    assert np.all(np.diff(r.ttft_s) > 0) and np.all(np.diff(r.tpot_s) >= 0)
    assert np.all(np.diff(r.memory.kv_cache) > 0)  # image tokens sit in the KV cache
    assert r.to_dict()["image_tokens"] == [0, 256, 512, 1024]


def test_no_images_changes_nothing():
    a = lr.estimate("gemma-3-27b", "H20", batch=[1, 16], input_len=1024, output_len=128, mode="continuous")
    b = lr.estimate("gemma-3-27b", "H20", batch=[1, 16], input_len=1024, output_len=128, mode="continuous", images=0)
    for k in ("ttft_s", "tpot_s", "throughput_tok_s"):
        assert np.array_equal(getattr(a, k), getattr(b, k))


def test_max_mode_fits_fewer_sequences_with_images():
    kw = dict(batch="max", input_len=512, output_len=512)
    plain = lr.estimate("qwen2.5-vl-7b", "L40S", **kw)
    heavy = lr.estimate("qwen2.5-vl-7b", "L40S", images=4, **kw)
    assert float(heavy.batch) < float(plain.batch)


def test_images_on_a_text_model_or_bad_counts_are_errors():
    with pytest.raises(InputError, match="no vision tower"):
        lr.estimate("llama2-7b", "a100", images=1)
    for bad in (-1, 1.5, "two", True, 10**6):
        with pytest.raises(InputError, match="images"):
            lr.estimate("gemma-3-27b", "a100", images=bad)


def test_compare_and_recommend_take_images():
    c0 = lr.compare("qwen2.5-vl-7b", "H100-SXM5-80GB", "H20", method="ops", metric="ttft", batch=[1], seq=[256])
    c1 = lr.compare("qwen2.5-vl-7b", "H100-SXM5-80GB", "H20", method="ops", metric="ttft", batch=[1], seq=[256],
                    images=1)
    assert c1.to_dict()["image_tokens"] == 1369 and "images" not in c0.to_dict()
    with pytest.raises(InputError, match="method ops"):
        lr.compare("qwen2.5-vl-7b", "H100-SXM5-80GB", "H20", method="whole", images=1)
    rec0 = lr.recommend("gemma-3-27b", 512, 256, devices=["H100-SXM5-80GB"])
    rec2 = lr.recommend("gemma-3-27b", 512, 256, devices=["H100-SXM5-80GB"], images=2)
    assert rec2.workload.image_tokens == 512
    assert rec2.ranking[0].throughput_per_gpu_tok_s < rec0.ranking[0].throughput_per_gpu_tok_s


# ---- configs ---------------------------------------------------------------------------------

def _qwen_vl(**vision) -> dict:
    base = {"depth": 4, "hidden_size": 64, "num_heads": 4, "intermediate_size": 128, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [3],
            "out_hidden_size": 128}
    return {"model_type": "qwen2_5_vl", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 256, "vocab_size": 1000, "max_position_embeddings": 4096,
            "sliding_window": 1024, "use_sliding_window": False, "vision_config": {**base, **vision}}


def test_qwen_vl_text_tower_reads_as_qwen2():
    m = model_from_config(_qwen_vl(), model_id="tiny-vl")
    assert m.model_type == "qwen2" and m.qkv_bias and m.num_sliding_layers == 0
    assert m.vision.full_attention_layers == 1 and m.vision.window_layers == 3


@pytest.mark.parametrize("vision,message", [
    ({"window_size": 100}, "window_size"),
    ({"fullatt_block_indexes": [9]}, "fullatt_block_indexes"),
    ({"depth": 0}, "depth"),
    ({"hidden_size": 65}, "not divisible"),
    ({"hidden_size": "64"}, "hidden_size"),
])
def test_bad_vision_configs_are_named(vision, message):
    with pytest.raises(InputError, match=message):
        model_from_config(_qwen_vl(**vision), model_id="tiny-vl")


def test_an_unknown_vision_tower_loads_the_text_model_and_refuses_images():
    cfg = {**_qwen_vl(), "model_type": "qwen2", "vision_config": {"model_type": "mystery_vit", "hidden_size": 8}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quietly: a bundled config of such a model loads without noise
        m = model_from_config(cfg, model_id="odd")
    assert m.vision is None
    with pytest.raises(InputError, match="odd has no vision tower"):
        lr.estimate(m, "a100", images=1)


# ---- command line ----------------------------------------------------------------------------

def test_cli_images(tmp_path):
    rc, out, _ = run_cli("estimate", "--model", "qwen2.5-vl-7b", "--hardware", "h100", "--images", "2", "--json")
    assert rc == 0
    d = json.loads(out)
    assert (d["images"], d["image_tokens"], d["image_size"]) == (2, 2738, [1036, 1036])
    rc, out, _ = run_cli("estimate", "--model", "qwen2.5-vl-7b", "--hardware", "h100", "--images", "1",
                         "--image-size", "448x448", "--json")
    assert json.loads(out)["image_tokens"] == 256
    rc, _, err = run_cli("estimate", "--model", "llama2-7b", "--hardware", "h100", "--images", "1")
    assert rc == 2 and "no vision tower" in err
    rc, _, err = run_cli("estimate", "--model", "gemma-3-27b", "--hardware", "h100", "--images", "1", "--mode",
                         "closed", "--batch", "4")
    assert rc == 2 and "--images" in err
    rc, out, _ = run_cli("estimate", "--model", "gemma-3-27b", "--hardware", "h100", "--images", "2", "--rate", "2",
                         "--json")
    assert rc == 0 and json.loads(out)["image_tokens"] == 512
    show = json.loads(run_cli("models", "show", "qwen2.5-vl-7b", "--json")[1])
    assert show["vision"]["params"] == 676_550_144 and show["vision"]["tokens_per_image"] == 1369
    assert json.loads(run_cli("models", "show", "llama2-7b", "--json")[1])["vision"] is None
    csv = tmp_path / "w.csv"
    csv.write_text("model,hardware,batch,input_len,output_len,images\n"
                   "gemma-3-27b,h100,4,512,128,0\ngemma-3-27b,h100,4,512,128,3\nllama2-7b,h100,1,512,128,1\n")
    rows = json.loads(run_cli("estimate", "--from-csv", str(csv), "--json")[1])
    assert [r.get("image_tokens") for r in rows[:2]] == [0, 768] and rows[1]["ttft_s"] > rows[0]["ttft_s"]
    assert "no vision tower" in rows[2]["error"]
    rc, out, _ = run_cli("compare", "--model", "gemma-3-27b", "--a", "h100", "--b", "h20", "--method", "ops",
                         "--batch", "1,8", "--seq", "128,1024", "--images", "1", "--json")
    assert rc == 0 and json.loads(out)["image_tokens"] == 256
    rc, out, _ = run_cli("recommend", "--model", "gemma-3-27b", "--input", "512", "--output", "128", "--devices",
                         "h100", "--images", "1", "--json")
    assert rc == 0 and json.loads(out)["image_tokens"] == 256


def test_a_fleet_for_requests_with_images_needs_more_replicas():
    fleet = ["recommend", "--model", "gemma-3-27b", "--input", "512", "--output", "256", "--rate", "5", "--devices",
             "h100", "--ttft-slo", "1", "--tpot-slo", "0.05", "--json"]
    plain, heavy = (json.loads(run_cli(*fleet, *extra)[1]) for extra in ([], ["--images", "1"]))
    assert heavy["image_tokens"] == 256 and "images" not in plain
    assert heavy["ranking"][0]["replicas"] > plain["ranking"][0]["replicas"]


def test_ops_vision_phase_lists_the_encoder():
    rc, out, _ = run_cli("ops", "--model", "gemma-3-27b", "--hardware", "h100", "--phase", "vision", "--batch", "2",
                         "--json")
    d = json.loads(out)
    assert rc == 0 and d["images"] == 2 and d["tokens_per_image"] == 256
    v = lr.load_model("gemma-3-27b").vision
    total = sum(r["flops"] for r in d["operators"])
    assert total == pytest.approx(float(sum(op.count * op.flops for op in vision_ops(v, 2))), rel=1e-12)
    rc, _, err = run_cli("ops", "--model", "llama2-7b", "--hardware", "h100", "--phase", "vision")
    assert rc == 2 and "no vision tower" in err


def test_images_widen_the_interval_by_the_stated_factor():
    # No public measurement covers a vision encoder: the interval's spread (around the median)
    # grows by the stated factor 1.5 of catalog/calibration/default.yaml (widen.images).
    r = lr.estimate("gemma-3-27b", "H100-SXM5-80GB", batch=8, input_len=512, output_len=128, images=[0, 1])
    spread = np.log(r.interval["ttft_s"][1] / r.interval["ttft_s"][0])
    assert spread[1] == pytest.approx(1.5 * spread[0], rel=1e-9)
    assert r.to_dict()["interval"]["widened_for"] == [[], ["images"]]


def test_serving_at_a_rate_encodes_each_admitted_prompts_images():
    from dataclasses import replace

    from llmroofline.serving import serve
    from llmroofline.serving.steady import Stage

    # A step admitting p prompts pays p x the encoder's seconds for one request's images on top of
    # the same step without images (one lane: no pipeline, no data-parallel attention).
    dep = make_deployment("qwen2.5-vl-7b", "H100-SXM5-80GB")
    eff = load_calibration("default").for_device(dep.hardware)
    plain = Stage(dep, eff)
    with_images = replace(plain, encoder_s=0.02)
    args = (np.array([8.0]), 2000.0, np.array([3.0]), 1625.0, 0.0)
    assert np.allclose(with_images.step(*args) - plain.step(*args), 3 * 0.02, rtol=1e-12, atol=0)
    # Served: each request's prompt is 256 + 1369 tokens and its images cost the encoder's pass.
    kw = dict(input_len=256, output_len=256, rate=[1.0, 4.0])
    s0 = serve("qwen2.5-vl-7b", "H100-SXM5-80GB", **kw)
    s1 = serve("qwen2.5-vl-7b", "H100-SXM5-80GB", images=1, **kw)
    assert np.all(s1.ttft_s > s0.ttft_s) and s1.capacity_req_s < s0.capacity_req_s
    d = s1.to_dict()
    assert (d["images"], d["image_tokens"], d["input_len"]) == (1, 1369, 256.0)
    with pytest.raises(InputError, match="no vision tower"):
        serve("llama2-7b", "H100-SXM5-80GB", images=1, **kw)


def test_energy_counts_the_encoders_work():
    # Same wall time, more active seconds: the encoder's work on the batch's images is counted
    # (not idle power), and a text model's energy is unchanged by images = 0.
    from llmroofline.estimate import workload_energy

    dep = make_deployment("gemma-3-27b", "H100-SXM5-80GB")
    eff = load_calibration("default").for_device(dep.hardware)
    B, In, Out = np.array(8.0), np.array(768.0), np.array(128.0)
    args = (dep, eff, "static", (), B, In, Out, np.array(5.0))
    idle = workload_energy(*args).j_per_token
    busy = workload_energy(*args, images=np.array(1.0)).j_per_token
    assert busy > idle
    r = lr.estimate("gemma-3-27b", "H100-SXM5-80GB", batch=8, input_len=512, output_len=128, images=[0, 1])
    assert np.all(np.diff(r.energy_j_per_token) > 0)
