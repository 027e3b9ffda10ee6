"""A test per bundled device: schema, positive figures, dense (not sparse) peaks, plausible memory,
sources present; and the SPEC's ids and aliases resolve."""

from __future__ import annotations

import pytest

import llmroofline as lr

SPEC_IDS = ["A100-SXM4-80GB", "A100-SXM4-40GB", "A100-PCIe-80GB", "A100-PCIe-40GB", "A800-SXM4-80GB",
            "H100-SXM5-80GB", "H100-PCIe-80GB", "H800-SXM5-80GB", "H20", "H200-SXM-141GB", "GH200-96GB",
            "GH200-144GB", "B200", "L20", "L40", "L40S", "L4", "A10", "A30", "RTX-4090", "MI300X", "Gaudi2"]

# Peak DRAM bandwidth per device that each memory type allows, GB/s (loose: one to eight stacks or
# a 128-512-bit bus).
BANDWIDTH_GBPS = {"HBM": (300, 8200), "HBM2": (300, 3300), "HBM2e": (400, 3700), "HBM3": (1500, 6000),
                  "HBM3e": (2500, 8200), "GDDR6": (190, 1000), "GDDR6X": (700, 1100), "GDDR7": (1000, 1900)}
ORDER = ["tf32", "fp16", "fp8", "fp4"]  # each at most ~2x the previous one when dense

DEVICES = lr.list_hardware()


def test_catalog_is_broad_and_has_the_spec_ids():
    assert len(DEVICES) >= 45
    ids = {d.id for d in DEVICES}
    assert set(SPEC_IDS) <= ids
    assert lr.load_hardware("a100").id == "A100-SXM4-80GB"
    assert lr.load_hardware("h100-sxm5-80gb").id == "H100-SXM5-80GB"


@pytest.mark.parametrize("hw", DEVICES, ids=lambda d: d.id)
def test_device_figures_are_dense_positive_plausible_and_sourced(hw):
    d = hw.to_dict()
    assert d["memory_gb"] > 0 and d["memory_bandwidth_gbps"] > 0 and d["tdp_w"] > 0
    assert all(v > 0 for v in d["peak_tflops"].values())
    assert "fp16" in d["peak_tflops"] or "bf16" in d["peak_tflops"]
    lo, hi = BANDWIDTH_GBPS[hw.memory_type]
    assert lo <= d["memory_bandwidth_gbps"] <= hi, hw.memory_type
    assert d["memory_gb"] <= (300 if hw.memory_type.startswith("HBM") else 100)
    peaks = [(p, d["peak_tflops"][p]) for p in ORDER if p in d["peak_tflops"]]
    for (_, low), (name, high) in zip(peaks, peaks[1:], strict=False):
        # A sparse figure would show as a 4x jump. fp4 may reach 4x fp8: Blackwell Ultra doubles
        # fp4 again, and GeForce fp8 is listed at the FP32-accumulate (half) rate.
        assert low <= high <= (4.0 if name == "fp4" else 3.0) * low, peaks
    half = d["peak_tflops"].get("fp16", d["peak_tflops"].get("bf16"))
    # Ridge points of real accelerators lie between ~20 and ~700 FLOP/byte; a sparse fp16 figure
    # or a bandwidth typed in the wrong unit lands outside.
    assert 20 <= half * 1e12 / hw.memory_bandwidth <= 700
    assert hw.source.strip() and "price" in hw.sources
    assert hw.confidence in ("high", "medium", "low")


def test_known_dense_figures():
    # NVIDIA H100 SXM datasheet: fp16 tensor 1,979 TFLOPS *with sparsity*, i.e. 989.4 dense; 3.35 TB/s.
    h100 = lr.load_hardware("H100-SXM5-80GB")
    assert h100.peak_flops["fp16"] == pytest.approx(989.4e12, rel=0.01)
    assert h100.memory_bandwidth == pytest.approx(3350e9)
    # GeForce RTX 4090: 165.2 dense fp16 with FP32 accumulate (330.3 with FP16 accumulate).
    assert lr.load_hardware("RTX-4090").peak_flops["fp16"] == pytest.approx(165.2e12, rel=0.01)
    # The LLMRoofline article's H20: 148 TFLOPS fp16, 4 TB/s.
    h20 = lr.load_hardware("H20")
    assert h20.peak_flops["fp16"] == pytest.approx(148e12) and h20.memory_bandwidth == pytest.approx(4000e9)


def test_aliases_are_unique():
    seen: dict[str, str] = {}
    for hw in DEVICES:
        for a in hw.aliases:
            assert a not in seen, f"{a} names both {seen[a]} and {hw.id}"
            seen[a] = hw.id
