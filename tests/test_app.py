"""The web app (`llmroofline app`), its pure helpers and the HTML reports.

Unit tests call the helpers behind the callbacks directly. Browser tests (marked `browser`) start
the app on a free localhost port, drive Debian's Chromium with Playwright and check that what
the page shows matches the Python API; they save screenshots to out/screenshots/ (ignored by
git). They are skipped only when /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.errors import InputError

dash = pytest.importorskip("dash", reason="the web app needs the extra llmroofline[app] (dash)")

from llmroofline import app as A  # noqa: E402
from llmroofline.cli import main  # noqa: E402
from llmroofline.report import write_html_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "out" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CATALOG = REPO / "src" / "llmroofline" / "catalog" / "models" / "meta-llama__Llama-3.1-8B-Instruct.json"


def data_url(payload: bytes, mime: str = "application/json") -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode()


def llama_config() -> dict:
    return json.loads(CATALOG.read_text())["config"]


# ---- pure helpers --------------------------------------------------------------------------

def test_upload_of_a_real_config_gives_the_same_model_as_the_catalog():
    cfg = llama_config()
    name, parsed, notes = A.parse_upload(data_url(json.dumps(cfg).encode()), "config.json")
    spec = A.resolve_model(A.UPLOADED + name, {name: parsed})
    ref = lr.load_model(MODEL)
    assert spec.params_total == ref.params_total
    assert spec.num_layers == ref.num_layers
    assert notes == []


def test_upload_accepts_a_catalog_entry():
    entry = json.loads(CATALOG.read_text())
    name, cfg, _ = A.parse_upload(data_url(json.dumps(entry).encode()), "entry.json")
    assert name == MODEL
    assert cfg == entry["config"]


@pytest.mark.parametrize("payload, filename, words", [
    (b"{not json", "config.json", "not valid JSON"),
    (b"[1, 2, 3]", "config.json", "expected a JSON object"),
    (b'{"foo": 1}', "config.json", "missing field 'hidden_size'"),
    (b'{"hidden_size": 4096, "num_hidden_layers": -3, "num_attention_heads": 32, "vocab_size": 10}', "c.json",
     "num_hidden_layers"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "picture.png", "not a text file"),
    (b" " * (A.MAX_UPLOAD_BYTES + 1), "config.json", "too large"),
])
def test_bad_uploads_are_input_errors_that_name_the_problem(payload, filename, words):
    with pytest.raises(InputError, match=re.escape(words)):
        A.parse_upload(data_url(payload), filename)


def test_upload_without_content_is_an_input_error():
    with pytest.raises(InputError, match="no file content"):
        A.parse_upload(None, "config.json")


def custom_form(**overrides) -> dict:
    form = {k: default for k, _, _, default in A.CUSTOM_FIELDS}
    form.update(overrides)
    return form


def test_custom_device_round_trips_through_the_catalog_schema():
    spec = A.custom_device_spec(custom_form(id="X1", fp8="1000"))
    hw = A.resolve_device(A.CUSTOM + "X1", {"X1": spec})
    assert hw.memory_bytes == 80e9
    assert hw.memory_bandwidth == 3000e9
    assert hw.peak_flops["fp16"] == 500e12 and hw.peak_flops["fp8"] == 1000e12
    assert "int8" not in hw.peak_flops  # left empty: optional
    r = lr.estimate(MODEL, hw, batch=4, input_len=256, output_len=32)
    assert np.all(np.isfinite(r.tpot_s))


@pytest.mark.parametrize("overrides, words", [
    ({"memory_gb": ""}, "memory (GB) is missing"),
    ({"memory_bandwidth_gbps": "-5"}, "memory_bandwidth_gbps must be a positive number"),
    ({"fp16": "0"}, "peak_tflops.fp16 must be a positive number"),
    ({"tdp_w": "lots"}, "power (W) must be a number"),
    ({"id": "  "}, "name is missing"),
    ({"memory_gb": "1e9"}, "implausible"),
])
def test_bad_custom_devices_name_the_field(overrides, words):
    with pytest.raises(InputError, match=re.escape(words)):
        A.custom_device_spec(custom_form(**overrides))


def test_names_resolve_and_unknown_ones_are_input_errors():
    assert A.resolve_device("a100").id == "A100-SXM4-80GB"
    assert A.resolve_model("llama2-7b").id == "meta-llama/Llama-2-7b-hf"
    for bad in (lambda: A.resolve_device("no-such-gpu"), lambda: A.resolve_device(A.CUSTOM + "gone", {}),
                lambda: A.resolve_model(A.UPLOADED + "gone", {}), lambda: A.resolve_model(None)):
        with pytest.raises(InputError):
            bad()
    opts = A.device_options({"X1": {}})
    assert opts[0] == {"label": "X1 (custom)", "value": A.CUSTOM + "X1"}
    assert any(o["value"] == "H20" for o in opts)


def test_form_numbers():
    assert A.parse_int("12", "batch") == 12
    assert A.parse_int(" MAX ", "batch", allow_max=True) == "max"
    assert A.parse_optional_float("", "TTFT SLO") is None
    assert A.parse_optional_float("0.5", "TTFT SLO") == 0.5
    for bad in (lambda: A.parse_int("1.5", "batch"), lambda: A.parse_int("abc", "batch"),
                lambda: A.parse_int("max", "batch"), lambda: A.parse_optional_float("-1", "TPOT SLO")):
        with pytest.raises(InputError):
            bad()


def test_compare_view_shows_the_api_numbers():
    m, a, b = lr.load_model(MODEL), lr.load_hardware("A100-SXM4-80GB"), lr.load_hardware("H20")
    v = A.compare_view(m, a, b, batch="1,8,64", seq="512,4096")
    c = lr.compare(MODEL, "A100-SXM4-80GB", "H20", batch="1,8,64", seq="512,4096")
    heat = v.figures[0].data[0]
    custom = np.asarray(heat.customdata)
    np.testing.assert_allclose(custom[..., 2].astype(float), c.perf_a, rtol=1e-12)
    np.testing.assert_allclose(custom[..., 3].astype(float), c.perf_b, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), np.log2(c.ratio), rtol=1e-12)
    assert [r[4] for r in v.rows] == pytest.approx(c.ratio.ravel().tolist())
    both = c.fits_a & c.fits_b
    assert f"median {np.median(c.ratio[both]):.3g}×" in v.summary[0]
    assert v.csv.splitlines()[0] == ",".join(A.COMPARE_COLUMNS)


def test_nonsensical_ranges_are_input_errors():
    m, a = lr.load_model(MODEL), lr.load_hardware("A100-SXM4-80GB")
    for kwargs in ({"batch": "100:1"}, {"seq": "0:10"}, {"batch": "a,b"}, {"seq": "1:1e12"}):
        with pytest.raises(InputError):
            A.compare_view(m, a, a, **kwargs)
    with pytest.raises(InputError):
        A.estimate_view(m, a, input_len=0)
    with pytest.raises(InputError):
        A.roofline_view(m, [], ["fp16"])


def test_roofline_view_leaves_out_only_the_device_that_lacks_a_precision():
    m = lr.load_model(MODEL)
    devs = [lr.load_hardware(d) for d in ("A100-SXM4-80GB", "H100-SXM5-80GB", "H20")]
    v = A.roofline_view(m, devs, ["fp16", "fp8"], batch=4, seq=1024)
    assert any("No fp8 roof for A100-SXM4-80GB" in s for s in v.summary)
    names = [t.name for t in v.figures[0].data if t.name]
    assert {"A100-SXM4-80GB fp16", "H100-SXM5-80GB fp8", "H20 fp8"} <= set(names)
    assert "A100-SXM4-80GB fp8" not in names
    v = A.roofline_view(m, devs, ["fp8"])
    assert [n for n in (t.name for t in v.figures[0].data) if n and n.endswith("fp8")] == ["H100-SXM5-80GB fp8",
                                                                                            "H20 fp8"]
    with pytest.raises(InputError, match="none of A100-SXM4-80GB has a fp8 peak"):
        A.roofline_view(m, devs[:1], ["fp8"])


def test_estimate_view_matches_the_api_and_its_breakdown_adds_up():
    m, d = lr.load_model(MODEL), lr.load_hardware("A100-SXM4-80GB")
    v = A.estimate_view(m, d, batch=8, input_len=2048, output_len=256)
    r = lr.estimate(MODEL, "A100-SXM4-80GB", batch=8, input_len=2048, output_len=256)
    got = {s["key"]: s["value"] for s in v.summary}
    assert got["ttft"] == pytest.approx(float(r.ttft_s) * 1e3)
    assert got["tpot"] == pytest.approx(float(r.tpot_s) * 1e3)
    assert got["throughput"] == pytest.approx(float(r.throughput_tok_s))
    assert got["fits"] == "yes"
    assert got["energy"] == pytest.approx(float(r.energy_j_per_token)) and got["energy"] < got["energy_tdp"]
    intervals = {s["key"]: s["interval"] for s in v.summary}
    lo, hi = r.interval["throughput_tok_s"]
    assert intervals["throughput"] == pytest.approx((float(lo), float(hi)))
    assert intervals["ttft"][0] < got["ttft"] < intervals["ttft"][1]
    vllm = A.estimate_view(m, d, batch=8, input_len=2048, output_len=256, runtime="vllm@0.6")
    assert vllm.data["estimate"]["runtime"] == "vllm@0.6"
    for phase in ("prefill", "decode"):
        shares = [row[9] for row in v.rows if row[0] == phase]
        assert sum(shares) == pytest.approx(100.0)
    assert len(v.figures) == 3


def test_recommend_view_ranks_like_the_api():
    from llmroofline.recommend import recommend

    m = lr.load_model(MODEL)
    devs = [lr.load_hardware(n) for n in ("A100-SXM4-80GB", "H20", "L40S")]
    v = A.recommend_view(m, input_len=1024, output_len=256, devices=devs)
    rec = recommend(MODEL, 1024, 256, devices=devs, tpot_slo=0.05)  # no target typed: the interactive default
    assert [r[0] for r in v.rows] == [c.device for c in rec.ranking]
    tpot = A.RECOMMEND_COLUMNS.index("tpot_s")
    assert v.rows[0][tpot] == pytest.approx(rec.ranking[0].tpot_s * 1e3)  # TPOT shown in ms


def test_images_per_request_reach_estimate_and_recommend():
    """The Images field: a vision-language model's requests carry their images (the API's numbers),
    a text model refuses them with the API's message, and an empty field means none."""
    from llmroofline.app.inputs import parse_images
    from llmroofline.recommend import recommend

    m, d = lr.load_model("qwen2.5-vl-7b"), lr.load_hardware("H100-SXM5-80GB")
    v = A.estimate_view(m, d, batch=8, input_len=1024, output_len=256, images=2)
    r = lr.estimate(m, d, batch=8, input_len=1024, output_len=256, images=2)
    got = {s["key"]: s["value"] for s in v.summary}
    assert got["ttft"] == pytest.approx(float(r.ttft_s) * 1e3)
    text_only = {s["key"]: s["value"] for s in A.estimate_view(m, d, batch=8, input_len=1024, output_len=256).summary}
    assert got["ttft"] > text_only["ttft"]  # the images' tokens and encoder pass
    assert v.data["inputs"]["images per request"] == 2 and v.data["inputs"]["image tokens per request"] > 0
    devs = [d, lr.load_hardware("L40S")]
    rv = A.recommend_view(m, devices=devs, images=2)
    rec = recommend(m, 1024, 256, devices=devs, tpot_slo=0.05, images=2)
    assert [row[0] for row in rv.rows] == [c.device for c in rec.ranking]
    ttft = A.RECOMMEND_COLUMNS.index("ttft_s")
    assert rv.rows[0][ttft] == pytest.approx(rec.ranking[0].ttft_s)
    with pytest.raises(InputError, match="no vision tower"):
        A.estimate_view(lr.load_model(MODEL), d, images=1)
    assert parse_images("") == 0 and parse_images(None) == 0 and parse_images(" 3 ") == 3
    for bad in ("-1", "1.5", "two"):
        with pytest.raises(InputError, match="images|whole number"):
            parse_images(bad)


