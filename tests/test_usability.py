"""What a new user meets: names, wording, help, number formats, warnings and the headlines of
each command (issue 13's figures and command-line items)."""

from __future__ import annotations

import json
import re

import numpy as np
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


# ---- estimate: lists, warnings, modes ------------------------------------------------------------

def test_estimate_takes_a_list_of_batches(capsys):
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-b", "1,8,64,256", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["batch"] == [1, 8, 64, 256] and len(d["throughput_tok_s"]) == 4
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-b", "1,8,64,256")
    assert code == 0 and out.count("\n│ ") >= 4


def test_context_beyond_the_window_is_a_warning(capsys):
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-i", "100000", "-o", "10", "--json")
    assert code == 0
    (w,) = [w for w in json.loads(out)["warnings"] if "trained for" in w]
    assert "4,096" in w and "\n" not in w
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-i", "1000", "-o", "10", "--json")
    assert not any("trained for" in w for w in json.loads(out)["warnings"])
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-i", "100000", "-o", "10")
    assert "note:" in out and "4,096" in out


def test_warnings_come_from_the_core():
    r = lr.estimate("llama2-7b", "a100", batch=[1, 4096], input_len=2048, output_len=128)
    assert any("1 of 2 workloads do not fit" in w for w in r.warnings)
    assert r.to_dict()["warnings"] == list(r.warnings)
    assert any("KV cache assumed fp16" in w for w in r.warnings)
    r = lr.estimate("llama2-70b", "a100", batch=1, tp=16, kv_dtype="fp16")
    assert any("scale-up domain" in w for w in r.warnings)
    assert not any("KV cache assumed" in w for w in r.warnings)
    r = lr.estimate("llama2-7b", "a100", weight_dtype="fp8", kv_dtype="fp16")
    assert any("no fp8 tensor rate" in w for w in r.warnings)


def test_batch_max_with_an_explicit_mode(capsys):
    code, _, err = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-b", "max", "--mode", "static")
    assert code == 2 and "--mode static" in err
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "-b", "max", "--json")
    d = json.loads(out)
    assert code == 0 and d["mode"] == "max"
    assert any("largest that fits" in w for w in d["warnings"])
    assert any("TTFT = TPOT" in w for w in d["warnings"])  # the equal times are explained
    r = lr.estimate("llama2-7b", "a100", batch="max", mode="static")  # the API says what it did
    assert r.mode == "max" and any("requested mode static" in w for w in r.warnings)


def test_estimate_html_says_where_it_wrote(capsys, tmp_path):
    page = tmp_path / "e.html"
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100", "--html", page)
    assert code == 0 and f"wrote {page}" in out


# ---- number formats ----------------------------------------------------------------------------

def test_years_whole_numbers_and_prices(capsys):
    from llmroofline.formatting import cell_text

    assert cell_text(32.0) == "32" and cell_text(24.0) == "24" and cell_text(1.5) == "1.50"
    code, out, _ = run(capsys, "hardware", "show", "H20")
    assert "2,024" not in out and re.search(r"release_year\s+│ 2024", out)
    assert re.search(r"price_per_hour_usd\s+│ 1\.40", out)
    code, out, _ = run(capsys, "hardware", "show", "L20")
    assert re.search(r"price_per_hour_usd\s+│ 0\.60", out)
    code, out, _ = run(capsys, "hardware", "list")
    assert "24.00" not in out and "│        24 │" in out


def test_prose_is_left_aligned_and_titles_stay_whole(capsys):
    code, out, _ = run(capsys, "hardware", "show", "H20")
    assert re.search(r"│ name\s+│ NVIDIA HGX H20", out)  # left-aligned, next to its field
    code, out, _ = run(capsys, "estimate", "-m", "llama2-7b", "-d", "a100")
    assert "(static, fp16 weights, fp16 KV, generic@1, calibrated)" in out.splitlines()[0]


# ---- roofline ------------------------------------------------------------------------------------

def test_roofline_skips_only_the_device_without_the_precision(capsys, tmp_path):
    png, page = tmp_path / "r.png", tmp_path / "r.html"
    code, out, err = run(capsys, "roofline", "a100", "h100", "h20", "-p", "fp16,fp8", "--out", png, "--html", page,
                         "--json")
    assert code == 0, err
    d = json.loads(out)
    got = {(r["devices"][0], r["precision"]) for r in d["roofs"]}
    assert got == {("A100-SXM4-80GB", "fp16"), ("H100-SXM5-80GB", "fp16"), ("H100-SXM5-80GB", "fp8"),
                   ("H20", "fp16"), ("H20", "fp8")}
    assert d["warnings"] == ["no fp8 roof for A100-SXM4-80GB: it has no fp8 peak"]
    assert "No fp8 roof for A100-SXM4-80GB" in page.read_text(encoding="utf-8")
    code, _, err = run(capsys, "roofline", "a100", "-p", "fp8")
    assert code == 2 and "fp8" in err


