"""Shared fixtures: made-up devices with round numbers, so expected times can be derived by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmroofline.hardware import Hardware, hardware_from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]


def round_device(**overrides) -> Hardware:
    """100 TFLOPS fp16, 200 fp8, 1000 GB/s, 100 GB, 400 GB/s bidirectional links (200 per direction)."""
    spec = dict(
        id="ROUND-1", name="made-up round device", vendor="NVIDIA", family="testfamily", aliases=[],
        release_year=2024, memory_gb=100, memory_type="HBM3", memory_bandwidth_gbps=1000,
        peak_tflops={"fp16": 100, "bf16": 100, "fp8": 200}, onchip_buffer_mb=50,
        interconnect={"kind": "NVLink", "bandwidth_gbps": 400, "max_devices": 8}, tdp_w=500,
        price_per_hour_usd=2.0, confidence="high", notes="", source="test fixture", sources={},
    )
    spec.update(overrides)
    return hardware_from_dict(spec)


@pytest.fixture
def round_hw() -> Hardware:
    return round_device()


# ---- hypothesis profiles (property tests and fuzzing) ----------------------------------------
# "ci" (default): derandomized, so every run tries the same examples and CI is reproducible.
# "long": a thousand random examples per test, for a deeper search before a release:
#     HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_properties.py tests/test_fuzz.py
try:
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", derandomize=True, max_examples=40, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("long", max_examples=1000, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev extra; the tests that need it skip without it
    pass