def test_default_views_compute():
    """Every tab's default view computes (its speed is measured in benchmarks/bench_app.py)."""
    m = lr.load_model(MODEL)
    a, b, h = (lr.load_hardware(n) for n in ("A100-SXM4-80GB", "H20", "H100-SXM5-80GB"))
    assert A.roofline_view(m, [a, h, b], ["fp16"], batch=1, seq=2048) is not None
    assert A.compare_view(m, a, b) is not None
    assert A.estimate_view(m, a, batch=8, input_len=2048, output_len=256) is not None
    v = A.recommend_view(m, devices=[a, h, b, lr.load_hardware("MI300X"), lr.load_hardware("L40S")])
    assert v.rows


def test_guard_turns_errors_into_messages():
    @A._guard(3, ("x", "y"))
    def bad_input():
        raise InputError("batch must be positive")

    @A._guard(3, ("x", "y"))
    def bug():
        raise ZeroDivisionError("oops")

    msg, x, y = bad_input()
    assert "batch must be positive" in msg.children and msg.className == "msg-error" and (x, y) == ("x", "y")
    msg, *_ = bug()
    assert msg.children.startswith("internal error: ZeroDivisionError")


def test_the_app_builds():
    app = A.create_app(devices=[lr.load_hardware("L4")], models={"tiny": llama_config()})
    layout = json.dumps(app.layout.to_plotly_json(), default=str)
    assert "L4 (custom)" in layout and "tiny (uploaded)" in layout
    assert app.server.config["MAX_CONTENT_LENGTH"] >= A.MAX_UPLOAD_BYTES
    # Devices handed to create_app travel through the page as catalog-schema dicts and come back equal.
    specs = A._hardware_specs([lr.load_hardware("L4")])
    assert A.resolve_device(A.CUSTOM + "L4", specs) == lr.load_hardware("L4")