def test_roofline_workload_that_does_not_fit_says_so(capsys, tmp_path):
    code, out, _ = run(capsys, "roofline", "h100", "--model", "llama3.1-70b", "--json")
    w = json.loads(out)
    assert code == 0 and w["workload"]["fits"] is False
    assert any("does not fit in memory on one H100-SXM5-80GB" in n for n in w["warnings"])
    code, out, _ = run(capsys, "roofline", "h100", "--model", "llama3.1-8b", "--json")
    assert json.loads(out)["workload"]["fits"] is True and json.loads(out)["warnings"] == []
    from llmroofline.plots import plot_roofline

    fig = plot_roofline(["h100"], workload={"model": "llama3.1-70b", "device": "h100"})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("Does not fit in memory" in t for t in texts)
    assert "bf16 weights" in fig.axes[0].get_title()  # as the checkpoint stores them


def test_interactive_roofline_ticks_and_hovers_read_like_the_static_one():
    from llmroofline.interactive import roofline_figure

    fig = roofline_figure(["a100", "h20", "l40s", "l20"], ["fp16"])
    assert fig.layout.xaxis.ticktext and "1000" not in fig.layout.xaxis.ticktext and "1k" in fig.layout.xaxis.ticktext
    assert "(fp16)" in fig.layout.title.text
    # L40S and L20 share a bandwidth: the earlier one's slope is drawn wide beneath, so it stays visible.
    assert any(t.line.width and t.line.width >= 8 for t in fig.data)
    # Ridge labels are boxed annotations beside their point, not text on the line.
    assert all(a.bgcolor for a in fig.layout.annotations if "FLOP/B" in a.text)
    hovers = " ".join(t.hovertemplate or "" for t in fig.data)
    assert ".4g" not in hovers and ".3g" not in hovers


# ---- compare and meshes -----------------------------------------------------------------------------

def test_compare_of_a_device_with_itself_says_equal(capsys):
    code, out, _ = run(capsys, "compare", "-m", "llama2-7b", "--a", "a100", "--b", "a100")
    assert code == 0 and "equal in every cell" in out and "slower" not in out
    code, out, _ = run(capsys, "compare", "-m", "llama2-7b", "--a", "a100", "--b", "a100", "--json")
    s = json.loads(out)["summary"]
    assert s["equal"] and s["a_wins"] == 0


def test_compare_headlines_point_at_cells_that_fit_on_both(capsys):
    code, out, _ = run(capsys, "compare", "-m", "llama2-70b", "--a", "a100", "--b", "h20", "--tp-a", "2", "--tp-b",
                       "2", "--json")
    d = json.loads(out)
    fits = {(b, s) for i, b in enumerate(d["batch"]) for j, s in enumerate(d["seq"])
            if d["fits_a"][i][j] and d["fits_b"][i][j]}
    both = d["summary"]["fit_both_summary"]
    for key in ("best_for_a", "best_for_b"):
        assert (both[key]["batch"], both[key]["seq"]) in fits
    assert (d["summary"]["best_for_a"]["batch"], d["summary"]["best_for_a"]["seq"]) not in fits  # the grid's is not
    code, out, _ = run(capsys, "compare", "-m", "llama2-70b", "--a", "a100", "--b", "h20", "--tp-a", "2", "--tp-b", "2")
    best = both["best_for_a"]
    assert f"best {best['ratio']:.2f}× at batch {best['batch']:g}, length {best['seq']:g}" in out
    assert "where both fit" in out


def test_mesh_contours_stay_out_of_cells_that_fit_on_neither():
    from llmroofline.plots import plot_comparison

    c = lr.compare("llama2-70b", "a100", "h20", tp_a=2, tp_b=2, batch="1:1024:24", seq="128:65536:24")
    neither = ~(c.fits_a | c.fits_b)
    assert neither.any()
    fig = plot_comparison(c)
    ax = fig.axes[0]
    from matplotlib.collections import LineCollection

    lines = [c_ for c_ in ax.collections if isinstance(c_, LineCollection) or hasattr(c_, "get_paths")]
    i_of = {v: k for k, v in enumerate(c.batch)}
    assert i_of
    for coll in lines:
        if coll.__class__.__name__ != "QuadContourSet" and not hasattr(coll, "levels"):
            continue
        for path in coll.get_paths():
            for x, y in path.vertices:
                i = int(np.argmin(abs(np.log(c.batch) - np.log(y))))
                j = int(np.argmin(abs(np.log(c.seq) - np.log(x))))
                # a vertex lies between runnable cell centres: its nearest cell is runnable
                assert not neither[i, j] or any(
                    not neither[ii, jj] for ii in (i - 1, i, i + 1) for jj in (j - 1, j, j + 1)
                    if 0 <= ii < neither.shape[0] and 0 <= jj < neither.shape[1])


