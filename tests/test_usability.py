"""What a new user meets: names, wording, help, number formats, warnings and the headlines of
each command (issue 13's figures and command-line items)."""

from __future__ import annotations

import json
import re

import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.model import model_catalog

from .conftest import REPO_ROOT


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("base, instruct", [
    ("meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct"),
    ("meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct"),
    ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
    ("Qwen/Qwen2.5-72B", "Qwen/Qwen2.5-72B-Instruct"),
])
def test_base_and_instruct_ids_both_resolve(base, instruct):
    b, i = lr.load_model(base), lr.load_model(instruct)
    assert b.id == base and i.id == instruct
    assert i.base_id == base and b.base_id == base
    assert b.params_total == i.params_total and b.num_layers == i.num_layers
    assert lr.load_model(base.lower()).id == base


def test_config_source_says_where_the_config_comes_from():
    for m in model_catalog().values():
        assert re.fullmatch(r"https://huggingface\.co/[^ ]+/config\.json", m.config_source), m.id
        assert "find_string" not in m.config_notes and "stored material" not in m.config_notes, m.id


def test_no_seed_in_user_facing_text(capsys):
    for argv in (["--help"], ["ops", "--help"], ["roofline", "--help"], ["compare", "--help"], ["demo", "--help"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "seed" not in out and "article's GPUs" not in out
    code, out, _ = run(capsys, "--help")
    assert "LLMRoofline article" in out
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "the LLMRoofline article" in readme and "seed" not in readme


# ---- help and version -------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--help"], ["estimate", "--help"], ["roofline", "--help"], ["calibrate", "--help"],
                                  ["models", "show", "--help"], ["recommend", "--help"]])
def test_help_has_no_python_type_placeholders(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert not re.search(r"<(bool|str|int|float|path)>", out), out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"llmroofline {lr.__version__}"
