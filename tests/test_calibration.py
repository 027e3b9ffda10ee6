"""Calibration: synthetic data recovers known parameters; validate gives hand-checked errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.calibrate import calibration_document, error_bands, fit, write_calibration
from llmroofline.efficiency import Calibration, Efficiency
from llmroofline.validate import predict, read_measurements, summarize

from .conftest import REPO_ROOT

DATA = REPO_ROOT / "data" / "measured-public.csv"
FIXTURE = Path(__file__).parent / "data" / "fixture.csv"


def test_synthetic_measurements_recover_known_parameters(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    rows = [r for r in read_measurements(DATA) if r.mode == "static"][::4]  # 29 varied static workloads
    truth = Efficiency(gemm_compute=0.62, gemm_tile_rows=64, memory=0.83, attn_prefill_compute=0.7,
                       attn_decode_memory=0.8, comm_bandwidth=0.7, comm_latency_s=2e-5,
                       layer_overhead_s=1e-5, step_overhead_s=4e-4)
    synthetic = predict(rows, Calibration(default=truth, families={}, error_bands={}))
    rows = [replace(r, value=float(v)) for r, v in zip(rows, synthetic, strict=False)]
    start = replace(truth, gemm_compute=0.9, memory=0.6, step_overhead_s=1e-3)
    res = fit(rows, free=["gemm_compute", "memory", "step_overhead_s"], start=start, per_family=False)
    got = res.calibration.default
    assert got.gemm_compute == pytest.approx(0.62, rel=0.02)
    assert got.memory == pytest.approx(0.83, rel=0.02)
    assert got.step_overhead_s == pytest.approx(4e-4, rel=0.1)
    assert np.max(np.abs(res.residuals)) < 0.01


def test_validate_fixture_hand_checked(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    rows = read_measurements(FIXTURE)
    pred = predict(rows, "none")
    # Batch 1, one prompt token: the pass reads every weight once except the embedding table
    # (one row): (6,738,415,616 - 32,000 x 4,096) x 2 bytes / 1000 GB/s = 13.21 ms.
    expected_ms = (6_738_415_616 - 32_000 * 4_096) * 2 / 1e12 * 1e3
    assert pred[0] == pytest.approx(expected_ms, rel=0.002)
    (s,) = summarize(rows, pred, "all")
    # Row f1 measured twice the prediction (-50%), f2 equal to it (0%): median |error| 25%.
    assert s.median_ape == pytest.approx(25.0, abs=0.3)
    assert s.bias == pytest.approx(-25.0, abs=0.3)


def test_plain_roofline_bounds_every_public_measurement():
    rows = read_measurements(DATA)
    pred = predict(rows, "none")
    for r, p in zip(rows, pred, strict=False):
        if r.metric.startswith("throughput"):
            assert p >= r.value, r.id  # never slower than measured
        else:
            assert p <= r.value, r.id  # times never longer than measured


def test_default_calibration_is_accurate_in_sample():
    rows = read_measurements(DATA)
    pred = predict(rows, "default")
    (s,) = summarize(rows, pred, "all")
    assert s.median_ape < 10
    assert abs(s.bias) < 5


def test_calibrated_model_is_monotone_and_slower_than_plain():
    r = lr.estimate("llama2-7b", "A100-SXM4-80GB", batch=np.array([1, 2, 4, 8, 16, 64, 256])[:, None],
                    input_len=np.array([128, 512, 2048, 8192])[None, :], output_len=256)
    plain = lr.estimate("llama2-7b", "A100-SXM4-80GB", batch=np.array([1, 2, 4, 8, 16, 64, 256])[:, None],
                        input_len=np.array([128, 512, 2048, 8192])[None, :], output_len=256, calibration="none")
    assert np.all(np.diff(r.tpot_s, axis=0) >= 0) and np.all(np.diff(r.tpot_s, axis=1) >= 0)
    assert np.all(np.diff(r.ttft_s, axis=1) > 0)
    assert np.all(r.throughput_tok_s <= plain.throughput_tok_s)
    assert r.error_band["throughput"] > 0


def test_calibration_file_round_trip(tmp_path):
    cal = lr.load_calibration("default")
    doc = calibration_document(cal, data="x.csv", rows=3, bands={"throughput": 0.1})
    write_calibration(doc, tmp_path / "c.yaml")
    back = lr.load_calibration(str(tmp_path / "c.yaml"))
    assert back.default == cal.default
    assert back.families.keys() == cal.families.keys()
    assert error_bands([], np.array([]))["tpot"] == 0.2


@pytest.mark.parametrize("text", ["default: {memory: 1.5}\n", "default: {warp_speed: 1}\n", "[1, 2]\n",
                                  "default: {memory: yes}\n", "default: !!python/object:os.system {}\n"])
def test_bad_calibration_files_are_clear_errors(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(lr.InputError):
        lr.load_calibration(str(p))