def test_cells_that_fit_on_one_device_are_washed_out_too():
    from llmroofline.plots import MASK_STYLES

    for key in ("a", "b"):
        assert 0 < MASK_STYLES[key][1][3] < MASK_STYLES["neither"][1][3]


# ---- recommend and pareto ------------------------------------------------------------------------

def test_recommend_without_targets_ranks_for_an_interactive_service(capsys):
    argv = ["recommend", "-m", "llama2-7b", "-i", "1024", "-o", "256", "-d", "A100-SXM4-80GB,L40S", "--json"]
    code, out, _ = run(capsys, *argv)
    d = json.loads(out)
    assert code == 0 and d["tpot_slo_s"] == 0.05
    assert all(c["tpot_s"] <= 0.05 for c in d["ranking"]) and d["ranking"]
    assert "TPOT ≤ 50 ms" in d["warnings"][0] and "cost per million output tokens" in d["objective"]
    code, out, _ = run(capsys, *argv, "--tpot-slo", "none")  # cost alone, as asked
    d = json.loads(out)
    assert d["tpot_slo_s"] is None and d["warnings"] == [] and max(c["tpot_s"] for c in d["ranking"]) > 0.05
    code, out, _ = run(capsys, *argv[:-1])
    assert "ranked for an interactive service" in out and "ranked by cost per million" in out


def test_pareto_axis_stays_on_the_data_with_a_tpot_target(tmp_path):
    from llmroofline.pareto_plot import pareto_figure, recommendation_html

    p = lr.pareto("llama3.1-8b", 1024, 256, devices="A100-SXM4-80GB,H20", tpot_slo=0.05)
    fig = pareto_figure(p)
    # No annotation placed at the raw value on a log axis (which would stretch it to 10^20).
    assert all(a.x is None or a.xref == "paper" or a.x < 5 for a in fig.layout.annotations)
    assert "calibrated" in fig.layout.title.text
    ticks = fig.layout.xaxis.tickvals
    assert ticks and max(ticks) < 1e4
    rec = lr.recommend("llama3.1-8b", 1024, 256, devices="A100-SXM4-80GB,H20", tpot_slo=0.05)
    assert not rec.excluded and "Excluded devices" not in recommendation_html(rec)
    plain = lr.pareto("llama3.1-8b", 1024, 256, devices="H20", calibration="none")
    assert "plain roofline" in pareto_figure(plain).layout.title.text


# ---- estimate --from-csv at scale -------------------------------------------------------------------

CSV_HEAD = "id,model,hardware,mode,batch,input_len,output_len\n"


def test_csv_rows_are_estimated_in_groups_and_match_one_by_one(tmp_path, monkeypatch, capsys):
    from llmroofline.cli import estimate_cmds

    lines = [f"{i},llama2-7b,a100,{m},{b},{n},128" for i, (m, b, n) in enumerate(
        (m, b, n) for m in ("static", "continuous", "max") for b in (1, 64, 4096) for n in (512, 8000))]
    lines.insert(5, "bad,llama2-7b,a100,static,0,512,128")  # a bad row in the middle of a group
    path = tmp_path / "w.csv"
    path.write_text(CSV_HEAD + "\n".join(lines) + "\n")
    calls = []
    real = estimate_cmds.estimate
    monkeypatch.setattr(estimate_cmds, "estimate", lambda *a, **k: calls.append(k) or real(*a, **k))
    code, out, _ = run(capsys, "estimate", "--from-csv", path, "--json")
    grouped = json.loads(out)
    assert code == 0 and [r["id"] for r in grouped] == [ln.split(",")[0] for ln in lines]
    assert len(calls) <= 3 + 1 + 12  # one call per mode, then the failing group's rows one by one
    monkeypatch.setattr(estimate_cmds, "CHUNK_ROWS", 1)  # every row alone: the reference
    code, out, _ = run(capsys, "estimate", "--from-csv", path, "--json")
    alone = json.loads(out)
    assert len(alone) == len(grouped)
    def same(x, y, where):
        if isinstance(x, dict):
            assert x.keys() == y.keys(), where
            for k in x:
                same(x[k], y[k], (*where, k))
        elif isinstance(x, list) and x and isinstance(x[0], float):
            assert x == pytest.approx(y, rel=1e-9), where
        elif isinstance(x, float):
            assert x == pytest.approx(y, rel=1e-9), where
        else:
            assert x == y, where

    for g, a in zip(grouped, alone, strict=True):
        same(g, a, (g["id"],))
    assert "error" in grouped[5] and grouped[5]["id"] == "bad"
    assert any("trained for" in w for r in grouped for w in r.get("warnings", []))


