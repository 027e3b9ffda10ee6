"""Figures: the numbers behind them, that every kind renders to every format as a real file,
the demo's outputs, and the `roofline` and `demo` commands. Assertions are on numbers and
files, never on pixels."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from llmroofline import compare, load_hardware, load_model, whole_model
from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.plots import (
    cell_edges,
    mask_runs,
    mesh_masks,
    mesh_summary,
    plot_comparison,
    plot_comparison_pair,
    plot_roofline,
    ratio_scale,
    roofs,
    workload_points,
)

A100, H20 = "A100-SXM4-80GB", "H20"
ARTICLE_DEVICES = ("A100-SXM4-80GB", "H20", "A800-SXM4-80GB", "L40S", "L20", "RTX-4090")
L13 = "meta-llama/Llama-2-13b-hf"
SMALL = dict(batch="1:1024:8", seq="128:32768:8")


def is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def is_svg(path) -> bool:
    text = path.read_text(encoding="utf-8")
    return text.lstrip().startswith("<?xml") and "<svg" in text and len(text) > 20_000


def is_pdf(path) -> bool:
    data = path.read_bytes()
    return data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:] and len(data) > 5_000


def is_html(path, inline: bool = True) -> bool:
    text = path.read_text(encoding="utf-8")
    ok = text.lstrip().lower().startswith(("<html", "<!doctype html")) and "Plotly.newPlot" in text
    return ok and (len(text) > 1_000_000 if inline else 'src="plotly.min.js"' in text)


CHECK = {"png": is_png, "svg": is_svg, "pdf": is_pdf}


@pytest.fixture(scope="module")
def meshes():
    return (compare(L13, A100, H20, method="ops", **SMALL), compare(L13, A100, H20, method="whole", **SMALL))


# ---- the numbers behind the pictures -----------------------------------------------------------------

def test_roofs_of_the_article_devices():
    rs = roofs(ARTICLE_DEVICES)
    labels = {r.label: r for r in rs}
    # A100 and A800 differ only in NVLink: one shared roof.
    assert "A100-SXM4-80GB = A800-SXM4-80GB" in labels and len(rs) == 5
    for r in rs:
        hw = load_hardware(r.devices[0])
        assert r.ridge == pytest.approx(hw.peak_flops["fp16"] / hw.memory_bandwidth)
    assert labels["H20"].ridge == pytest.approx(148 / 4.0)
    assert labels["A100-SXM4-80GB = A800-SXM4-80GB"].ridge == pytest.approx(312 / 2.039)


def test_roofs_precision_checks():
    assert len(roofs(["H20", "L40S"], ["fp16", "fp8"])) == 4
    assert roofs(["H20"], ["bf16"])[0].peak == load_hardware("H20").peak_flops["bf16"]
    with pytest.raises(InputError, match="A100-SXM4-80GB has no fp8"):
        roofs([A100, H20], ["fp8"])
    with pytest.raises(InputError, match="precision"):
        roofs([A100], ["fp7"])
    with pytest.raises(InputError, match="at least one device"):
        roofs([])


def test_workload_points_methods_1_and_2():
    wp = workload_points(L13, A100, phase="decode", batch=16, seq=1024)
    hw = load_hardware(A100)
    roof = np.minimum(hw.peak_flops["fp16"], wp.intensity * hw.memory_bandwidth)
    np.testing.assert_allclose(wp.attainable, roof)
    proj = [i for i, n in enumerate(wp.names) if n.endswith("_proj")]
    # A decode GEMM does 2·batch FLOPs per 2-byte weight (plus small activations): ≈ batch FLOP/B.
    assert np.all((wp.intensity[proj] > 14) & (wp.intensity[proj] < 16))
    qk = wp.names.index("attn/qk")
    assert wp.intensity[qk] == pytest.approx(1.0, rel=0.01)  # MHA decode attention: ~1 FLOP/B
    w = whole_model(load_model(L13), 16, 1, 1023)
    assert wp.whole_intensity == pytest.approx(float(w.intensity))
    assert 0.99 < wp.time_share.sum() <= 1.0 + 1e-9
    assert set(wp.bound) == {"memory"}


def test_workload_points_bad_input():
    with pytest.raises(InputError, match="phase"):
        workload_points(L13, A100, phase="train")
    with pytest.raises(InputError, match="batch"):
        workload_points(L13, A100, batch=0)


def test_mask_runs_cover_exactly_the_mask():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 9)) > 0.5
    covered = np.zeros_like(mask)
    for i, j0, j1 in mask_runs(mask):
        assert not covered[i, j0:j1].any()
        covered[i, j0:j1] = True
    np.testing.assert_array_equal(covered, mask)


def test_cell_edges_are_geometric_midpoints():
    e = cell_edges([128, 256, 512])
    np.testing.assert_allclose(e, [128 / 2 ** 0.5, 128 * 2 ** 0.5, 256 * 2 ** 0.5, 512 * 2 ** 0.5])
    assert cell_edges([8]).tolist() == pytest.approx([8 / 2 ** 0.5, 8 * 2 ** 0.5])


def test_ratio_scale_is_symmetric_and_covers_all(meshes):
    v = ratio_scale(*meshes)
    for c in meshes:
        assert 1 / v < c.ratio.min() and c.ratio.max() < v


def test_mesh_summary_counts(meshes):
    c = meshes[1]
    s = mesh_summary(c)
    masks = mesh_masks(c)
    assert s["cells"] == c.ratio.size
    assert s["a_wins"] == int((c.ratio > 1).sum())
    assert s["fit_neither"] == int(masks["neither"].sum())
    assert s["not_fit_a"] == int((~c.fits_a).sum()) and s["not_fit_b"] == int((~c.fits_b).sum())
    assert s["best_for_a"]["ratio"] == pytest.approx(c.ratio.max())
    assert s["a_wins_batch_min"] >= 64 and s["a_wins_seq_max"] <= 1024


# ---- every figure, every format -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_static_figures_render(tmp_path, meshes, fmt):
    ops, whole = meshes
    plot_roofline(ARTICLE_DEVICES, out=tmp_path / f"roof.{fmt}")
    plot_roofline([A100, H20], ["fp16", "bf16"], workload={"model": L13, "device": A100, "batch": 16, "seq": 1024},
                  out=tmp_path / f"roofw.{fmt}")
    plot_comparison(ops, out=tmp_path / f"mesh.{fmt}")
    plot_comparison_pair(ops, whole, out=tmp_path / f"pair.{fmt}")
    for name in ("roof", "roofw", "mesh", "pair"):
        assert CHECK[fmt](tmp_path / f"{name}.{fmt}"), name


def test_interactive_figures_render(tmp_path, meshes):
    from llmroofline.interactive import comparison_html, comparison_pair_html, roofline_html

    ops, whole = meshes
    roofline_html(ARTICLE_DEVICES, out=tmp_path / "roof.html")
    roofline_html([A100, H20], workload={"model": L13, "device": H20, "phase": "prefill", "batch": 1, "seq": 2048},
                  out=tmp_path / "roofw.html")
    comparison_html(ops, out=tmp_path / "mesh.html")
    fig = comparison_pair_html(ops, whole, out=tmp_path / "pair.html")
    for name in ("roof", "roofw", "mesh", "pair"):
        assert is_html(tmp_path / f"{name}.html"), name
    # The mesh hover carries batch, length, both devices' numbers and the ratio.
    heat = fig.data[0]
    assert "ratio" in heat.hovertemplate and A100 in heat.hovertemplate and "H20" in heat.hovertemplate
    i, j = 3, 5
    row = heat.customdata[i][j]
    assert (row[0], row[1]) == (ops.batch[i], ops.seq[j])
    assert row[4] == pytest.approx(ops.ratio[i, j]) == pytest.approx(row[2] / row[3])


def test_plot_comparison_into_given_axes(meshes):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_comparison(meshes[0], ax=ax) is fig
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.collections


def test_ratio_levels_are_round_and_thinned():
    from llmroofline.plots import ratio_levels

    assert ratio_levels(0.5, 2) == pytest.approx([0.5, 2 / 3, 0.8, 1, 1.25, 1.5, 2])
    wide = ratio_levels(1 / 17, 17)
    assert 1.0 in wide and len(wide) <= 11 and wide == sorted(wide)
    assert ratio_levels(3.5, 9.5) == [4.0, 6.0, 8.0]


def test_core_does_not_import_plotting_libraries():
    code = ("import sys, llmroofline as lr; lr.compare('llama2-7b', 'a100', 'h20'); "
            "import llmroofline.plots, llmroofline.interactive; "
            "print(any(m in sys.modules for m in ('matplotlib', 'plotly')))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_figure_output_rules(tmp_path, meshes):
    ops, _ = meshes
    with pytest.raises(InputError, match="extension"):
        plot_comparison(ops, out=tmp_path / "mesh.jpg")
    with pytest.raises(InputError, match="does not exist"):
        plot_comparison(ops, out=tmp_path / "missing" / "mesh.png")
    existing = tmp_path / "keep.png"
    existing.write_bytes(b"mine")
    with pytest.raises(InputError, match="exists"):
        plot_comparison(ops, out=existing, force=False)
    assert existing.read_bytes() == b"mine"


def test_no_blank_picture_when_nothing_fits():
    c = compare("meta-llama/Llama-2-70b-hf", A100, H20, **SMALL)
    assert not (c.fits_a | c.fits_b).any()
    with pytest.raises(InputError, match="neither"):
        plot_comparison(c)
    plot_comparison(c, allow_unfit=True)  # the demo's explicit choice: hatched all over, still drawn


# ---- the demo --------------------------------------------------------------------------------------------

DEMO_FILES = [
    "index.html", "roofline.png", "roofline.html", "roofline_llama2-13b_decode.png",
    "roofline_llama2-13b_decode.html", "llama2-7b_a100_table.csv", "llama2-7b_a100_table.md",
    "llama2-7b_a100_table.png", "summary.json", "plotly.min.js",
    *[f"mesh_{s}.{ext}" for s in ("llama2-13b", "llama2-70b", "llama2-70b-tp2", "mistral-7b", "mixtral-8x7b",
                                  "mixtral-8x7b-tp2") for ext in ("png", "html")],
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from llmroofline.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return run_demo(out)


def test_demo_writes_every_file(demo):
    d = demo["out_dir"]
    for name in DEMO_FILES:
        assert (d / name).is_file(), name
        assert name in demo["files"]
    for name in DEMO_FILES:
        if name.endswith(".png"):
            assert is_png(d / name), name
        elif name.endswith(".html") and name != "index.html":
            assert is_html(d / name, inline=False), name
    index = (d / "index.html").read_text(encoding="utf-8")
    for name in DEMO_FILES:
        if name.endswith((".png", ".csv", ".md")) or (name.endswith(".html") and name != "index.html"):
            assert f"'{name}'" in index or f'"{name}"' in index, name


def test_demo_table_has_the_article_numbers(demo):
    with (demo["out_dir"] / "llama2-7b_a100_table.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["batch"]), int(r["input_len"]), int(r["output_len"])) for r in rows] == [
        (256, 128, 128), (32, 128, 2048), (32, 2048, 128), (16, 2048, 2048)]
    assert [float(r["trt_llm_tok_s"]) for r in rows] == [5353, 1518, 547, 613]
    assert [float(r["llm_viewer_tok_s"]) for r in rows] == [8934, 2796, 788, 1169]
    for r in rows:
        plain, measured = float(r["ours_plain_tok_s"]), float(r["trt_llm_tok_s"])
        assert plain > measured  # the plain roofline is an upper bound
        assert float(r["ours_plain_error_pct"]) == pytest.approx((plain - measured) / measured * 100, abs=0.1)
        assert float(r["ours_calibrated_tok_s"]) < plain
    md = (demo["out_dir"] / "llama2-7b_a100_table.md").read_text()
    assert "5,353" in md and "8,934" in md and md.count("\n|") >= 5


def test_demo_readings_follow_the_numbers(demo):
    m = demo["meshes"]
    r = demo["readings"]
    # 13B: A100 wins only at large batch and short sequence.
    s13 = m["llama2-13b"]["whole"]
    assert s13["a_wins"] > 0 and s13["a_wins_batch_min"] >= 64 and s13["a_wins_seq_max"] <= 1024
    assert f"batch ≥ {s13['a_wins_batch_min']:,.0f}" in r["mesh_llama2-13b"]
    # GQA (70B) grows A100's region, and the text says so with the numbers.
    assert m["llama2-70b"]["whole"]["a_wins"] > m["llama2-13b"]["whole"]["a_wins"]
    assert "GQA" in r["mesh_llama2-70b"] and "grows" in r["mesh_llama2-70b"]
    # 70B fits on no single device: the demo draws it on four and on two devices each, and says what
    # one device each would hold. No mesh of the demo is masked all over.
    assert m["llama2-70b"]["tp"] == 4 and m["llama2-70b-tp2"]["tp"] == 2
    assert m["llama2-70b"]["whole"]["fit_both"] > m["llama2-70b-tp2"]["whole"]["fit_both"] > 0
    assert "instead of 0 on one device each" in r["mesh_llama2-70b"]
    for slug, mesh in m.items():
        assert mesh["ops"]["fit_neither"] < mesh["ops"]["cells"], slug
    # Mixtral: A100 behind everywhere up to batch 256.
    assert "MoE" in r["mesh_mixtral-8x7b"] and "up to batch 256" in r["mesh_mixtral-8x7b"]
    summary = json.loads((demo["out_dir"] / "summary.json").read_text())
    assert summary["readings"] == r


def test_demo_folder_rules(demo, tmp_path):
    from llmroofline.demo import run_demo

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="--force"):
        run_demo(foreign, interactive=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        run_demo(a_file)


# ---- the commands -----------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_roofline(capsys, tmp_path):
    png, html = tmp_path / "r.png", tmp_path / "r.html"
    code, out, err = run(capsys, "roofline", "a100", "h20", "l40s", "-p", "fp16", "--model", "llama2-13b",
                         "--batch", "16", "--seq", "1024", "--out", str(png), "--html", str(html), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert [r["devices"] for r in d["roofs"]] == [[A100], ["H20"], ["L40S"]]
    assert d["workload"]["device"] == A100 and d["workload"]["batch"] == 16
    assert d["files"] == [str(png), str(html)]
    assert is_png(png) and is_html(html)


def test_cli_roofline_table(capsys):
    code, out, err = run(capsys, "roofline", "h20", "l20", "-p", "fp16", "-p", "fp8")
    assert code == 0, err
    assert "H20" in out and "fp8" in out and "ridge" in out


@pytest.mark.parametrize("args,needle", [
    (["a100", "-p", "fp8"], "has a fp8 peak"),  # only when no device has it (else a note)
    (["a100", "-p", "fp5"], "fp5"),
    (["nope"], "nope"),
    (["a100", "--on", "h20"], "--on"),
    (["a100", "--model", "llama2-7b", "--phase", "train"], "phase"),
    (["a100", "--out", "r.bmp"], "extension"),
])
def test_cli_roofline_bad_input(capsys, args, needle):
    code, out, err = run(capsys, "roofline", *args)
    assert code == 2 and needle in err and "Traceback" not in err and out == ""


def test_cli_demo(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", str(tmp_path / "d"), "--no-html", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["index"].endswith("index.html") and "mesh_llama2-13b.png" in d["files"]
    assert "mesh_llama2-13b.html" not in d["files"]
    # The folder is ours now: a second run may overwrite it.
    code, out, err = run(capsys, "demo", "--out", str(tmp_path / "d"), "--no-html")
    assert code == 0, err
    assert "index.html" in out
