"""Precision from the checkpoint: quantization_config read per module group, bytes derived by hand."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.memory import weights_per_device
from llmroofline.operators import AttentionGroup, op_totals
from llmroofline.precision import BYTES_PER_ELEMENT, gemm_precision, plain

from .conftest import round_device

# A tiny MoE: 2 layers, hidden 64, 4 heads and 2 KV heads of 16, 4 experts of width 32 (top 2),
# vocabulary 100; experts in MXFP4, attention, router and embeddings in bf16 (as gpt-oss).
TINY = {
    "model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 32, "num_local_experts": 4, "num_experts_per_tok": 2,
    "vocab_size": 100, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.block_sparse_moe.gate", "model.embed_tokens", "lm_head"]},
}
# Elements by hand: attention per layer q 64x64 + k 64x32 + v 64x32 + o 64x64 = 12,288;
# one expert 3 x 64 x 32 = 6,144; router 64 x 4; embeddings 2 x 100 x 64; norms 2 x 64 per layer + 64.
ATTN = 2 * 12_288
EXPERTS = 2 * 4 * 6_144
ROUTER = 2 * 64 * 4
EMB = 2 * 100 * 64
NORMS = 2 * 2 * 64 + 64


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


# ---- bytes per element ---------------------------------------------------------------------

def test_scale_bytes_per_format():
    assert BYTES_PER_ELEMENT["mxfp4"] == 0.5 + 1 / 32 == 0.53125  # one E8M0 byte per 32 values
    assert BYTES_PER_ELEMENT["nvfp4"] == 0.5 + 1 / 16 == 0.5625  # one E4M3 byte per 16 values
    assert BYTES_PER_ELEMENT["fp4"] == BYTES_PER_ELEMENT["nvfp4"]  # the old name keeps its meaning
    assert BYTES_PER_ELEMENT["int4"] == 0.5 + 2 / 128
    assert lr.load_model("deepseek-v3").weight_precision().bytes("experts") == 1 + 4 / (128 * 128)


@pytest.mark.parametrize("qc, group, expected, precision", [
    # fp8 with one fp32 scale per 128x128 block: 1 + 4/16384
    ({"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}, "attention", 1 + 4 / 16384, "fp8"),
    ({"quant_method": "fp8", "activation_scheme": "static"}, "mlp", 1.0, "fp8"),  # per-tensor scale
    # AWQ: 4-bit weights, an fp16 scale and a 4-bit zero point per group of 128: 0.5 + 2/128 + 0.5/128
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "mlp",
     0.5 + 2 / 128 + 0.5 / 128, "int4"),
    ({"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": False}, "attention", 0.5 + 2 / 64, "int4"),
    # GPTQ stores qzeros even when symmetric; 8 bit: 1 + 2/128 + 1/128
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}, "mlp",
     0.5 + 2 / 128 + 0.5 / 128, "int4"),
    ({"quant_method": "gptq", "bits": 8, "group_size": 128}, "attention", 1 + 2 / 128 + 1 / 128, "int8"),
    # GPTQ group_size -1: one scale per output channel, a group as wide as the 64 inputs
    ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "mlp", 0.5 + 2 / 64 + 0.5 / 64, "int4"),
    # compressed-tensors NVFP4 and symmetric W4A16 (no zero points)
    ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
          "num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True}}}},
     "mlp", 0.5 + 1 / 16, "nvfp4"),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
          "num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}}}},
     "attention", 0.5 + 2 / 128, "int4"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"targets": ["Linear"], "weights": {
        "num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128]}}}},
     "mlp", 1 + 4 / 16384, "fp8"),
    # ModelOpt NVFP4
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["lm_head"]},
     "mlp", 0.5 + 1 / 16, "nvfp4"),
])
def test_formats_of_each_method(qc, group, expected, precision):
    dense = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 128, "vocab_size": 100, "quantization_config": qc}
    wp = lr.model_from_config(dense).weight_precision()
    assert wp.format(group).precision == precision
    assert wp.bytes(group) == pytest.approx(expected, rel=1e-15)
    assert wp.bytes("embeddings") == 2.0  # tables stay 16 bit


def test_excluded_modules_stay_16_bit():
    qc = {"quant_method": "modelopt", "quant_algo": "NVFP4", "exclude_modules": ["lm_head", "model.layers.*.self_attn*"]}
    m = lr.model_from_config({**TINY, "quantization_config": qc})
    wp = m.weight_precision()
    assert (wp.format("attention").precision, wp.format("experts").precision) == ("bf16", "nvfp4")
    assert wp.label == "nvfp4 (experts), bf16 (rest)"
    # compressed-tensors regexes: attention left out, experts quantized
    ct = {"quant_method": "compressed-tensors", "ignore": ["lm_head", "re:.*self_attn.*"],
          "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
                                                                     "strategy": "group", "group_size": 32}}}}
    wp = lr.model_from_config({**TINY, "quantization_config": ct}).weight_precision()
    assert wp.format("attention").precision == "bf16"
    assert wp.bytes("experts") == 0.5 + 2 / 32


# ---- a tiny config by hand --------------------------------------------------------------------

def test_tiny_moe_weight_bytes_by_hand():
    m = lr.model_from_config(TINY, model_id="tiny")
    assert sum(e + v for e, v in m.weight_elements().values()) == m.params_total == ATTN + EXPERTS + ROUTER + EMB + NORMS
    # bf16 attention 49,152 B + MXFP4 experts 49,152 x 0.53125 = 26,112 B + router 1,024 B
    # + embeddings 25,600 B + norms 640 B = 102,528 B
    assert ATTN * 2 == 49_152 and EXPERTS * (0.5 + 1 / 32) == 26_112
    assert m.weight_bytes() == 49_152 + 26_112 + 1_024 + 25_600 + 640 == 102_528
    assert m.weight_precision().label == "mxfp4 (experts), bf16 (rest)"
    # An explicit precision overrides the linear layers only: fp8 attention and experts, 1 byte each.
    assert m.weight_bytes("fp8") == ATTN + EXPERTS + 2 * (ROUTER + EMB + NORMS) == 100_992
    assert m.weight_bytes("fp16") == 2 * m.params_total  # the old spelling: everything 16 bit
    # Memory per device: on one device, all of it.
    assert weights_per_device(m) == 102_528
    # tp = 2: layers and embeddings split in two (KV heads 2 divide by 2, nothing replicated).
    assert weights_per_device(m, tp=2) == 102_528 / 2


def test_tiny_moe_decode_reads_each_group_at_its_precision():
    m = lr.model_from_config(TINY, model_id="tiny")
    ops = lr.forward_ops(m, groups=[AttentionGroup(1, 1, 9)])
    # One token touches top-2 experts per layer: 2 layers x 2 experts x 6,144 x 0.53125 bytes.
    assert float(op_totals(ops, "moe/experts")["weight_bytes"]) == pytest.approx(2 * 2 * 6_144 * 0.53125)
    projections = op_totals(ops, "attn/")["weight_bytes"] - op_totals(ops, "attn/norm")["weight_bytes"]
    assert float(projections) == ATTN * 2
    assert float(op_totals(ops, "moe/router")["weight_bytes"]) == ROUTER * 2
    assert float(op_totals(ops, "lm_head")["weight_bytes"]) == 100 * 64 * 2
    assert {op.precision for op in ops if op.name.startswith("moe/experts_") and op.kind == "gemm"} == {"fp4"}


def test_fp4_compute_only_where_the_device_has_it():
    assert gemm_precision("mxfp4", {"fp16", "bf16", "fp8", "fp4"}) == "fp4"
    assert gemm_precision("nvfp4", {"fp16", "fp8"}) == "fp8"
    assert gemm_precision("mxfp4", {"fp16", "bf16"}) == "fp16"  # weight-only on Ampere-class devices
    assert gemm_precision("int4", {"fp16", "fp8", "fp4"}) == "fp16"
    m = lr.model_from_config(TINY, model_id="tiny")
    dep = lr.make_deployment(m, round_device())  # fp16 and fp8, no fp4
    assert dep.gemm_precisions["experts"] == "fp8" and dep.gemm_precisions["attention"] == "fp16"
    dep = lr.make_deployment(m, round_device(peak_tflops={"fp16": 100, "fp4": 400}))
    assert dep.gemm_precisions["experts"] == "fp4"
    exp = [op for op in dep.ops([AttentionGroup(1, 1, 9)]) if op.name == "moe/experts_up"][0]
    assert exp.precision == "fp4"


# ---- bundled checkpoints ---------------------------------------------------------------------

def test_gpt_oss_120b_fits_on_one_h100():
    """Weights from the config's shapes: 36 layers, hidden 2880, 64 heads and 8 KV heads of 64,
    128 experts of width 2880 (MXFP4, with bf16 biases), vocabulary 201,088 (two tables)."""
    h, L, E, V = 2880, 36, 128, 201_088
    experts = L * E * 3 * h * h * (0.5 + 1 / 32) + L * E * (2 * h + h) * 2  # matrices + gate/up/down biases
    attention = L * (h * (64 + 2 * 8) * 64 + 64 * 64 * h) * 2 + L * ((64 + 2 * 8) * 64 + 64) * 2  # + qkv bias, sinks
    router = L * h * E * 2
    embeddings = 2 * V * h * 2
    norms = (L * 2 * h + h) * 2
    by_hand = experts + attention + router + embeddings + norms
    assert by_hand == pytest.approx(65.2486e9, rel=1e-5)
    r = lr.estimate("gpt-oss-120b", "H100-SXM5-80GB", batch=1, input_len=1024, output_len=1024)
    assert float(r.memory.weights) == pytest.approx(by_hand, rel=1e-12)
    assert bool(r.memory.fits)
    assert r.inputs["weight_dtype"] == "mxfp4 (experts), bf16 (rest)"
    # Published: OpenAI gpt-oss model card (Aug 2025), Table 1: checkpoint size 60.8 GiB (120b),
    # 12.8 GiB (20b). The MoE weights are MXFP4, the rest BF16.
    assert by_hand / 2**30 == pytest.approx(60.8, rel=0.01)
    assert lr.load_model("gpt-oss-20b").weight_bytes() / 2**30 == pytest.approx(12.8, rel=0.01)
    # At 16 bit it would not fit: the old default overstated the memory 3.6-fold.
    fp16 = lr.estimate("gpt-oss-120b", "H100-SXM5-80GB", batch=1, input_len=1024, output_len=1024,
                       weight_dtype="bf16")
    assert not bool(fp16.memory.fits)


def test_deepseek_v3_defaults_to_its_fp8_checkpoint():
    m = lr.load_model("deepseek-v3")
    wp = m.weight_precision()
    assert wp.label == "fp8" and wp.source == "checkpoint"
    assert {wp.format(g).precision for g in ("attention", "mlp", "experts", "shared_experts")} == {"fp8"}
    assert (wp.format("router").precision, wp.format("embeddings").precision) == ("bf16", "bf16")
    # The fp8 checkpoint against the 16-bit one: every linear matrix element saves 2 - (1 + 4/16384) bytes.
    linear = sum(m.weight_elements()[g][0] for g in ("attention", "mlp", "experts", "shared_experts"))
    assert m.weight_bytes("bf16") - m.weight_bytes() == pytest.approx(linear * (1 - 4 / 16384), rel=1e-12)
    assert m.weight_bytes() / 1e9 == pytest.approx(673.15, rel=1e-4)
    r = lr.estimate(m, "H200-SXM-141GB", tp=8, batch=1, input_len=1024, output_len=128)
    assert r.inputs["weight_dtype"] == "fp8" and r.inputs["gemm_precision"] == "fp8"
    assert bool(r.memory.fits)  # 8 x 141 GB holds the 673 GB fp8 checkpoint; at bf16 it would not
    assert not bool(lr.estimate(m, "H200-SXM-141GB", tp=8, weight_dtype="bf16").memory.fits)
    for name in ("deepseek-ai/DeepSeek-R1", "moonshotai/Kimi-K2-Instruct"):
        assert lr.load_model(name).weight_precision().label == "fp8"


def test_unquantized_checkpoints_are_16_bit():
    assert lr.load_model("llama3.1-8b").weight_precision().label == "bf16"  # torch_dtype bfloat16
    assert lr.load_model("llama2-7b").weight_precision().label == "fp16"  # torch_dtype float16
    for m in lr.list_models():
        assert sum(e + v for e, v in m.weight_elements().values()) == m.params_total, m.id
    m = lr.load_model("llama2-7b")
    assert m.weight_bytes() == m.weight_bytes("fp16") == 2 * m.params_total


def test_explicit_weight_dtype_overrides_the_checkpoint():
    m = lr.load_model("gpt-oss-120b")
    wp = m.weight_precision("fp8")
    assert wp.label == "fp8" and wp.source == "weight_dtype"
    assert wp.bytes("router") == wp.bytes("embeddings") == 2.0
    assert m.weight_precision("checkpoint") == m.weight_precision(None) == m.weight_precision("auto")
    assert m.weight_precision("MXFP4").bytes("attention") == 0.53125
    r = lr.estimate(m, "H100-SXM5-80GB", weight_dtype="fp16")
    assert r.inputs["weight_dtype"] == "fp16" and r.inputs["weight_source"] == "weight_dtype"


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("qc, words", [
    ({"quant_method": "foo"}, ["quantization_config.quant_method", "'foo'", "mxfp4"]),
    ({"bits": 4}, ["quantization_config.quant_method", "None"]),
    ("mxfp4", ["quantization_config must be an object"]),
    ({"quant_method": "gptq", "bits": 3, "group_size": 128}, ["quantization_config.bits", "3", "4 or 8"]),
    ({"quant_method": "awq", "bits": 8}, ["quantization_config.bits", "8"]),
    ({"quant_method": "awq", "group_size": 0}, ["quantization_config.group_size", "0"]),
    ({"quant_method": "gptq", "group_size": "128"}, ["quantization_config.group_size", "'128'"]),
    ({"quant_method": "fp8", "weight_block_size": [0, 128]}, ["quantization_config.weight_block_size[0]", "0"]),
    ({"quant_method": "fp8", "weight_block_size": 128}, ["quantization_config.weight_block_size", "128"]),
    ({"quant_method": "fp8", "fmt": "e3m4"}, ["quantization_config.fmt", "e3m4"]),
    ({"quant_method": "mxfp4", "modules_to_not_convert": "lm_head"}, ["modules_to_not_convert", "list"]),
    ({"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"}, ["quantization_config.quant_algo", "W4A8_AWQ"]),
    ({"quant_method": "compressed-tensors", "config_groups": {}}, ["quantization_config.config_groups"]),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"targets": ["Linear"], "weights": {
        "num_bits": 3, "type": "int", "strategy": "group", "group_size": 128}}}},
     ["config_groups.g.weights.num_bits", "3"]),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"targets": ["Linear"], "weights": {
        "num_bits": 4, "type": "float", "group_size": 8}}}}, ["config_groups.g.weights.group_size", "8"]),
])
def test_malformed_quantization_config_names_the_field(qc, words):
    m = lr.model_from_config({**TINY, "quantization_config": qc}, model_id="bad")
    # The checkpoint's precision is unknown: asking for it is an error naming the field...
    for ask in (m.weight_precision, m.weight_bytes, lambda: lr.estimate(m, round_device())):
        with pytest.raises(InputError) as e:
            ask()
        message = str(e.value)
        assert "\n" not in message and "--weight-dtype" in message
        for w in words:
            assert w in message, message
    assert m.summary()["weight_dtype"] is None and words[0] in m.summary()["weight_dtype_error"]
    # ...while an explicit precision still works.
    assert m.weight_bytes("fp8") == 100_992
    assert bool(lr.estimate(m, round_device(), weight_dtype="int4").memory.fits)


def test_malformed_quantization_config_through_the_cli(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "quantization_config": {"quant_method": "gptq", "bits": 3}}))
    rc, out, err = run_cli(["estimate", "--model", path, "--hardware", "H100-SXM5-80GB", "--json"])
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and "quantization_config.bits" in err
    rc, out, err = run_cli(["estimate", "--model", path, "--hardware", "H100-SXM5-80GB", "--json",
                            "--weight-dtype", "fp8"])
    assert rc == 0 and json.loads(out)["weight_dtype"] == "fp8"
    rc, out, err = run_cli(["models", "show", path, "--json"])
    assert rc == 0 and "quantization_config.bits" in json.loads(out)["weight_dtype_error"]


def test_bad_weight_dtype_is_an_input_error():
    with pytest.raises(InputError, match="weight_dtype"):
        lr.load_model("gpt-oss-120b").weight_precision("fp5")
    with pytest.raises(InputError, match="weight_dtype"):
        lr.estimate("gpt-oss-120b", "H100-SXM5-80GB", weight_dtype=16)


# ---- command line ------------------------------------------------------------------------------

def test_cli_estimate_echoes_the_checkpoint_precision():
    rc, out, err = run_cli(["estimate", "--model", "gpt-oss-120b", "--hardware", "H100-SXM5-80GB", "--json"])
    assert rc == 0, err
    d = json.loads(out)
    assert d["weight_dtype"] == "mxfp4 (experts), bf16 (rest)" and d["weight_source"] == "checkpoint"
    assert d["weight_formats"]["experts"] == {"format": "mxfp4 (E8M0 scale per 32)", "precision": "mxfp4",
                                              "bytes_per_element": 0.53125, "gemm_precision": "fp8"}
    assert set(d["weight_formats"]) == {"attention", "experts", "router", "embeddings"}
    assert d["memory"]["fits"] is True and 65.2 < d["memory"]["weights_gb"] < 65.3
    rc, out, _ = run_cli(["estimate", "--model", "gpt-oss-120b", "--hardware", "H100-SXM5-80GB", "--json",
                          "--weight-dtype", "fp16"])
    d = json.loads(out)
    assert rc == 0 and d["weight_dtype"] == "fp16" and d["memory"]["fits"] is False
    rc, out, _ = run_cli(["models", "show", "deepseek-v3", "--json"])
    d = json.loads(out)
    assert d["weight_dtype"] == "fp8" and d["weight_gb"]["checkpoint"] == pytest.approx(673.15, rel=1e-4)


def test_plain_precision_object_is_its_name():
    assert plain("fp16").label == "fp16" and plain("bfloat16").precision == "bf16"
    assert np.isclose(plain("nvfp4").bytes_per_element, 0.5625)


def test_multimodal_wrappers_keep_the_quantization_config_at_the_top():
    inner = {k: v for k, v in TINY.items() if k not in ("quantization_config", "torch_dtype")}
    wrapper = {"model_type": "llava", "text_config": inner, "torch_dtype": "bfloat16",
               "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128],
                                       "modules_to_not_convert": ["language_model.lm_head", "vision_tower"]}}
    wp = lr.model_from_config(wrapper, model_id="wrapped").weight_precision()
    assert wp.label == "fp8" and wp.bytes("experts") == 1 + 4 / 16384
    assert wp.format("embeddings").precision == "bf16"