def test_many_csv_rows_stream_as_plain_text(tmp_path, monkeypatch, capsys):
    from llmroofline.cli import estimate_cmds

    monkeypatch.setattr(estimate_cmds, "RICH_ROWS", 3)
    path = tmp_path / "w.csv"
    path.write_text(CSV_HEAD + "".join(f"{i},llama2-7b,a100,static,{i + 1},512,128\n" for i in range(10)))
    code, out, _ = run(capsys, "estimate", "--from-csv", path)
    assert code == 0 and out.count("meta-llama/Llama-2-7b-hf") == 10 and "┃" not in out


# ---- validate and compare options -----------------------------------------------------------------------

def test_validate_reports_bad_rows_and_scores_the_rest(tmp_path, capsys):
    import csv

    src = REPO_ROOT / "data" / "measured-public.csv"
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[3]["batch"] = "abc"
    rows[7]["model"] = "no-such-model"
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    code, out, _ = run(capsys, "validate", "--data", path, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["rows"]) == len(rows) - 2
    assert [e["id"] for e in d["errors"]] == [rows[3]["id"], rows[7]["id"]]
    assert d["errors"][0]["line"] == 5 and "abc" in d["errors"][0]["error"]
    assert "no-such-model" in d["errors"][1]["error"]
    code, out, _ = run(capsys, "validate", "--data", path)
    assert code == 0 and "2 row(s) of m.csv not scored" in out


