"""The comparison mesh: the article's statements, laws (symmetry, TP invariance), memory masks,
axis parsing, and the `compare` command's JSON and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmroofline import compare, load_hardware, load_model, memory_use, parse_axis
from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.memory import usable_memory
from llmroofline.plots import mesh_masks

A100, H20 = "A100-SXM4-80GB", "H20"
L13, L70 = "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf"
MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
METHODS = ("whole", "ops")


# ---- the article's statements ---------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_llama13b_a100_wins_short_sequences_large_batches(method):
    """'A100 is ahead in the upper left: the shorter the sequence and the larger the batch.'"""
    c = compare(L13, A100, H20, method=method)
    assert c.ratio[-1, 0] > 1.3  # batch 1024, length 128: compute-bound
    assert c.ratio[0, 0] == pytest.approx(2039 / 4000, rel=0.02)  # batch 1: pure bandwidth ratio
    long = c.seq >= 8192
    assert long.any() and np.all(c.ratio[:, long] < 1)  # long sequences stay memory-bound
    # Along the top row the advantage fades as the sequence grows.
    assert np.all(np.diff(c.ratio[-1]) <= 1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_mixtral_a100_behind_on_the_article_grid(method):
    """'Mixtral 8x7B: A100 stays behind H20 throughout' (the article's grid: batch up to 256)."""
    c = compare(MIXTRAL, A100, H20, method=method, batch="1:256", seq="128:2048")
    assert np.all(c.ratio < 1)


def test_mixtral_whole_behind_wherever_it_fits_on_the_default_grid():
    """On the default grid (batch up to 1024) method 1 puts A100 ahead only at batch > 256 with
    short sequences; Mixtral's 93 GB of fp16 weights never fit in one A100's 84.8 GB (80 GiB less
    the runtime's 1 GiB), so those cells are not runnable on the A100."""
    c = compare(MIXTRAL, A100, H20, method="whole")
    assert not c.fits_a.any() and c.fits_b.any()
    assert np.all(c.ratio[c.batch <= 256] < 1)


def test_gqa_moves_the_border_towards_a100():
    """'With Llama-2-70B (GQA) A100's region grows' (roofline verdict, memory aside)."""
    area = {m: (compare(m, A100, H20, method="whole").ratio > 1).mean() for m in (L13, L70)}
    assert area[L70] > 2 * area[L13] > 0


def test_moe_intensity_below_dense():
    """MoE pushes the task to memory-bound: at every cell Mixtral's ratio <= Mistral-7B's dense one."""
    kw = dict(method="whole", batch="1:256", seq="128:2048")
    moe = compare(MIXTRAL, A100, H20, **kw).ratio
    dense = compare("mistralai/Mistral-7B-v0.1", A100, H20, **kw).ratio
    assert np.all(moe <= dense + 1e-12)


# ---- laws ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ("decode", "ttft", "e2e"))
def test_swapping_devices_inverts_the_ratio(method, metric):
    kw = dict(method=method, metric=metric, batch="1,16,256", seq="128,4096,32768")
    ab, ba = compare(L13, A100, H20, **kw), compare(L13, H20, A100, **kw)
    np.testing.assert_allclose(ab.ratio * ba.ratio, 1.0, rtol=1e-12)
    np.testing.assert_array_equal(ab.fits_a, ba.fits_b)
    np.testing.assert_array_equal(ab.fits_b, ba.fits_a)


def test_same_device_ratio_is_one():
    c = compare(L13, A100, "A800-SXM4-80GB", method="ops")
    np.testing.assert_allclose(c.ratio, 1.0, rtol=1e-12)


def test_tensor_parallel_leaves_method1_ratio_unchanged():
    """'With TP, numerator and denominator are both divided by the GPU count: AI hardly changes.'"""
    one = compare(L70, A100, H20, method="whole")
    two = compare(L70, A100, H20, method="whole", tp_a=2, tp_b=2)
    np.testing.assert_allclose(one.ratio, two.ratio, rtol=1e-9)
    assert not one.fits_a.any() and two.fits_a.any()  # but only two devices hold the weights


# ---- memory masks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model,tp", [(L13, 1), (MIXTRAL, 1), (L70, 2)])
def test_masks_are_exactly_the_cells_that_do_not_fit(model, tp):
    c = compare(model, A100, H20, method="ops", tp_a=tp, tp_b=tp)
    m = load_model(model)
    B, S = c.batch[:, None], c.seq[None, :]
    fits = {}
    for key, dev in (("a", A100), ("b", H20)):
        mem = memory_use(m, load_hardware(dev), batch=B, context=S, prefill_tokens=S, weight_dtype="fp16",
                         kv_dtype="fp16", tp=tp)
        fits[key] = np.broadcast_to(mem.total <= usable_memory(load_hardware(dev)), c.ratio.shape)
    masks = mesh_masks(c)
    np.testing.assert_array_equal(masks["a"], ~fits["a"] & fits["b"])
    np.testing.assert_array_equal(masks["b"], fits["a"] & ~fits["b"])
    np.testing.assert_array_equal(masks["neither"], ~fits["a"] & ~fits["b"])
    # Every cell is in exactly one category or fits on both.
    total = masks["a"].astype(int) + masks["b"] + masks["neither"] + (fits["a"] & fits["b"])
    assert np.all(total == 1)


def test_fitting_is_monotone_in_batch_and_length():
    c = compare(L13, A100, H20)
    for f in (c.fits_a, c.fits_b):
        assert np.all(np.diff(f.astype(int), axis=0) <= 0)
        assert np.all(np.diff(f.astype(int), axis=1) <= 0)


# ---- parse_axis ------------------------------------------------------------------------------------

def test_parse_axis_range_is_log_spaced_whole_numbers():
    v = parse_axis("1:1024", "batch")
    assert v[0] == 1 and v[-1] == 1024
    assert np.all(np.diff(v) > 0) and np.all(v == np.round(v))
    ratios = v[1:] / v[:-1]
    assert ratios.max() <= 2.0  # roughly geometric: no big holes (1 -> 2 is the first step)


def test_parse_axis_count_and_lists():
    assert parse_axis("128:131072:11", "seq").tolist() == [2.0 ** k for k in range(7, 18)]
    assert parse_axis("1,8,64", "batch").tolist() == [1, 8, 64]
    assert parse_axis(" 64 , 8 ", "batch").tolist() == [64, 8]  # a list is taken as given
    assert parse_axis([1, 2, 3], "batch").tolist() == [1, 2, 3]


@pytest.mark.parametrize("text,needle", [
    ("10:1", "LO:HI"), ("0:10", "LO:HI"), ("1:10:1", "points"), ("", "whole numbers"), ("a:b", "neither"),
    ("1.5", "whole numbers"), ("1,-4", "whole numbers"), ("1:2:3:4", "neither"), ("1:1e12", "absurd"),
    ("nan", "whole numbers"),
])
def test_parse_axis_rejects_bad_input(text, needle):
    with pytest.raises(InputError, match=needle) as e:
        parse_axis(text, "seq")
    assert "seq" in str(e.value)


# ---- the command --------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_compare_json_is_the_spec_document(capsys):
    code, out, err = run(capsys, "compare", "--model", "llama2-13b", "--a", "a100", "--b", "h20", "--json",
                         "--batch", "1,64,1024", "--seq", "128:131072:6")
    assert code == 0, err
    d = json.loads(out)
    assert d["batch"] == [1, 64, 1024] and len(d["seq"]) == 6
    assert np.shape(d["ratio"]) == (3, 6) == np.shape(d["fits_a"]) == np.shape(d["fits_b"])
    assert d["ratio"][2][0] > 1 > d["ratio"][0][0]
    assert d["a"] == A100 and d["b"] == H20 and d["method"] == "whole"


def test_cli_compare_both_methods(capsys):
    code, out, err = run(capsys, "compare", "--model", "llama2-13b", "--a", "a100", "--b", "h20", "--method", "both",
                         "--json", "--batch", "1:64:4", "--seq", "128:1024:4")
    assert code == 0, err
    d = json.loads(out)
    assert d["methods"] == ["ops", "whole"]
    assert d["ratio"] == d["ops"]["ratio"] and d["method"] == "ops"  # the ops mesh at the top level
    assert d["whole"]["method"] == "whole" and np.shape(d["whole"]["ratio"]) == (4, 4)


def test_cli_compare_summary_and_files(capsys, tmp_path):
    png, html, csv = tmp_path / "m.png", tmp_path / "m.html", tmp_path / "m.csv"
    code, out, err = run(capsys, "compare", "--model", "llama2-13b", "--a", "a100", "--b", "h20", "--batch", "1:1024:5",
                         "--seq", "128:8192:4", "--out", str(png), "--html", str(html), "--csv", str(csv))
    assert code == 0, err
    assert "faster in" in out and "memory:" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.stat().st_size > 1_000_000  # plotly.js inline
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("method,metric,batch,seq") and len(lines) == 1 + 5 * 4


@pytest.mark.parametrize("args,needle", [
    (["--batch", "1024:1"], "--batch"),
    (["--seq", "0:100"], "--seq"),
    (["--batch", "1:1000000:2000", "--seq", "128:1000000:2000"], "cells"),
    (["--method", "roofline"], "--method"),
    (["--metric", "tpot"], "--metric"),
    (["--b", "no-such-gpu"], "no-such-gpu"),
    (["--weight-dtype-a", "fp7"], "fp7"),
    (["--out", "figure.gif"], "extension"),
    (["--out", "/no/such/folder/m.png"], "does not exist"),
])
def test_cli_compare_bad_input_exits_2(capsys, args, needle):
    base = {"--model": "llama2-13b", "--a": "a100", "--b": "h20"}
    for k in list(base):
        if k in args:
            del base[k]
    argv = ["compare", *[x for kv in base.items() for x in kv], *args]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_cli_compare_model_that_fits_nowhere(capsys, tmp_path):
    png = tmp_path / "x.png"
    code, out, err = run(capsys, "compare", "--model", "llama2-70b", "--a", "a100", "--b", "h20", "--out", str(png))
    assert code == 2 and "fits in memory on neither" in err and "--tp-a" in err
    assert not png.exists()  # no blank picture


def test_cli_compare_never_overwrites_a_foreign_file(capsys, tmp_path):
    target = tmp_path / "mine.png"
    target.write_bytes(b"precious")
    argv = ["compare", "--model", "llama2-7b", "--a", "a100", "--b", "h20", "--batch", "1:8:2", "--seq", "128:256:2",
            "--out", str(target)]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "--force" in err and target.read_bytes() == b"precious"
    code, _, err = run(capsys, *argv, "--force")
    assert code == 0, err
    assert target.read_bytes()[:4] == b"\x89PNG"
