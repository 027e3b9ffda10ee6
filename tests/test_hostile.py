"""Hostile input: whatever a user (or someone else) feeds in, the answer is a result, or exit
status 2 with one clear line on stderr; never a traceback, a hang, or a file written by surprise."""

from __future__ import annotations

import io
import json
import os
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.errors import InputError
from llmroofline.files import MAX_CSV_BYTES, parse_yaml

from .conftest import REPO_ROOT

MEASUREMENTS = REPO_ROOT / "data" / "measured-public.csv"
BIG = "1" + "0" * 400  # 10**400: no float holds it


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def assert_input_error(args: list[str], *words: str) -> str:
    """Exit 2, one line on stderr holding `words` (case-insensitive), no traceback."""
    rc, _out, err = run_cli(args)
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in err.lower(), (w, err)
    return err


def in_thread(fn, timeout: float = 20.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not return in time."""
    box: dict[str, object] = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the call hung"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


# ---- 15: unbounded reads ------------------------------------------------------------------------

SPECIAL = [p for p in ("/dev/zero", "/dev/urandom") if os.path.exists(p)]


@pytest.fixture
def fifo(tmp_path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    p = tmp_path / "f.json"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("path", SPECIAL)
@pytest.mark.parametrize("option", ["--model", "--hardware"])
def test_device_files_are_refused_not_read(path, option):
    args = ["estimate", "--model", "llama2-7b", "--hardware", "a100"]
    args[args.index(option) + 1] = path
    in_thread(lambda: assert_input_error(args, "not a regular file", path))


@pytest.mark.parametrize("path", SPECIAL)
def test_device_files_as_calibration_csv_and_measurements_are_refused(path):
    in_thread(lambda: assert_input_error(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", path],
                                         "calibration"))
    in_thread(lambda: assert_input_error(["estimate", "--from-csv", path], "regular file"))
    in_thread(lambda: assert_input_error(["validate", "--data", path], "regular file"))


def test_a_fifo_never_blocks(fifo):
    for args in (["models", "show", str(fifo)], ["hardware", "show", str(fifo.with_name("f.yaml"))],
                 ["estimate", "--from-csv", str(fifo)], ["validate", "--data", str(fifo)]):
        if args[0] == "hardware":
            os.mkfifo(args[2])
        in_thread(lambda a=args: assert_input_error(a, "regular file"))


def test_a_bad_csv_row_naming_a_device_file_does_not_stop_the_others(tmp_path, fifo):
    csv_path = tmp_path / "w.csv"
    csv_path.write_text("model,hardware,input_len,output_len,batch\n"
                        "/dev/zero,a100,128,128,1\n"
                        f"{fifo},a100,128,128,1\n"
                        "llama2-7b,/dev/zero,128,128,1\n"
                        "llama2-7b,a100,128,128,1\n")
    rc, out, err = in_thread(lambda: run_cli(["estimate", "--from-csv", csv_path, "--json"]))
    assert rc == 0, err
    rows = json.loads(out)
    assert ["regular file" in r.get("error", "") for r in rows] == [True, True, True, False]
    assert rows[3]["ttft_s"] > 0


def test_oversized_files_are_refused(tmp_path):
    big = tmp_path / "config.json"
    with big.open("wb") as f:  # sparse: costs no disk
        f.truncate(20_000_000)
    assert_input_error(["models", "show", big], "too large")
    spec = tmp_path / "dev.yaml"
    with spec.open("wb") as f:
        f.truncate(2_000_000)
    assert_input_error(["hardware", "show", spec], "too large")
    csv_path = tmp_path / "w.csv"
    with csv_path.open("wb") as f:
        f.truncate(MAX_CSV_BYTES + 1)
    assert_input_error(["estimate", "--from-csv", csv_path], "too large")


def test_a_folder_is_not_a_calibration_or_csv(tmp_path):
    assert_input_error(["estimate", "--from-csv", tmp_path], "folder")
    assert_input_error(["validate", "--data", tmp_path], "folder")


# ---- 16: internal errors that are bad input --------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["estimate", "-m", "llama2-7b", "-d", "a100", "--input", BIG],
    ["estimate", "-m", "llama2-7b", "-d", "a100", "--output", BIG],
    ["estimate", "-m", "llama2-7b", "-d", "a100", "--batch", BIG],
    ["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20", "--seq", "1:100:inf"],
    ["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20", "--batch", "1:100:-inf"],
    ["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20", "--batch", "1:100:nan"],
    ["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20", "--metric", "e2e", "--output-len", BIG],
    ["recommend", "-m", "llama2-7b", "-i", BIG, "-o", "10", "-d", "L4"],
    ["recommend", "-m", "llama2-7b", "-i", "10", "-o", BIG, "-d", "L4"],
    ["recommend", "-m", "llama2-7b", "-i", "10", "-o", "10", "-d", "L4", "--max-gpus", BIG],
    ["pareto", "-m", "llama2-7b", "-i", BIG, "-o", "10", "-d", "L4"],
])
def test_huge_and_infinite_numbers_are_input_errors(args):
    assert_input_error(args)


def test_huge_numbers_in_the_api_are_input_errors():
    m = lr.load_model("llama2-7b")
    with pytest.raises(InputError, match="AttentionGroup"):
        lr.forward_ops(m, groups=[lr.AttentionGroup(batch=10**400, new=1, past=1)])
    with pytest.raises(InputError):
        lr.estimate(m, "a100", batch=[1, 10**400])
    with pytest.raises(InputError):
        lr.compare(m, "a100", "h20", seq=[128, 10**400])
    with pytest.raises(InputError, match="output_len"):
        lr.compare(m, "a100", "h20", metric="e2e", output_len=10**400)


def test_a_numpy_type_as_a_precision_is_an_input_error():
    with pytest.raises(InputError, match="precision"):
        lr.estimate("llama2-7b", "a100", weight_dtype=np.float16)


def test_deeply_nested_and_huge_number_configs(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_input_error(["models", "show", deep], "nested")
    bigint = tmp_path / "bigint.json"
    bigint.write_text('{"hidden_size": 1' + "0" * 100_000 + "}")
    assert_input_error(["models", "show", bigint], "digits")


@pytest.mark.parametrize("text, words", [
    ("default: {}\nerror_bands: abc\n", ["error_bands", "mapping"]),
    ("default: {}\nerror_bands: [0.1, 0.2]\n", ["error_bands", "mapping"]),
    ("default: {}\nfamilies: [ampere, hopper]\n", ["families", "mapping"]),
    ("default: {}\nfamilies: hopper\n", ["families", "mapping"]),
    ("default: {}\nfamilies: {hopper: 3}\n", ["families.hopper"]),
    ("default: {}\nerror_bands: {throughput: -5}\n", ["error_bands.throughput"]),
    ("default: {}\nerror_bands: {throughput: .nan}\n", ["error_bands.throughput"]),
    ("default: {}\nerror_bands: {throughput: .inf}\n", ["error_bands.throughput"]),
    ("default: {}\nerror_bands: {throughput: true}\n", ["error_bands.throughput"]),
    ("default: {}\nerror_bands: {throughput: '0.1'}\n", ["error_bands.throughput"]),
    ("default: {}\ndefault: {memory: 0.5}\n", ["default", "twice", "line 2"]),
])
def test_malformed_calibration_files(tmp_path, text, words):
    cal = tmp_path / "cal.yaml"
    cal.write_text(text)
    assert_input_error(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", cal], *words)


def test_an_empty_error_bands_section_means_no_bands(tmp_path):
    cal = tmp_path / "cal.yaml"
    cal.write_text("default: {memory: 0.8}\nerror_bands:\nfamilies:\n")
    rc, out, err = run_cli(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", cal, "--json"])
    assert rc == 0, err
    assert "error_band" not in json.loads(out)


def test_unknown_calibration_families_are_warned_about(tmp_path):
    cal = tmp_path / "cal.yaml"
    cal.write_text("default: {}\nfamilies: {hoper: {memory: 0.5}}\n")
    rc, out, err = run_cli(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", cal, "--json"])
    assert rc == 0
    assert "'hoper'" in err and "warning" in err
    cal.write_text("default: {}\nfamilies: {hopper: {memory: 0.5}}\n")
    rc, out, err = run_cli(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", cal, "--json"])
    assert rc == 0 and "warning" not in err


# ---- 17: silently accepted ---------------------------------------------------------------------------

def spec_text(**changes) -> str:
    import yaml

    spec = yaml.safe_load((REPO_ROOT / "src/llmroofline/catalog/hardware/A100-SXM4-80GB.yaml").read_text())
    spec.update(changes)
    return yaml.safe_dump(spec)


@pytest.mark.parametrize("field, value", [
    ("memory_bandwidth_gbps", 1e-300), ("memory_bandwidth_gbps", 0.001), ("memory_gb", 1e-9),
    ("peak_tflops", {"fp16": 1e-12}), ("tdp_w", 1e-6), ("price_per_hour_usd", 1e-12),
    ("onchip_buffer_mb", 1e-12), ("interconnect", {"kind": "x", "bandwidth_gbps": 1e-200, "max_devices": 8}),
])
def test_physically_absurd_small_device_figures_are_refused(tmp_path, field, value):
    spec = tmp_path / "dev.yaml"
    spec.write_text(spec_text(**{field: value}))
    assert_input_error(["hardware", "show", spec], field.split("_")[0])


def test_duplicate_yaml_keys_are_refused(tmp_path):
    text = spec_text()
    spec = tmp_path / "dev.yaml"
    spec.write_text(text + "memory_gb: 8000\n")
    assert_input_error(["hardware", "show", spec], "memory_gb", "twice")
    nested = text.replace("interconnect:\n", "interconnect:\n  max_devices: 2\n", 1)
    spec.write_text(nested)
    assert_input_error(["hardware", "show", spec], "max_devices", "twice")
    spec.write_text(text)  # the file without duplicates loads
    assert run_cli(["hardware", "show", spec])[0] == 0


def test_the_yaml_loader_keeps_anchors_and_merge_keys():
    data = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\nlist: [*b, *b]\n", "test")
    assert data["other"] == {"x": 1, "y": 2} and data["list"] == [{"x": 1}, {"x": 1}]
    with pytest.raises(InputError, match="twice"):
        parse_yaml("a:\n  - {k: 1, k: 2}\n", "test")


def test_duplicate_csv_columns_are_refused(tmp_path):
    csv_path = tmp_path / "w.csv"
    csv_path.write_text("model,hardware,input_len,output_len,batch,batch\nllama2-7b,a100,128,128,1,64\n")
    assert_input_error(["estimate", "--from-csv", csv_path], "batch", "twice")
    data = tmp_path / "m.csv"
    header, *rest = MEASUREMENTS.read_text().splitlines()
    data.write_text("\n".join([header + ",value", *[r + ",1" for r in rest[:3]]]) + "\n")
    assert_input_error(["validate", "--data", data], "value", "twice")


def test_an_attention_group_without_tokens_is_refused():
    m = lr.load_model("llama2-7b")
    for g in (lr.AttentionGroup(batch=0, new=1, past=10), lr.AttentionGroup(batch=4, new=0, past=10)):
        with pytest.raises(InputError, match="no tokens"):
            lr.forward_ops(m, groups=[g])
    assert lr.forward_ops(m, groups=[lr.AttentionGroup(batch=4, new=1, past=10)])


def test_kv_memory_fraction_outside_max_mode():
    with pytest.raises(InputError, match="kv_memory_fraction"):
        lr.estimate("llama2-7b", "a100", mode="static", kv_memory_fraction=5)
    with pytest.warns(UserWarning, match="kv_memory_fraction"):
        lr.estimate("llama2-7b", "a100", mode="static", kv_memory_fraction=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lr.estimate("llama2-7b", "a100", mode="max", kv_memory_fraction=0.5)
        lr.estimate("llama2-7b", "a100", mode="static")


# ---- 18: a byte order mark ---------------------------------------------------------------------------

def test_csv_files_with_a_byte_order_mark(tmp_path):
    csv_path = tmp_path / "w.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfmodel,hardware,input_len,output_len,batch\r\nllama2-7b,a100,128,128,8\r\n")
    rc, out, err = run_cli(["estimate", "--from-csv", csv_path, "--json"])
    assert rc == 0, err
    assert "error" not in json.loads(out)[0]
    data = tmp_path / "m.csv"
    data.write_bytes(b"\xef\xbb\xbf" + MEASUREMENTS.read_bytes())
    from llmroofline.validate import read_measurements

    rows = read_measurements(data)
    assert [r.id for r in rows] == [r.id for r in read_measurements(MEASUREMENTS)]


# ---- C: interrupts and closed pipes ---------------------------------------------------------------

def test_ctrl_c_exits_130(monkeypatch):
    from llmroofline.cli import catalog_cmds

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog_cmds, "list_models", interrupted)
    assert run_cli(["models", "list"])[0] == 130


def test_an_exit_status_from_inside_a_command_is_passed_on(monkeypatch):
    import typer

    from llmroofline.cli import catalog_cmds

    def leave(*a, **k):
        raise typer.Exit(3)

    monkeypatch.setattr(catalog_cmds, "list_models", leave)
    assert run_cli(["models", "list"])[0] == 3


class ClosedPipe(io.StringIO):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_exits_141():
    err = io.StringIO()
    with redirect_stdout(ClosedPipe()), redirect_stderr(err):
        rc = main(["models", "list", "--json"])
    assert rc == 141, err.getvalue()


@pytest.mark.parametrize("args", [["models", "list", "--json"], ["models", "list"]])
def test_a_closed_pipe_in_a_real_process_exits_141(args):
    import subprocess
    import sys

    code = "import sys; from llmroofline.cli import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None
    p.stdout.close()  # the reader goes away before the output is written
    _, err = p.communicate(timeout=120)
    assert p.returncode == 141, err


# ---- A: what reaches the terminal ---------------------------------------------------------------------

ESCAPE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m"


def test_escape_sequences_never_reach_the_terminal(tmp_path):
    err = assert_input_error(["models", "show", "llama" + ESCAPE], "unknown model")
    assert not any(c in err for c in "\x1b\x07\x9b")
    folder = tmp_path / ("evil" + ESCAPE.replace("\x07", "").replace("/", ""))
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(lr.load_model("llama2-7b").summary() | {"hidden_size": -1}))
    err = assert_input_error(["models", "show", folder])
    assert "\x1b" not in err and "\x9b" not in err
    csv_path = tmp_path / "w.csv"
    csv_path.write_text("model,hardware,input_len,output_len,batch\n"
                        f'"[/bold]x{ESCAPE}",a100,128,128,1\nllama2-7b,"[red]a100",128,128,1\n')
    rc, out, err = run_cli(["estimate", "--from-csv", csv_path])
    assert rc == 0, err  # rich markup in a name is text, not a MarkupError
    assert "\x1b]" not in out and "\x9b" not in out and "[/bold]x" in out


def test_long_names_are_capped_in_messages():
    err = assert_input_error(["models", "show", "x" * 100_000], "unknown model")
    assert len(err) < 600
    err = assert_input_error(["estimate", "-m", "llama2-7b", "-d", "a100", "--calibration", "y" * 100_000])
    assert len(err) < 600


# ---- B: one rule for every file written -----------------------------------------------------------

WRITERS = {  # command line with OUT where the output goes (the extension is appended)
    "estimate --html": (["estimate", "-m", "llama2-7b", "-d", "a100", "--html", "OUT"], ".html"),
    "recommend --html": (["recommend", "-m", "llama2-7b", "-i", "128", "-o", "64", "-d", "L4", "--html", "OUT"],
                         ".html"),
    "pareto --out": (["pareto", "-m", "llama2-7b", "-i", "128", "-o", "64", "-d", "L4", "--out", "OUT"], ".png"),
    "pareto --html": (["pareto", "-m", "llama2-7b", "-i", "128", "-o", "64", "-d", "L4", "--html", "OUT"], ".html"),
    "compare --csv": (["compare", "-m", "llama2-7b", "--a", "a100", "--b", "h20", "--batch", "1,8", "--seq", "128,256",
                       "--csv", "OUT"], ".csv"),
    "roofline --html": (["roofline", "a100", "--html", "OUT"], ".html"),
}


def writer_args(name: str, out: Path) -> list[str]:
    args, _ = WRITERS[name]
    return [str(out) if a == "OUT" else a for a in args]


@pytest.mark.parametrize("name", list(WRITERS))
def test_existing_outputs_need_force(tmp_path, name):
    out = tmp_path / ("result" + WRITERS[name][1])
    out.write_text("keep me")
    assert_input_error(writer_args(name, out), "exists", "--force")
    assert out.read_text() == "keep me"
    rc, _, err = run_cli([*writer_args(name, out), "--force"])
    assert rc == 0, err
    assert out.read_bytes() != b"keep me" and out.stat().st_size > 100


@pytest.mark.parametrize("name", list(WRITERS))
def test_outputs_never_write_through_a_symbolic_link(tmp_path, name):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / ("link" + WRITERS[name][1])
    link.symlink_to(target)
    for extra in ([], ["--force"]):
        assert_input_error([*writer_args(name, link), *extra], "symbolic link")
        assert target.read_text() == "keep me"
    dangling = tmp_path / ("dangling" + WRITERS[name][1])
    dangling.symlink_to(tmp_path / "nowhere")
    assert_input_error(writer_args(name, dangling), "symbolic link")
    assert not (tmp_path / "nowhere").exists()


def test_calibrate_follows_the_same_rule(tmp_path):
    target = tmp_path / "precious.yaml"
    target.write_text("keep me")
    link = tmp_path / "cal.yaml"
    link.symlink_to(target)
    assert_input_error(["calibrate", "--out", link, "--force", "--no-bands"], "symbolic link")
    assert target.read_text() == "keep me"
    assert_input_error(["calibrate", "--out", target, "--no-bands"], "exists", "--force")


def test_a_writer_refuses_a_link_that_appears_after_the_check(tmp_path):
    from llmroofline.files import check_output, open_output

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = check_output(tmp_path / "r.html", ("html",), force=True)
    out.symlink_to(target)  # swapped in between the check and the write
    for force in (True, False):
        with pytest.raises(InputError):
            open_output(out, force=force)
    assert target.read_text() == "keep me"


# ---- A: the web app ------------------------------------------------------------------------------------

def app_module():
    pytest.importorskip("dash")
    from llmroofline import app as A

    return A


def test_the_app_resolves_catalog_names_only_never_files(tmp_path):
    A = app_module()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"secret_key_of_the_server": 1, "hidden_size": 8}))
    spec = tmp_path / "dev.yaml"
    spec.write_text("top_secret: 1\n")
    messages = []
    for value in (str(cfg), str(tmp_path), str(tmp_path / "missing.json"), "/dev/zero", "~/.ssh/id_rsa", "../x.json"):
        with pytest.raises(InputError) as e:
            A.resolve_model(value)
        messages.append(str(e.value).replace(value, "NAME"))
        with pytest.raises(InputError, match="unknown device") as e:
            A.resolve_device(value if value != str(cfg) else str(spec))
        assert "top_secret" not in str(e.value)
    assert all(m.startswith("unknown model 'NAME'") for m in messages), messages
    assert not any("secret_key" in m or "hidden_size" in m for m in messages)
    for value in (str(spec), "/dev/zero", ["a100"], {"a": 1}, 7):
        with pytest.raises(InputError):
            A.resolve_calibration(value)
    for bad in (["a100"], {"x": 1}, 5):
        with pytest.raises(InputError):
            A.resolve_device(bad)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            A.resolve_model(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="gone"):
        A.resolve_device(A.CUSTOM + "x", ["not", "a", "mapping"])  # type: ignore[arg-type]


def estimate_request(model: str, calibration: str = "default", runtime: str = "generic") -> dict:
    outputs = [("est-msg", "children"), ("est-kpis", "children"), ("est-mem", "figure"), ("est-sweep", "figure"),
               ("est-ops", "figure"), ("est-table", "children"), ("est-notes", "children"), ("est-store", "data")]
    inputs = [("model", model), ("models-store", {}), ("devices-store", {}), ("est-device", "A100-SXM4-80GB"),
              ("est-tp", "1"), ("est-pp", "1"), ("est-batch", "8"), ("est-input", "512"), ("est-output", "64"),
              ("est-weight", "fp16"), ("est-kv", "fp16"), ("est-mode", "static"), ("est-cal", calibration),
              ("est-runtime", runtime), ("est-ep", ""), ("est-dp", ""), ("est-images", "0")]
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [{"id": i, "property": "value" if i != "models-store" and i != "devices-store" else "data",
                        "value": v} for i, v in inputs],
            "changedPropIds": ["model.value"], "state": []}


def test_a_request_naming_a_file_gets_the_unknown_name_message(tmp_path):
    A = app_module()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(lr.load_model("llama2-7b").summary()))
    client = A.create_app().server.test_client()
    ok = client.post("/_dash-update-component", json=estimate_request("llama2-7b"))
    assert ok.status_code == 200 and "kpi-" in ok.get_data(as_text=True)
    for model, cal, runtime in ((str(cfg), "default", "generic"), ("/dev/zero", "default", "generic"),
                                ("llama2-7b", str(cfg), "generic"), ("llama2-7b", "/dev/zero", "generic"),
                                ("llama2-7b", "default", str(cfg))):
        r = client.post("/_dash-update-component", json=estimate_request(model, cal, runtime))
        body = r.get_data(as_text=True)
        assert r.status_code == 200
        msg = json.loads(body)["response"]["est-msg"]["children"]["props"]["children"]
        assert msg.startswith(("unknown model", "calibration must be", "serving stack must be")), msg
        assert "hidden_size" not in body and "kpi-" not in body


@pytest.mark.parametrize("bind, extra, host, allowed", [
    ("127.0.0.1", (), "127.0.0.1:8050", True),
    ("127.0.0.1", (), "localhost:8050", True),
    ("127.0.0.1", (), "LOCALHOST.", True),
    ("127.0.0.1", (), "[::1]:8050", True),
    ("127.0.0.1", (), "evil.example:8050", False),
    ("127.0.0.1", (), "localhost.evil.example", False),
    ("127.0.0.1", (), "", False),
    ("127.0.0.1", (), "10.0.0.5:8050", False),
    ("0.0.0.0", (), "10.0.0.5:8050", True),  # a bare address involves no DNS: no rebinding
    ("0.0.0.0", (), "evil.example", False),
    ("0.0.0.0", ("gpu-box.lan",), "gpu-box.lan:8050", True),
    ("gpu-box.lan", (), "gpu-box.lan:8050", True),
    ("gpu-box.lan", (), "other.lan:8050", False),
])
def test_the_host_header_is_checked(bind, extra, host, allowed):
    A = app_module()
    client = A.create_app(bind_host=bind, allow_hosts=extra).server.test_client()
    r = client.get("/", headers={"Host": host})
    assert (r.status_code == 200) == allowed, (r.status_code, host)
    if not allowed:
        assert r.status_code == 400
        r = client.post("/_dash-update-component", json=estimate_request("llama2-7b"), headers={"Host": host})
        assert r.status_code == 400


def test_debug_mode_never_serves_the_interactive_console(monkeypatch):
    A = app_module()
    import dash

    seen: dict = {}
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: seen.update(kw))
    A.serve(debug=True)
    assert seen["debug"] is True and seen["use_debugger"] is False
    rc, _, err = run_cli(["app", "--debug", "--host", "0.0.0.0"])
    assert rc == 2 and "--debug" in err
    rc, _, err = run_cli(["app", "--debug"])
    assert rc == 0 and "WARNING: debug mode" in err


def test_hostile_uploads_are_input_errors():
    A = app_module()
    import base64

    def url(payload: bytes) -> str:
        return "data:application/json;base64," + base64.b64encode(payload).decode()

    with pytest.raises(InputError, match="nested"):
        A.parse_upload(url(b"[" * 100_000 + b"]" * 100_000), "config.json")
    with pytest.raises(InputError, match="digits"):
        A.parse_upload(url(b'{"hidden_size": 1' + b"0" * 100_000 + b"}"), "config.json")
    with pytest.raises(InputError) as e:
        A.parse_upload(url(b"{"), "\x1b[2Jx" * 1000 + ".json")
    assert "\x1b" not in str(e.value) and len(str(e.value)) < 400


def test_paths_that_look_like_markup_are_printed_as_text(tmp_path):
    (tmp_path / "x[").mkdir()
    out = tmp_path / "x[" / "b].html"  # printed as ".../x[/b].html": a closing tag to rich
    rc, stdout, err = run_cli(["roofline", "a100", "--html", out])
    assert rc == 0, err
    assert f"wrote {out}" in stdout.replace("\n", "")


# ---- 20: many users on one app -------------------------------------------------------------------

def test_the_app_caps_the_grid_of_one_request():
    A = app_module()
    m, a, b = lr.load_model("llama2-13b"), lr.load_hardware("a100"), lr.load_hardware("h20")
    with pytest.raises(InputError, match="at most 16,384 per request"):
        A.compare_view(m, a, b, batch="1:1024:200", seq="128:4096:200")
    assert A.compare_view(m, a, b, batch="1:1024:64", seq="128:4096:64").rows  # within the cap


def test_the_wsgi_entry_point_checks_the_host():
    pytest.importorskip("dash")
    from llmroofline.app.wsgi import server

    client = server.test_client()
    assert client.get("/", headers={"Host": "127.0.0.1:8050"}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_workers_a_heavy_request_does_not_hold_up_the_others(tmp_path):
    """Two worker processes: while one computes a large comparison, the page still loads."""
    pytest.importorskip("dash")
    pytest.importorskip("gunicorn")
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from llmroofline.cli import main; main()", "app", "--workers", "2",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # up to 60 s for the workers to start
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not start")
        answers: list[int] = []

        def post() -> None:  # a whole Estimate tab (figures, breakdown, batch sweep) per request
            req = urllib.request.Request(url + "/_dash-update-component",
                                         data=json.dumps(estimate_request("llama2-7b")).encode(),
                                         headers={"Content-Type": "application/json"})
            answers.append(urllib.request.urlopen(req, timeout=60).status)

        busy = [threading.Thread(target=post) for _ in range(4)]
        for t in busy:
            t.start()
        t0 = time.perf_counter()
        page = urllib.request.urlopen(url + "/", timeout=30).read()
        assert b"llmroofline" in page and time.perf_counter() - t0 < 20
        for t in busy:
            t.join(timeout=90)
        assert answers == [200] * 4  # and every estimate was answered
    finally:
        proc.terminate()
        proc.wait(timeout=30)
