"""Calibration: synthetic data recovers known parameters; validate gives hand-checked errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import llmroofline as lr
from llmroofline.calibrate import (
    calibration_document,
    calibration_from_values,
    error_bands,
    fit,
    parameters,
    write_calibration,
)
from llmroofline.priors import kernel_priors
from llmroofline.runtime import load_runtime
from llmroofline.validate import METRIC_FAMILY, predict, read_measurements, summarize

from .conftest import REPO_ROOT

DATA = REPO_ROOT / "data" / "measured-public.csv"
FIXTURE = Path(__file__).parent / "data" / "fixture.csv"


def test_synthetic_measurements_recover_known_parameters(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    rows = [r for r in read_measurements(DATA) if r.mode == "static"][::2]  # varied static workloads
    params = parameters(rows)
    truth = {("realization", "memory"): 0.9, ("realization", "gemm_compute"): 0.85,
             ("runtime", "trtllm@0.8", "step_overhead_s"): 8e-4}
    values = [truth.get(p.path, p.prior) for p in params]
    synthetic = predict(rows, calibration_from_values(params, values))
    rows = [replace(r, value=float(v)) for r, v in zip(rows, synthetic, strict=True)]
    res = fit(rows)
    # Realization and family factors multiply, and bandwidth trades against fixed costs per step
    # on these rows: the data pin down each device's achieved fractions to a few per cent and the
    # predictions to well under one, the split of fixed costs more loosely.
    want = calibration_from_values(params, values)
    for device in {r.hardware for r in rows}:
        hw = lr.load_hardware(device)
        got, true = res.calibration.for_device(hw, "trtllm@0.8"), want.for_device(hw, "trtllm@0.8")
        assert got.memory == pytest.approx(true.memory, rel=0.06), device
        assert got.gemm_compute == pytest.approx(true.gemm_compute, rel=0.06), device
        assert got.step_overhead_s == pytest.approx(8e-4, rel=0.5), device
    assert np.median(np.abs(res.residuals)) < 0.005 and np.max(np.abs(res.residuals)) < 0.05


def test_every_fitted_parameter_stays_within_its_bounds():
    cal = lr.load_calibration("default")
    pri = kernel_priors().shared
    for k in ("attn_prefill_compute", "attn_decode_memory", "fp8_gemm_factor"):
        assert pri[k].low <= getattr(cal.default, k) <= pri[k].high
    assert 0 <= cal.default.overlap_loss <= 1
    for fam, factors in cal.family_factors.items():
        assert all(0.7 <= v <= 1.4 for v in factors.values()), fam
    for rid, values in cal.runtimes.items():
        prof = load_runtime(rid)
        for k in ("layer_overhead_s", "step_overhead_s"):
            assert getattr(prof, k) / 10 <= values[k] <= getattr(prof, k) * 10, (rid, k)


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
    assert r.interval["level"] == 0.8


def test_calibration_file_round_trip(tmp_path):
    cal = lr.load_calibration("default")
    doc = calibration_document(cal, data="x.csv", rows=3, bands={"throughput": 0.1}, intervals=cal.intervals)
    write_calibration(doc, tmp_path / "c.yaml")
    back = lr.load_calibration(str(tmp_path / "c.yaml"))
    assert back.default == cal.default
    assert back.family_factors == cal.family_factors and back.runtimes == cal.runtimes
    assert back.intervals["level"] == cal.intervals["level"]
    hw = lr.load_hardware("MI300X")
    assert back.for_device(hw, "sglang") == cal.for_device(hw, "sglang")


def test_error_bands_are_median_absolute_errors():
    rows = read_measurements(FIXTURE)
    # predictions 0.5x and 1x the measurements: |errors| 50% and 0%, median 25%
    bands = error_bands(rows, np.array([rows[0].value / 2, rows[1].value]))
    assert bands[METRIC_FAMILY[rows[0].metric]] == pytest.approx(0.25)


@pytest.mark.parametrize("text", ["default: {memory: 1.5}\n", "default: {warp_speed: 1}\n", "[1, 2]\n",
                                  "default: {memory: yes}\n", "default: !!python/object:os.system {}\n",
                                  "default: {}\nphysical: true\nrealization: {memory: -1}\n",
                                  "default: {}\nruntimes: {vllm@0.6: {step_overhead_s: 5}}\n",
                                  "default: {}\nintervals: {level: 0.8, metrics: {throughput: [0.1, 0, -0.1]}}\n",
                                  "default: {}\nfamily_factors: [1, 2]\n"])
def test_bad_calibration_files_are_clear_errors(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(lr.InputError):
        lr.load_calibration(str(p))