def test_compare_calibration_with_method_whole(capsys, tmp_path):
    base = ["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20"]
    code, _, err = run(capsys, *base, "--calibration", "default")
    assert code == 2 and "--method ops only" in err
    code, _, err = run(capsys, *base, "--method", "ops", "--calibration", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml" in err
    code, out, _ = run(capsys, *base, "--method", "both", "--calibration", "default")
    assert code == 0 and "applies to the method 2 (ops) mesh only" in out


# ---- calibrate --------------------------------------------------------------------------------------------

def _rows_file(tmp_path, n: int):
    lines = (REPO_ROOT / "data" / "measured-public.csv").read_text(encoding="utf-8").splitlines()[:n + 1]
    path = tmp_path / "few.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_calibrate_no_bands_writes_no_in_sample_bands(tmp_path, capsys):
    out = tmp_path / "c.yaml"
    code, stdout, _ = run(capsys, "calibrate", "--data", _rows_file(tmp_path, 12), "--out", out, "--no-bands")
    assert code == 0
    assert "held-out" not in stdout and "in-sample errors" in stdout and "no intervals or error bands written" in stdout
    import yaml

    assert yaml.safe_load(out.read_text())["error_bands"] == {}
    r = lr.estimate("llama2-7b", "a100", calibration=str(out))
    assert r.calibrated and r.error_band == {} and r.interval == {}


def test_calibrate_shows_progress_per_fit(tmp_path, capsys, monkeypatch):
    from llmroofline.cli import calibration_cmds as cc

    seen = []

    class Recorder:  # stands in for the rich progress bar
        def __init__(self):
            self.tasks = []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def add_task(self, description, total):
            self.tasks.append(type("T", (), {"completed": 0, "total": total})())
            seen.append(description)
            return 0

        def advance(self, task):
            self.tasks[task].completed += 1

        def update(self, task, description=None, completed=None):
            if description:
                seen.append(description)
            if completed is not None:
                self.tasks[task].completed = completed

    from llmroofline import calibrate as calibration

    real_fit = calibration.fit

    def quick_loo(rows, by, progress=None, **kw):  # the same hook calls, no fitting
        for held in sorted({calibration.HOLDOUTS[by](r) for r in rows}):
            progress(held)
        return calibration.predict(rows, real_fit(rows, max_evaluations=1).calibration)

    monkeypatch.setattr(cc, "_progress", Recorder)
    monkeypatch.setattr(calibration, "leave_one_out", quick_loo)
    import csv

    with (REPO_ROOT / "data" / "measured-public.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    devices: dict[str, dict] = {}
    for r in rows:
        devices.setdefault(r["hardware"], r)
    path = tmp_path / "one_per_device.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(devices.values())
    code, _, _ = run(capsys, "calibrate", "--data", path, "--out", tmp_path / "c.yaml")
    assert code == 0
    # one fit on all rows, then one per device, per serving stack and per model left out
    import re

    done, total = re.search(r"fit (\d+) of (\d+)", seen[-1]).groups()
    assert seen[0].startswith("fitting") and done == total and int(total) >= 1 + len(devices)
    assert sum("device held out" in s for s in seen) == len(devices)


def test_titles_state_precision_and_calibration():
    from llmroofline.demo import _plot_table, article_table
    from llmroofline.report import estimate_sections

    title = _plot_table(article_table()).axes[0].get_title()
    assert "fp16" in title and "plain" in title and "calibrated" in title
    r = lr.estimate("llama2-7b", "a100", batch=8, kv_dtype="fp16")
    s = estimate_sections("llama2-7b", "a100", r)
    assert "fp16 weights" in s.title and "calibrated" in s.title
    r = lr.estimate("llama2-7b", "a100", batch=8, input_len=100000, output_len=10, calibration="none")
    s = estimate_sections("llama2-7b", "a100", r, "none")
    assert "plain roofline" in s.title and "trained for" in s.notes


def test_app_batch_field_is_disabled_in_max_mode():
    pytest.importorskip("dash")
    from llmroofline import app as A

    assert A.batch_field_disabled("max") and not A.batch_field_disabled("static")
    dash_app = A.create_app()
    outputs = " ".join(dash_app.callback_map)
    assert "est-batch.disabled" in outputs


def test_app_recommend_without_targets_uses_the_interactive_default():
    pytest.importorskip("dash")
    from llmroofline import app as A

    v = A.recommend_view(lr.load_model("llama2-7b"), input_len=1024, output_len=256,
                         devices=[lr.load_hardware("A100-SXM4-80GB")])
    assert v.data["tpot_slo_s"] == 0.05 and any("interactive service" in s for s in v.summary)
    assert any(s.startswith("Ranked by cost per million") for s in v.summary)


def test_batch_sweep_axes_read_like_the_other_figures():
    from llmroofline.report import batch_sweep_figure

    r = lr.estimate("llama2-7b", "a100", batch="max")
    fig = batch_sweep_figure("llama2-7b", "a100", r)
    assert fig.layout.xaxis.ticktext and "1k" not in fig.layout.xaxis.ticktext[:3]
    assert all("e+" not in t for t in fig.layout.xaxis.ticktext)
    assert fig.layout.yaxis2.tickformat == ",.0f"


def test_show_writes_lists_as_text(capsys):
    code, out, _ = run(capsys, "models", "show", "llama2-70b")
    assert code == 0 and "['" not in out and "llama2-70b, llama-2-70b" in out
    code, out, _ = run(capsys, "hardware", "show", "H20")
    assert code == 0 and "['" not in out


def test_app_compare_of_a_device_with_itself_says_equal():
    pytest.importorskip("dash")
    from llmroofline import app as A

    a = lr.load_hardware("A100-SXM4-80GB")
    v = A.compare_view(lr.load_model("llama2-7b"), a, a, batch="1:64:4", seq="128:4096:4")
    assert "equal in every cell" in v.summary[0]


def test_from_csv_refuses_options_that_describe_one_workload_and_reads_an_ep_column(tmp_path, capsys):
    path = tmp_path / "ep.csv"
    path.write_text("id,model,hardware,tp,ep,mode,batch,input_len,output_len\n"
                    "1,mixtral-8x7b,h100,2,2,static,8,512,128\n")
    code, out, _ = run(capsys, "estimate", "--from-csv", path, "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["ep"] == 2 and "error" not in row
    direct = lr.estimate("mixtral-8x7b", "h100", batch=8, input_len=512, output_len=128, tp=2, ep=2)
    assert row["tpot_s"] == pytest.approx(float(direct.tpot_s))
    for extra in (["--model", "llama2-7b"], ["--batch", "4"], ["--html", str(tmp_path / "r.html")], ["--tp", "2"]):
        code, _, err = run(capsys, "estimate", "--from-csv", path, *extra)
        assert code == 2 and extra[0] in err and "cannot be combined" in err