# ---- reports and the command line ----------------------------------------------------------

def test_html_report_is_self_contained(tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    p = write_html_report(tmp_path / "r.html", "A <title>", {"model": "m & co", "batch": 8}, [fig],
                          [("Numbers", ["a", "b"], [[1, 2.5], ["x", None]])], notes="note <b>")
    text = p.read_text()
    assert "A &lt;title&gt;" in text and "m &amp; co" in text and "note &lt;b&gt;" in text
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in text  # plotly.js inline: the file opens offline
    rest = text.replace(get_plotlyjs(), "")
    assert "src=" not in rest and "http" not in rest.split("<h1>")[1]  # and loads nothing else
    assert "Plotly.newPlot" in text and "download CSV" in text
    with pytest.raises(InputError, match="does not exist"):
        write_html_report(tmp_path / "missing" / "r.html", "t", {})


def test_estimate_html_option(tmp_path, capsys):
    out = tmp_path / "estimate.html"
    rc = main(["estimate", "-m", "llama2-7b", "-d", "a100", "-b", "8", "--html", str(out), "--json"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)  # --json still prints one document
    text = out.read_text()
    assert "meta-llama/Llama-2-7b-hf" in text and "A100-SXM4-80GB" in text
    assert "Per-operator breakdown" in text and text.count("Plotly.newPlot") == 3
    assert f"{printed['tpot_s'] * 1e3:.3g}" in text or f"{printed['tpot_s'] * 1e3:.1f}" in text


def test_app_command_without_dash_exits_2(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dash" else real(name, *a))
    assert main(["app", "--port", "8123"]) == 2
    assert "install llmroofline[app]" in capsys.readouterr().err


def test_app_command_rejects_a_bad_port(capsys):
    assert main(["app", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


# ---- in a real browser ---------------------------------------------------------------------

def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


def browser_test(f):
    """Mark a test `browser`; skip it, saying why, only where Chromium or Playwright is missing."""
    f = pytest.mark.skipif(not CHROMIUM.exists(),
                           reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")(f)
    f = pytest.mark.skipif(_playwright() is None, reason="needs the playwright package (pip install playwright)")(f)
    return pytest.mark.browser(f)


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server():
    """The app on a free localhost port, served from a thread for this module's tests."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the test log
    app = A.create_app()
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/"
    srv.shutdown()
    t.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server)
    pg.wait_for_selector("#cmp-graph .main-svg", timeout=20000)
    yield pg
    ctx.close()
    assert not errors, errors


def pick(page, dropdown_id: str, value: str, search: str | None = None) -> None:
    """Choose an option of a Dash dropdown by its value, as a user does: open, search, click."""
    page.click(f"#{dropdown_id}")
    page.fill(".dash-dropdown-content input.dash-dropdown-search", search or value)
    page.click(f".dash-dropdown-content [role=option]:has(input[value=\"{value}\"])")
    page.keyboard.press("Escape")


def wait_idle(page, timeout: float = 15.0) -> None:
    """Wait until Dash has no callback in flight."""
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout * 1e3)
    page.wait_for_timeout(200)


def wait_drawn(page, graph: str) -> None:
    """Wait until a graph is drawn at full size (plotly redraws after a resize)."""
    page.wait_for_function("sel => { const s = document.querySelector(sel + ' .main-svg');"
                           " return s && s.getBoundingClientRect().height > 150; }", arg=graph, timeout=10000)
    page.wait_for_timeout(100)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    p = SHOTS / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    return p


def open_tab(page, label: str) -> None:
    page.click(f"#tabs .tab:has-text('{label}')")
    wait_idle(page)




@browser_test
def test_browser_compare_mesh_matches_the_api(page):
    pick(page, "model", "meta-llama/Llama-2-13b-hf", "Llama-2-13b")
    pick(page, "cmp-a", "H100-SXM5-80GB", "H100-SXM5")
    pick(page, "cmp-b", "A100-SXM4-80GB", "A100-SXM4-80")
    page.wait_for_function("() => document.querySelector('#cmp-summary').innerText.includes('H100-SXM5-80GB fp16')"
                           " && document.querySelector('#cmp-summary').innerText.includes('13b') === false")
    wait_idle(page)
    data = page.evaluate("() => { const g = document.querySelector('#cmp-graph .js-plotly-plot');"
                         " const t = g._fullData[0], deep = a => Array.from(a, r => Array.from(r, c => Array.from(c)));"
                         " return {title: g.layout.title.text, custom: deep(t.customdata), text: t.text,"
                         "         z: Array.from(t.z, row => Array.from(row))}; }")
    c = lr.compare("llama2-13b", "H100-SXM5-80GB", "A100-SXM4-80GB")
    assert "Llama-2-13b" in data["title"]
    custom = np.array(data["custom"], dtype=float)  # hover columns: batch, seq, perf A, perf B, ratio
    np.testing.assert_allclose(custom[..., 0], np.broadcast_to(c.batch[:, None], c.ratio.shape))
    np.testing.assert_allclose(custom[..., 2], c.perf_a, rtol=1e-9)
    np.testing.assert_allclose(custom[..., 3], c.perf_b, rtol=1e-9)
    np.testing.assert_allclose(custom[..., 4], c.ratio, rtol=1e-9)
    np.testing.assert_allclose(np.array(data["z"], dtype=float), np.log2(c.ratio), rtol=1e-9)  # the colour
    words = np.array(data["text"], dtype=object)  # the fits-in-memory mask, as the hover says it
    assert ((words == "fits on both") == (c.fits_a & c.fits_b)).all()
    assert (~c.fits_b).any() and ((words == "fits on neither device") == (~c.fits_a & ~c.fits_b)).all()
    summary = page.inner_text("#cmp-summary")
    both = c.fits_a & c.fits_b
    assert f"median {np.median(c.ratio[both]):.3g}×" in summary
    # Hover one cell: the tooltip carries both devices' numbers.
    box = page.locator("#cmp-graph .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.9)
    page.wait_for_selector("#cmp-graph .hoverlayer .hovertext", timeout=5000)
    assert "H100-SXM5-80GB" in page.locator("#cmp-graph .hoverlayer").text_content()
    shot(page, "compare_hover_1366x768")


@browser_test
def test_browser_bad_input_shows_a_message_and_the_rest_keeps_working(page):
    upload = "#upload input[type=file]"
    page.set_input_files(upload, files=[{"name": "config.json", "mimeType": "application/json",
                                         "buffer": b"{this is not json"}])
    page.wait_for_selector("#upload-msg .msg-error", timeout=10000)
    assert "not valid JSON" in page.inner_text("#upload-msg")
    page.set_input_files(upload, files=[{"name": "config.json", "mimeType": "application/json",
                                         "buffer": b'{"architectures": ["Nothing"]}'}])
    page.wait_for_function("() => document.querySelector('#upload-msg').innerText.includes('missing field')")
    shot(page, "bad_upload_1366x768")
    # The mesh is still there, and the model unchanged.
    assert page.locator("#cmp-graph .main-svg").count() > 0
    assert MODEL in page.inner_text("#model")

    # A nonsensical range: message above the mesh; fixing it brings the mesh back.
    page.fill("#cmp-batch", "100:1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#cmp-msg .msg-error", timeout=10000)
    assert "batch" in page.inner_text("#cmp-msg")
    page.fill("#cmp-batch", "1:256")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#cmp-msg .msg-error')")

    # A custom device with a missing number, then a good one that every device list then offers.
    page.click("#custom-details summary")
    page.fill("#cd-id", "Lab-GPU")
    page.fill("#cd-memory_bandwidth_gbps", "")
    page.click("#cd-add")
    page.wait_for_selector("#cd-msg .msg-error", timeout=10000)
    assert "bandwidth (GB/s) is missing" in page.inner_text("#cd-msg")
    page.fill("#cd-memory_bandwidth_gbps", "-2")
    page.click("#cd-add")
    page.wait_for_function("() => document.querySelector('#cd-msg').innerText.includes('positive')")
    page.fill("#cd-memory_bandwidth_gbps", "2500")
    page.click("#cd-add")
    page.wait_for_selector("#cd-msg .msg-ok", timeout=10000)
    pick(page, "cmp-b", A.CUSTOM + "Lab-GPU", "Lab-GPU")
    page.wait_for_function("() => document.querySelector('#cmp-summary').innerText.includes('B = Lab-GPU')")
    assert not page.locator("#cmp-msg .msg-error").count()

    # A good upload is picked at once.
    cfg = llama_config() | {"_name_or_path": "my-org/my-llama"}
    page.set_input_files(upload, files=[{"name": "config.json", "mimeType": "application/json",
                                         "buffer": json.dumps(cfg).encode()}])
    page.wait_for_selector("#upload-msg .msg-ok", timeout=10000)
    page.wait_for_function("() => document.querySelector('#cmp-graph .gtitle').textContent.includes('my-org/my-llama')")
    shot(page, "custom_device_and_upload_1366x768")


@browser_test
def test_browser_estimate_numbers_and_error(page):
    open_tab(page, "Estimate")
    page.wait_for_selector("#kpi-ttft", timeout=15000)
    r = lr.estimate(MODEL, "A100-SXM4-80GB", batch=8, input_len=2048, output_len=256)
    from llmroofline.report import cell_text

    assert page.inner_text("#kpi-ttft") == cell_text(float(r.ttft_s) * 1e3)
    assert page.inner_text("#kpi-tpot") == cell_text(float(r.tpot_s) * 1e3)
    assert page.inner_text("#kpi-throughput") == cell_text(float(r.throughput_tok_s))
    assert page.locator("#est-ops-table tbody tr").count() > 10
    shot(page, "estimate_full_page_1366x768")
    with page.expect_download(timeout=10000) as dl:
        page.click("#est-csv-btn")
    assert dl.value.suggested_filename == "estimate_operators.csv"
    assert Path(dl.value.path()).read_text().startswith("phase,operator,")
    with page.expect_download(timeout=15000) as dl:
        page.click("#est-html-btn")
    report = Path(dl.value.path()).read_text()
    assert dl.value.suggested_filename.endswith(".html") and report.count("Plotly.newPlot") == 3
    assert "A100-SXM4-80GB" in report and MODEL in report
    page.fill("#est-input", "0")
    page.keyboard.press("Enter")
    page.wait_for_selector("#est-msg .msg-error", timeout=10000)
    assert "input_len" in page.inner_text("#est-msg")
    shot(page, "estimate_error_1366x768")


@browser_test
def test_browser_screenshots_of_every_tab(page):
    """The first screen of every tab, as a user sees it on a laptop (look at them: out/screenshots/)."""
    graphs = {"Roofline": "#rf-graph", "Compare": "#cmp-graph", "Estimate": "#est-ops", "Recommend": "#rec-graph"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, graph in graphs.items():
        open_tab(page, label)
        page.wait_for_selector(f"{graph} .main-svg", timeout=15000)
        wait_idle(page)
        assert not page.locator(".msg-error").count(), label
        for w, h in ((1440, 900), (1366, 768)):
            page.set_viewport_size({"width": w, "height": h})
            page.wait_for_timeout(400)  # plotly redraws at the window's new size
            wait_drawn(page, graph)
            page.screenshot(path=str(SHOTS / f"{label.lower()}_{w}x{h}.png"))


@browser_test
def test_browser_html_report_opens_offline(browser, tmp_path):
    out = tmp_path / "estimate.html"
    assert main(["estimate", "-m", "llama2-7b", "-d", "a100", "-b", "8", "--html", str(out)]) == 0
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, offline=True)
    pg = ctx.new_page()
    pg.goto(out.as_uri())
    pg.wait_for_selector(".plotly-graph-div .main-svg", timeout=15000)
    assert pg.locator(".plotly-graph-div .main-svg").count() >= 3
    assert "A100-SXM4-80GB" in pg.inner_text("table.inputs")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / "estimate_report_1366x768.png"), full_page=True)
    ctx.close()


def _initial_values(layout) -> dict[tuple[str, str], object]:
    """(component id, property) -> the value the page starts with."""
    values: dict[tuple[str, str], object] = {}
    todo = [layout.to_plotly_json()]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            props = node.get("props", node)
            if isinstance(props, dict) and "id" in props:
                for k, v in props.items():
                    values[(props["id"], k)] = v
            todo += list(props.values()) if isinstance(props, dict) else []
        elif isinstance(node, (list, tuple)):
            todo += list(node)
        elif hasattr(node, "to_plotly_json"):
            todo.append(node.to_plotly_json())
    return values


def test_every_callback_answers_the_first_page_load():
    """What the browser sends when the page opens (and the Recommend tab is chosen), each callback
    answers without an error message: the wiring of every tab works without a browser."""
    app = A.create_app()
    values = _initial_values(app.layout)
    values[("tabs", "value")] = "recommend"
    client = app.server.test_client()
    fired = 0
    for key, cb in app.callback_map.items():
        if any(i["property"] in ("n_clicks", "contents") for i in cb["inputs"]):
            continue  # fires on a click or an upload, not on page load
        fired += 1
        outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in key.strip(".").split("...")]
        body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
                "inputs": [{**i, "value": values.get((i["id"], i["property"]))} for i in cb["inputs"]],
                "state": [{**s, "value": values.get((s["id"], s["property"]))} for s in cb["state"]],
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in cb["inputs"]]}
        r = client.post("/_dash-update-component", json=body)
        assert r.status_code in (200, 204), (key, r.status_code)
        text = r.get_data(as_text=True)
        assert "msg-error" not in text and "internal error" not in text, (key, text[:300])
    assert fired >= 6  # the four tabs and the device lists
