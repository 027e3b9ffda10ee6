"""Fuzzing the loaders: whatever a user feeds in, the answer is a result or an InputError.

Mutated and random Hugging Face config.json mappings, mutated device spec YAML (including YAML
tags that would build Python objects: yaml.safe_load refuses them), mutated measurement and
workload CSV files, and random command-line arguments. Through the command line: exit status 0,
or 2 with exactly one line on stderr and no traceback. Example counts: tests/conftest.py profiles.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import llmroofline as lr  # noqa: E402
from llmroofline import model as model_module  # noqa: E402
from llmroofline.catalog import CATALOG_ROOT  # noqa: E402
from llmroofline.cli import main  # noqa: E402
from llmroofline.errors import InputError, unknown_name  # noqa: E402
from llmroofline.hardware import hardware_from_dict, load_hardware_file  # noqa: E402
from llmroofline.model import model_from_config  # noqa: E402
from llmroofline.operators import AttentionGroup  # noqa: E402
from llmroofline.validate import read_measurements  # noqa: E402

from .conftest import REPO_ROOT, round_device  # noqa: E402

CONFIG_FILES = sorted((CATALOG_ROOT / "models").glob("*.json"))
SPEC_FILES = sorted((CATALOG_ROOT / "hardware").glob("*.yaml"))
MEASUREMENTS = REPO_ROOT / "data" / "measured-public.csv"

# Values a config or spec field gets replaced with: wrong types, zero, negative, absurd, NaN, inf.
BAD_VALUES = [None, "abc", "", "12", -1, 0, 1, 1.5, 1e30, -1e30, 2**64, math.nan, math.inf, -math.inf, True, False,
              [], [1, 2], {}, {"a": 1}]
DELETE = "<delete>"
# Fields the config parser reads (mutating these is what exercises validation).
CONFIG_KEYS = [
    "model_type", "text_config", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer", "num_layers",
    "num_attention_heads", "n_head", "num_key_value_heads", "num_kv_heads", "multi_query", "new_decoder_architecture",
    "head_dim", "kv_channels", "vocab_size", "intermediate_size", "intermediate_size_mlp", "tie_word_embeddings",
    "num_local_experts", "n_routed_experts", "num_experts", "num_experts_per_tok", "moe_intermediate_size",
    "n_shared_experts", "shared_expert_intermediate_size", "interleave_moe_layer_step", "first_k_dense_replace",
    "moe_layer_freq", "decoder_sparse_step", "mlp_only_layers", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "v_head_dim", "sliding_window", "attention_chunk_size", "use_sliding_window",
    "max_window_layers", "sliding_window_pattern", "layer_types", "no_rope_layers", "max_position_embeddings",
    "attention_bias", "qkv_bias", "mlp_bias", "quantization_config", "torch_dtype",
]
# Fields of quantization_config the readers check, per method.
QUANT_KEYS = ["quant_method", "bits", "w_bit", "group_size", "q_group_size", "zero_point", "fmt", "weight_block_size",
              "modules_to_not_convert", "ignored_layers", "ignore", "exclude_modules", "quant_algo", "config_groups"]
QUANT_METHODS = ["mxfp4", "fp8", "awq", "gptq", "compressed-tensors", "modelopt", "MXFP4", "bitsandbytes"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
field_values = st.one_of(st.sampled_from(BAD_VALUES), st.integers(1, 100_000), json_values)


@pytest.fixture(scope="module", autouse=True)
def no_hub():
    """No network in tests: a Hub id that is not bundled is simply unknown."""
    def offline(repo_id):
        raise unknown_name("model", repo_id, model_module.model_catalog())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_module, "_fetch_from_hub", offline)
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def assert_clean_exit(rc: int, out: str, err: str, *, json_out: bool = True) -> None:
    """Exit 0 (with JSON on stdout), or 2 with exactly one line on stderr; never a traceback."""
    assert "Traceback" not in err, err
    assert rc in (0, 2), f"rc={rc}: {err}"
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    elif json_out:
        json.loads(out)


def check_model(spec: lr.ModelSpec) -> None:
    """A model that loads is usable: exact integer parameter counts and a finite estimate."""
    assert isinstance(spec.params_total, int) and spec.params_total > 0
    assert isinstance(spec.params_active, int) and 0 < spec.params_active <= spec.params_total
    # A quantization_config that cannot be read is an error when the checkpoint's precision is asked for.
    weight_dtype = None
    if spec.checkpoint_precision is None:
        with pytest.raises(InputError, match="weight-dtype"):
            spec.weight_precision()
        weight_dtype = "fp16"
    r = lr.estimate(spec, round_device(memory_gb=10_000), batch=[1, 7], input_len=100, output_len=10,
                    calibration="none", weight_dtype=weight_dtype)
    for v in (r.ttft_s, r.tpot_s, r.e2e_s, r.throughput_tok_s, r.memory.total):
        assert np.all(np.isfinite(v)) and np.all(np.asarray(v) >= 0)


def load_config(cfg) -> lr.ModelSpec | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spec = model_from_config(cfg, model_id="fuzzed")
        except InputError as e:
            assert "\n" not in str(e)
            return None
    check_model(spec)
    return spec


# ---- config.json ---------------------------------------------------------------------------

edits = st.lists(st.tuples(st.integers(0, 10**6), st.one_of(st.just(DELETE), field_values), st.booleans()),
                 min_size=1, max_size=4)


def mutate_config(path: Path, changes) -> dict:
    cfg = json.loads(path.read_text())["config"]
    for index, value, read_field in changes:
        target = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) and index % 2 else cfg
        keys = sorted(target) or CONFIG_KEYS
        if read_field:  # mostly fields the parser reads, present or not
            keys = [k for k in CONFIG_KEYS if k in target] or CONFIG_KEYS
        key = keys[index % len(keys)]
        if value == DELETE and not isinstance(value, bool):
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    return cfg


@given(path=st.sampled_from(CONFIG_FILES), changes=edits)
def test_mutated_bundled_configs_load_or_raise_input_error(path, changes):
    load_config(mutate_config(path, changes))


@given(cfg=st.dictionaries(st.sampled_from(CONFIG_KEYS), field_values, max_size=12))
def test_random_configs_load_or_raise_input_error(cfg):
    load_config(cfg)


@given(path=st.sampled_from([p for p in CONFIG_FILES if "quantization_config" in p.read_text()]),
       method=st.sampled_from(QUANT_METHODS),
       changes=st.dictionaries(st.sampled_from(QUANT_KEYS), st.one_of(st.just(DELETE), field_values), max_size=4))
def test_mutated_quantization_configs_load_or_raise_input_error(path, method, changes):
    cfg = json.loads(path.read_text())["config"]
    qc = {**cfg["quantization_config"], "quant_method": method}
    for key, value in changes.items():
        if value == DELETE and not isinstance(value, bool):
            qc.pop(key, None)
        else:
            qc[key] = copy.deepcopy(value)
    load_config({**cfg, "quantization_config": qc})


@given(cfg=json_values)
def test_any_json_document_as_a_config(cfg):
    load_config(cfg)


@given(path=st.sampled_from(CONFIG_FILES), changes=edits)
def test_mutated_config_files_through_the_cli(workdir, path, changes):
    f = workdir / "config.json"
    text = json.dumps(mutate_config(path, changes), allow_nan=True)
    f.write_text(text)
    assert_clean_exit(*run_cli(["models", "show", f, "--json"]))
    assert_clean_exit(*run_cli(["estimate", "--model", f, "--hardware", "a100", "--batch", "4", "--input", "64",
                                "--output", "8", "--calibration", "none", "--json"]))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"config"', "\ufeff{}", '{"hidden_size": NaN}'])
def test_malformed_config_files(workdir, text):
    f = workdir / "bad-config.json"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError):
        lr.load_model(str(f))
    assert_clean_exit(*run_cli(["models", "show", f, "--json"]))


def test_config_that_is_not_utf8(workdir):
    f = workdir / "latin1.json"
    f.write_bytes(b'{"model_type": "llama\xe9"}')
    with pytest.raises(InputError):
        lr.load_model(str(f))


@pytest.mark.parametrize("field,value,words", [
    ("hidden_size", 4096.5, "whole number"), ("hidden_size", True, "whole number"), ("hidden_size", "4096", "whole"),
    ("num_hidden_layers", 0, "out of range"), ("vocab_size", -1, "out of range"), ("vocab_size", 1e30, "out of range"),
    ("num_key_value_heads", 3, "not a multiple"), ("head_dim", math.nan, "whole number"),
    ("tie_word_embeddings", "yes", "true or false"), ("sliding_window", math.inf, "whole number"),
])
def test_config_errors_name_the_field_and_the_value(field, value, words):
    cfg = json.loads((CATALOG_ROOT / "models" / "meta-llama__Llama-2-7b-hf.json").read_text())["config"]
    cfg[field] = value
    with pytest.raises(InputError, match=words) as e:
        model_from_config(cfg, model_id="x")
    assert field in str(e.value) and str(value)[:4] in str(e.value)


def test_moe_and_window_consistency_errors():
    base = json.loads((CATALOG_ROOT / "models" / "mistralai__Mixtral-8x7B-v0.1.json").read_text())["config"]
    with pytest.raises(InputError, match="num_experts_per_tok = 9 must be from 1 to the 8 experts"):
        model_from_config({**base, "num_experts_per_tok": 9})
    gemma = json.loads((CATALOG_ROOT / "models" / "google__gemma-3-27b-it.json").read_text())["config"]
    inner = gemma["text_config"]
    with pytest.raises(InputError, match="layer_types lists 3 layers"):
        model_from_config({**gemma, "text_config": {**inner, "layer_types": ["sliding_attention"] * 3}})
    with pytest.raises(InputError, match="layer_types must be a list"):
        model_from_config({**gemma, "text_config": {**inner, "layer_types": "sliding_attention"}})


# ---- device spec YAML ----------------------------------------------------------------------

def spec_dict(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@given(path=st.sampled_from(SPEC_FILES),
       changes=st.lists(st.tuples(st.integers(0, 10**6), st.one_of(st.just(DELETE), field_values),
                                  st.sampled_from(["top", "peak_tflops", "interconnect", "sources"])),
                        min_size=1, max_size=4))
def test_mutated_specs_load_or_raise_input_error(workdir, path, changes):
    data = spec_dict(path)
    for index, value, where in changes:
        target = data.get(where) if where != "top" and isinstance(data.get(where), dict) else data
        keys = sorted(target, key=str) or ["fp16"]
        key = keys[index % len(keys)]
        if value == DELETE and not isinstance(value, bool):
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    f = workdir / "device.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        hw = load_hardware_file(f)
    except InputError as e:
        assert "\n" not in str(e)
    else:
        assert hw.memory_bytes > 0 and hw.memory_bandwidth > 0 and all(v > 0 for v in hw.peak_flops.values())
        r = lr.estimate("llama2-7b", hw, batch=2, input_len=64, output_len=4, calibration="none")
        assert np.isfinite(float(r.e2e_s))
    assert_clean_exit(*run_cli(["hardware", "show", f, "--json"]))


YAML_PIECES = [": ", "\n", "- ", "{", "}", "[", "]", "&a ", "*a", "\t", "!!int ", "!!float ", "!!binary ",
               "!!timestamp ", "!!set ", "~", "0x", "'", '"', "#", "\x00", "é", "\ufeff", "<<: *a\n", "? ", "%YAML 9\n",
               "!!python/object/apply:os.system ['true'] "]


@given(path=st.sampled_from(SPEC_FILES),
       changes=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]),
                                  st.sampled_from(YAML_PIECES) | st.text(max_size=4)), min_size=1, max_size=6))
def test_mutated_spec_texts_load_or_raise_input_error(workdir, path, changes):
    text = path.read_text()
    for where, op, piece in changes:
        i = int(where * len(text))
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 + len(piece) * 3:]
        else:
            text = text[:i] + piece + text[i + len(piece):]
    f = workdir / "device-text.yaml"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_hardware_file(f)
    except InputError as e:
        assert "\n" not in str(e)
    assert_clean_exit(*run_cli(["hardware", "show", f, "--json"]))


@given(data=st.binary(max_size=200))
def test_random_bytes_as_a_spec(workdir, data):
    f = workdir / "bytes.yaml"
    f.write_bytes(data)
    with pytest.raises(InputError):
        load_hardware_file(f)


PYTHON_TAGS = [
    "!!python/object/apply:os.system ['touch {sentinel}']",
    "!!python/object/new:os.system ['touch {sentinel}']",
    "!!python/object/apply:builtins.open ['{sentinel}', 'w']",
    "!!python/name:os.system",
    "!!python/object:argparse.Namespace {{x: 1}}",
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
@pytest.mark.parametrize("field", ["memory_gb", "name", "peak_tflops", "notes"])
def test_python_object_tags_are_refused(tmp_path, tag, field):
    sentinel = tmp_path / "pwned"
    text = (CATALOG_ROOT / "hardware" / "H20.yaml").read_text()
    lines = [f"{field}: {tag.format(sentinel=sentinel)}" if line.startswith(f"{field}:") else line
             for line in text.splitlines()]
    if field == "peak_tflops":  # its entries are nested lines: drop them
        lines = [line for line in lines if not (line.startswith("  ") and ":" in line and line.split(":")[0].strip()
                                                in ("fp32", "tf32", "fp16", "bf16", "fp8", "int8"))]
    f = tmp_path / "evil.yaml"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_hardware_file(f)
    rc, out, err = run_cli(["hardware", "show", f, "--json"])
    assert rc == 2 and len(err.splitlines()) == 1
    # The calibration loader reads YAML the same way.
    cal = tmp_path / "evil-calibration.yaml"
    cal.write_text(f"default: {tag.format(sentinel=sentinel)}\n")
    rc, out, err = run_cli(["estimate", "--model", "llama2-7b", "--hardware", "a100", "--calibration", cal, "--json"])
    assert rc == 2 and len(err.splitlines()) == 1
    assert not sentinel.exists()


@pytest.mark.parametrize("field,value,words", [
    ("memory_gb", 0, "positive"), ("memory_gb", -80, "positive"), ("memory_gb", "80GB", "number"),
    ("memory_gb", math.nan, "positive"), ("memory_bandwidth_gbps", math.inf, "positive"),
    ("memory_bandwidth_gbps", 1e30, "implausible"), ("tdp_w", True, "number"), ("release_year", 2024.5, "whole"),
    ("release_year", "2024", "whole"), ("confidence", ["high"], "one of"), ("aliases", "h20", "list of"),
    ("name", {"a": 1}, "text"), ("id", None, "text"), ("peak_tflops", [148], "map precisions"),
])
def test_spec_errors_name_the_field_and_the_value(field, value, words):
    data = spec_dict(CATALOG_ROOT / "hardware" / "H20.yaml")
    data[field] = value
    with pytest.raises(InputError, match=words) as e:
        hardware_from_dict(data, where="H20.yaml")
    assert field in str(e.value)


def test_interconnect_and_peak_errors():
    data = spec_dict(CATALOG_ROOT / "hardware" / "H20.yaml")
    with pytest.raises(InputError, match="max_devices must be a whole number"):
        hardware_from_dict({**data, "interconnect": {**data["interconnect"], "max_devices": 2.5}})
    with pytest.raises(InputError, match="unknown precision"):
        hardware_from_dict({**data, "peak_tflops": {"fp16": 100, "fp12": 5}})
    with pytest.raises(InputError, match="peak_tflops.fp16 must be a positive number"):
        hardware_from_dict({**data, "peak_tflops": {"fp16": 0}})


# ---- measurement and workload CSV ----------------------------------------------------------

CSV_VALUES = ["", " ", "abc", "-1", "0", "1", "1.5", "1e30", "1e400", "nan", "inf", "-inf", "max", "True", "None",
              "[]", "static", "continuous", "fp7", "llama2-7b", "a100", "9" * 300, "\x00"]


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    return rows[0], rows[1:]


HEADER, BODY = read_csv(MEASUREMENTS)

csv_edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                               st.sampled_from(["set", "drop", "extend", "rename"]),
                               st.sampled_from(CSV_VALUES) | st.text(max_size=5)), min_size=1, max_size=5)


def mutated_csv(rows_index: list[int], changes) -> str:
    header = list(HEADER)
    rows = [list(BODY[i % len(BODY)]) for i in rows_index]
    for r, c, op, value in changes:
        row = rows[r % len(rows)]
        j = c % max(len(row), 1)
        if op == "set" and row:
            row[j] = value
        elif op == "drop" and row:
            del row[j]
        elif op == "extend":
            row.append(value)
        else:
            header[c % len(header)] = value
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    return buf.getvalue()


@given(rows=st.lists(st.integers(0, 10**6), min_size=1, max_size=4), changes=csv_edits)
def test_mutated_measurement_csv_reads_or_raises_input_error(workdir, rows, changes):
    f = workdir / "measurements.csv"
    f.write_text(mutated_csv(rows, changes), encoding="utf-8", errors="surrogatepass")
    try:
        read_measurements(f)
    except InputError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("column,value", [("tp", "inf"), ("input_len", "1e400"), ("metric", None)])
def test_non_finite_and_short_measurement_rows_are_input_errors(tmp_path, column, value):
    header, body = HEADER, [list(BODY[0])]
    j = header.index(column)
    body[0] = body[0][:j] if value is None else body[0][:j] + [value] + body[0][j + 1:]
    f = tmp_path / "m.csv"
    with f.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    with pytest.raises(InputError):
        read_measurements(f)


@given(rows=st.lists(st.integers(0, 10**6), min_size=1, max_size=3), changes=csv_edits,
       calibration=st.sampled_from(["none", "default"]))
def test_mutated_workload_csv_through_the_cli(workdir, rows, changes, calibration):
    f = workdir / "workloads.csv"
    f.write_text(mutated_csv(rows, changes), encoding="utf-8", errors="surrogatepass")
    rc, out, err = run_cli(["estimate", "--from-csv", f, "--calibration", calibration, "--json"])
    assert_clean_exit(rc, out, err)
    if rc == 0:  # one result per row, each an estimate or an error naming the problem
        results = json.loads(out)
        assert isinstance(results, list)
        for r in results:
            assert "error" in r or ("ttft_s" in r and "memory" in r)


@given(data=st.binary(max_size=300))
def test_random_bytes_as_a_workload_csv(workdir, data):
    f = workdir / "bytes.csv"
    f.write_bytes(data)
    assert_clean_exit(*run_cli(["estimate", "--from-csv", f, "--json"]))


def test_workload_csv_row_errors_do_not_stop_the_others(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text("id,model,hardware,tp,mode,batch,input_len,output_len\n"
                 "ok,llama2-7b,a100,1,static,8,128,16\n"
                 "frac,llama2-7b,a100,1,static,1.5,128,16\n"
                 "huge,llama2-7b,a100,1e400,static,8,128,16\n"
                 "nan,llama2-7b,a100,1,static,8,nan,16\n")
    rc, out, err = run_cli(["estimate", "--from-csv", f, "--calibration", "none", "--json"])
    assert rc == 0, err
    results = {r["id"]: r for r in json.loads(out)}
    assert "error" not in results["ok"] and results["ok"]["batch"] == 8
    assert "whole number" in results["frac"]["error"]
    assert "'tp'" in results["huge"]["error"] and "'input_len'" in results["nan"]["error"]


def test_workload_csv_without_the_required_columns(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text("name,device\nllama2-7b,a100\n")
    rc, out, err = run_cli(["estimate", "--from-csv", f, "--json"])
    assert rc == 2 and "lacks the column(s) model, hardware, input_len, output_len" in err


# ---- command-line arguments ----------------------------------------------------------------

arg_text = st.sampled_from(CSV_VALUES + ["8", "max", "1,8", "-5", "0x10", "1e3", "llama2-70b", "H20", "fp8", "int4",
                                         "/", ".", "..", "~", "a/b"]) | st.text(max_size=6)


@given(model=arg_text, hardware=arg_text, batch=arg_text, tp=arg_text, inp=arg_text, out=arg_text, wd=arg_text,
       mode=arg_text)
def test_random_estimate_arguments(model, hardware, batch, tp, inp, out, wd, mode):
    args = ["estimate", "--model", model, "--hardware", hardware, "--batch", batch, "--tp", tp, "--input", inp,
            "--output", out, "--weight-dtype", wd, "--mode", mode, "--calibration", "none", "--json"]
    assert_clean_exit(*run_cli(args))


@given(args=st.lists(st.sampled_from(["models", "hardware", "show", "list", "estimate", "ops", "--json", "--batch",
                                      "--seq", "--phase", "decode", "prefill", "llama2-7b", "a100", "0", "-1", "abc",
                                      "--tp", "3", "--model", "--hardware", "--nope"]), max_size=8))
def test_random_command_lines(args):
    rc, out, err = run_cli(args)
    assert "Traceback" not in err and rc in (0, 2), (args, rc, err)
    if rc == 2 and err:  # a bare group (`llmroofline models`) prints its help instead
        assert len(err.splitlines()) == 1, err


def test_usage_errors_are_one_line():
    rc, out, err = run_cli(["estimate", "--tp", "abc"])
    assert rc == 2 and err.startswith("error: ") and "--tp" in err and len(err.splitlines()) == 1
    rc, out, err = run_cli(["estimate", "--bogus"])
    assert rc == 2 and "--bogus" in err and len(err.splitlines()) == 1


def test_internal_errors_exit_1_and_ask_for_a_report(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr("llmroofline.cli.catalog_cmds.load_model", broken)
    rc, out, err = run_cli(["models", "show", "llama2-7b"])
    assert rc == 1 and "internal error" in err and "report" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("LLMROOFLINE_DEBUG", "1")
    rc, out, err = run_cli(["models", "show", "llama2-7b"])
    assert rc == 1 and "Traceback" in err and "simulated bug" in err


# ---- Python API ----------------------------------------------------------------------------

api_values = st.one_of(field_values, st.sampled_from([1, 2, 8, 128, "max", "fp8", "int4", "static", "continuous",
                                                      np.array([1, 8]), np.array([[1], [2]]), np.float32(4.0),
                                                      np.int64(2), np.array([True]), np.array(["a"])]))


@given(kwargs=st.dictionaries(st.sampled_from(["batch", "input_len", "output_len", "tp", "pp", "ep", "weight_dtype",
                                               "kv_dtype", "mode", "max_batch_size", "fused_attention",
                                               "kv_memory_fraction"]), api_values, max_size=4),
       model=st.sampled_from(["llama2-7b", "mistralai/Mixtral-8x7B-v0.1", "deepseek-ai/DeepSeek-V2-Lite"]))
def test_random_estimate_keywords(kwargs, model):
    try:
        r = lr.estimate(model, round_device(), calibration="none", **kwargs)
    except InputError as e:
        assert "\n" not in str(e)
        return
    for v in (r.ttft_s, r.tpot_s, r.e2e_s, r.throughput_tok_s, r.memory.total):
        assert np.all(np.isfinite(v)) and np.all(np.asarray(v) >= 0)


@given(batch=api_values, new=api_values, past=api_values, tp=api_values)
def test_random_operator_groups(batch, new, past, tp):
    m = lr.load_model("llama2-7b")
    try:
        ops = lr.forward_ops(m, groups=[AttentionGroup(batch, new, past)],
                             sharding=lr.operators.Sharding(tp=tp))  # type: ignore[arg-type]
    except InputError:
        return
    for op in ops:
        assert np.all(np.isfinite(op.flops)) and np.all(np.asarray(op.bytes) >= 0)


# ---- bugs found by fuzzing, fixed: kept as regression tests ----

@pytest.mark.parametrize("name", ["~nosuchuser-llmroofline/calibration.yaml", "x" * 300 + ".yaml"])
def test_unreadable_calibration_names_are_input_errors(name):
    with pytest.raises(InputError):
        lr.load_calibration(name)


@pytest.mark.parametrize("kwargs", [dict(output_len="abc"), dict(output_len=math.nan), dict(output_len=math.inf),
                                    dict(output_len=None), dict(batch=[[1], [2, 3]]), dict(seq=[True])],
                         ids=["text", "nan", "inf", "none", "ragged", "bool"])
def test_compare_bad_arguments_are_input_errors(kwargs):
    with pytest.raises(InputError):
        lr.compare("llama2-7b", "a100", "h20", **kwargs)


# ---- hostile names and YAML mappings --------------------------------------------------------------

CONTROL = st.sampled_from(["\x1b[31m", "\x1b]0;t\x07", "\x1b[2J", "\x07", "\x9b1m", "\r", "\x00", "\x7f", "\x1bc"])
hostile_names = st.lists(st.one_of(CONTROL, st.text(min_size=1, max_size=30)), min_size=1, max_size=12).map("".join)


@given(name=hostile_names, command=st.sampled_from([["models", "show"], ["hardware", "show"],
                                                     ["estimate", "-d", "a100", "-m"], ["estimate", "-m", "llama2-7b",
                                                                                       "-d"]]))
def test_names_never_put_escape_sequences_on_the_terminal(name, command):
    if "\x00" in name or not name.strip() or name.startswith("-"):
        return  # a NUL cannot be an argument of a real command line; an empty or option-like name is a usage error
    rc, out, err = run_cli([*command, name])
    assert rc in (0, 2), (rc, err)
    for text in (out, err):
        assert not any(c in text for c in "\x1b\x07\x9b\x00\x7f\r"), repr(text)
    assert len(err) <= 2100


yaml_keys = st.sampled_from(["a", "b", "c", "memory_gb", "1", "true", "x y"])


@given(pairs=st.lists(st.tuples(yaml_keys, st.integers(0, 9)), min_size=1, max_size=6), nested=st.booleans())
def test_yaml_with_a_repeated_key_is_refused_and_any_other_loads(pairs, nested):
    from llmroofline.files import parse_yaml

    body = "".join(f"{'  ' if nested else ''}{json.dumps(k)}: {v}\n" for k, v in pairs)
    text = ("outer:\n" + body) if nested else body
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        with pytest.raises(InputError, match="twice"):
            parse_yaml(text, "test")
    else:
        data = parse_yaml(text, "test")
        assert (data["outer"] if nested else data) == dict(pairs)
