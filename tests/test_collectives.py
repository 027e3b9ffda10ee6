"""Hierarchical collectives: each collective at each level against numbers derived on paper,
the flat ring kept inside one scale-up domain, and the laws that hold across the boundary.

Plain rates (every achieved fraction 1) unless a test says otherwise. H100 SXM: NVLink4 900 GB/s
both ways = 450e9 B/s per direction, 8 GPUs per domain (HGX); scale-out InfiniBand NDR 400 Gb/s
= 50e9 B/s per GPU, 4 us per message (DGX H100 datasheet; NCCL's network hop latency).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmroofline import load_hardware
from llmroofline.collectives import (
    Links,
    all_gather_time,
    all_reduce_time,
    all_to_all_time,
    boundaries_across,
    collective_time,
    layout,
    links,
    p2p_time,
    reduce_scatter_time,
)
from llmroofline.efficiency import Efficiency, load_calibration
from llmroofline.errors import InputError
from llmroofline.estimate import decode_step, estimate, make_deployment
from llmroofline.estimate import p2p_time as pipeline_p2p_time
from llmroofline.hardware import SCALE_OUT_DEFAULT_GBIT_S, hardware_from_dict
from llmroofline.operators import COMM, Operator
from llmroofline.roofline import operator_times

UP, NIC, NIC_LAT = 450e9, 50e9, 4e-6
MB16 = 16e6


def h100_links(up_latency_s: float = 0.0) -> Links:
    return links(load_hardware("H100-SXM5-80GB"), Efficiency(comm_latency_s=up_latency_s))


def test_h100_links_from_the_catalog():
    lk = h100_links()
    assert (lk.domain, lk.up_bandwidth, lk.out_bandwidth, lk.out_latency_s) == (8, UP, NIC, pytest.approx(NIC_LAT))
    assert not lk.shared_link


def test_layout_spreads_a_group_evenly():
    assert layout(8, 8) == (1, 8.0)
    assert layout(16, 8) == (2, 8.0)
    assert layout(12, 8) == (2, 6.0)  # 6 + 6, not 8 + 4
    assert layout(3, 8) == (1, 3.0)


# ---- all-reduce ----------------------------------------------------------------------------

def test_all_reduce_inside_one_domain_is_the_flat_ring():
    # 16 MB over 8 H100: each GPU sends 2 x 7/8 x 16 MB = 28 MB on NVLink: 28e6 / 450e9 = 62.22 us,
    # plus the fixed cost of one all-reduce (10 us here); no NIC message.
    t = all_reduce_time(MB16, 8, h100_links(up_latency_s=10e-6))
    assert t == pytest.approx(28e6 / 450e9 + 10e-6, rel=1e-12)


def test_all_reduce_of_16mb_over_two_hgx_nodes():
    # 16 GPUs = 2 domains of 8. Reduce-scatter inside: 7/8 x 16 MB = 14 MB on NVLink; each GPU then
    # all-reduces its 2 MB shard with its 1 peer in the other node: 2 x 1/2 x 2 MB = 2 MB on its NIC
    # (8 NICs at once); all-gather inside: 14 MB on NVLink.
    # NVLink: 28e6 / 450e9 = 62.222 us; NIC: 2e6 / 50e9 = 40 us; 2 NIC messages x 4 us = 8 us.
    t = all_reduce_time(MB16, 16, h100_links())
    assert t == pytest.approx(62.2222222e-6 + 40e-6 + 8e-6, rel=1e-6)
    assert t == pytest.approx(110.2222222e-6, rel=1e-6)
    # The flat ring on NVLink (what was charged before): 2 x 15/16 x 16 MB / 450e9 = 66.7 us.
    assert t > 2 * 15 / 16 * MB16 / UP


def test_all_reduce_over_four_nodes():
    # 32 GPUs = 4 domains of 8: NVLink 28 MB (62.22 us); the 2 MB shard rings over 4 peers:
    # 2 x 3/4 x 2 MB = 3 MB on the NIC = 60 us; 2 x 3 = 6 NIC messages = 24 us.
    assert all_reduce_time(MB16, 32, h100_links()) == pytest.approx(62.2222222e-6 + 60e-6 + 24e-6, rel=1e-6)


def test_all_reduce_with_one_device_per_domain_is_a_ring_on_the_nics():
    # Domains of 1: no scale-up step; 4 devices ring 2 x 3/4 x 16 MB = 24 MB over 50 GB/s NICs.
    lk = Links(domain=1, up_bandwidth=UP, out_bandwidth=NIC, up_latency_s=0.0, out_latency_s=NIC_LAT)
    assert all_reduce_time(MB16, 4, lk) == pytest.approx(24e6 / NIC + 6 * NIC_LAT, rel=1e-12)


# ---- all-gather and reduce-scatter --------------------------------------------------------

def test_all_gather_inside_and_across():
    # Inside (8 GPUs): each receives 7/8 of the 16 MB result = 14 MB on NVLink = 31.11 us.
    assert all_gather_time(MB16, 8, h100_links()) == pytest.approx(14e6 / UP, rel=1e-12)
    # 32 GPUs, 4 domains: first the 0.5 MB shards across domains, each GPU gathering 3 peers'
    # shards = 1.5 MB on its NIC (30 us, 3 messages = 12 us), then 7/8 of 16 MB inside (31.11 us).
    t = all_gather_time(MB16, 32, h100_links())
    assert t == pytest.approx(14e6 / UP + 1.5e6 / NIC + 3 * NIC_LAT, rel=1e-12)
    assert reduce_scatter_time(MB16, 32, h100_links()) == t  # the same traffic, reversed


def test_all_reduce_is_a_reduce_scatter_and_an_all_gather():
    lk = h100_links()
    for n in (2, 8, 16, 24, 64):
        shared_latency = lk.up_latency_s  # one fixed cost, not two
        assert all_reduce_time(MB16, n, lk) == pytest.approx(
            reduce_scatter_time(MB16, n, lk) + all_gather_time(MB16, n, lk) - shared_latency, rel=1e-12)


# ---- all-to-all ----------------------------------------------------------------------------

def test_all_to_all_inside_one_domain_is_the_flat_exchange():
    # 16 MB held per GPU over 8: 7/8 leaves the GPU on NVLink: 14e6 / 450e9.
    assert all_to_all_time(MB16, 8, h100_links()) == pytest.approx(14e6 / UP, rel=1e-12)


def test_all_to_all_over_four_hgx_nodes_is_bound_by_the_nics():
    # 32 GPUs: 0.5 MB to each peer. 7 peers inside: 3.5 MB on NVLink (7.8 us); 24 peers outside:
    # 12 MB on the NIC (240 us), at the same time: the NIC bounds; one NIC message (4 us).
    t = all_to_all_time(MB16, 32, h100_links())
    assert t == pytest.approx(12e6 / NIC + NIC_LAT, rel=1e-12)
    assert t == pytest.approx(244e-6, rel=1e-12)


def test_all_to_all_on_pcie_cards_shares_the_link():
    # L40S: PCIe4 64 GB/s both ways = 32e9 B/s per direction, 8 per domain; NIC 200 Gb/s RoCE =
    # 25e9 B/s, 5 us (NVIDIA Enterprise RA 2-8-5-200). 16 cards, 1 MB to each peer: 7 MB inside
    # (218.75 us) and then 8 MB to the other node (320 us) over the same PCIe link: they add.
    lk = links(load_hardware("L40S"), Efficiency())
    assert lk.shared_link
    assert all_to_all_time(MB16, 16, lk) == pytest.approx(7e6 / 32e9 + 8e6 / 25e9 + 5e-6, rel=1e-12)


# ---- p2p -----------------------------------------------------------------------------------

def test_p2p_inside_and_across():
    lk = h100_links(up_latency_s=3e-6)
    assert p2p_time(1e6, lk, across=False) == pytest.approx(1e6 / UP + 3e-6, rel=1e-12)  # 2.22 + 3 us
    assert p2p_time(1e6, lk, across=True) == pytest.approx(1e6 / NIC + 3e-6 + NIC_LAT, rel=1e-12)  # 20 + 7 us


def test_pipeline_boundaries_that_cross_a_domain():
    assert boundaries_across(2, 8, 8) == 1  # two HGX nodes
    assert boundaries_across(4, 4, 8) == 1  # stages 0-1 in node 0, 2-3 in node 1
    assert boundaries_across(4, 2, 8) == 0  # all 8 GPUs in one node
    assert boundaries_across(3, 16, 8) == 2  # every stage is a node pair
    assert boundaries_across(4, 6, 8) == 3  # 6-GPU stages straddle the 8-GPU nodes
    assert boundaries_across(1, 64, 8) == 0


def test_pipeline_hop_across_nodes_goes_over_the_nic():
    # Llama 3.1 405B, tp 8 pp 2 on H100: 2 nodes, the one hand-over crosses InfiniBand. 1000 tokens
    # x 16384 x 2 B = 32.768 MB per hop: 32.768e6 / 50e9 = 655.36 us + 4 us (plain: no fixed cost).
    eff = Efficiency()
    across = make_deployment("llama3.1-405b", "H100-SXM5-80GB", tp=8, pp=2)
    assert float(pipeline_p2p_time(across, eff, 1000)) == pytest.approx(655.36e-6 + 4e-6, rel=1e-12)
    # tp 4 pp 2: both stages in one node, NVLink: 32.768e6 / 450e9 = 72.8 us.
    inside = make_deployment("llama3.1-405b", "H100-SXM5-80GB", tp=4, pp=2)
    assert float(pipeline_p2p_time(inside, eff, 1000)) == pytest.approx(32.768e6 / UP, rel=1e-12)


# ---- the cap and the defaults --------------------------------------------------------------

def _device(**scale_out):
    data = dict(id="BOX", name="box", vendor="x", family="x", aliases=[], release_year=2024, memory_gb=24,
                memory_type="GDDR6", memory_bandwidth_gbps=1000, peak_tflops={"fp16": 100}, onchip_buffer_mb=10,
                interconnect={"kind": "PCIe3", "bandwidth_gbps": 32, "max_devices": 4}, tdp_w=300,
                price_per_hour_usd=1, confidence="low", notes="", source="test", sources={})
    if scale_out:
        data["scale_out"] = scale_out
    return hardware_from_dict(data)


def test_traffic_leaves_a_domain_no_faster_than_the_device_link():
    # PCIe3 x16: 16e9 B/s per direction; a 400 Gb/s NIC (50e9) behind it still sees 16e9.
    hw = _device(kind="RoCE", bandwidth_gbit_s=400, latency_us=5, source="test")
    assert links(hw, Efficiency()).out_bandwidth == 16e9


def test_a_device_without_scale_out_gets_the_stated_default():
    hw = _device()
    assert hw.scale_out_default and hw.scale_out_bandwidth == SCALE_OUT_DEFAULT_GBIT_S * 1e9 / 8
    none = _device(kind="none", source="no reference system")
    assert none.scale_out_default and none.scale_out_source == "no reference system"
    assert hw.to_dict()["scale_out"]["default"] is True


@pytest.mark.parametrize("block, match", [
    ({"kind": "RoCE", "source": "x"}, "needs bandwidth_gbit_s, latency_us"),
    ({"kind": "RoCE", "bandwidth_gbit_s": 400, "latency_us": 5}, "kind and source"),
    ({"kind": "RoCE", "bandwidth_gbit_s": 4e6, "latency_us": 5, "source": "x"}, "implausible.*Gb/s"),
    ({"kind": "RoCE", "bandwidth_gbit_s": 400, "latency_us": -1, "source": "x"}, "latency_us"),
    ({"kind": "none", "bandwidth_gbit_s": 400, "source": "x"}, "kind none"),
    ({"kind": "RoCE", "bandwidth_gbit_s": 400, "latency_us": 5, "source": "x", "default": True}, "default is true"),
    ({"kind": "RoCE", "bandwidth_gbit_s": 400, "latency_us": 5, "source": "x", "mtu": 9000}, "kind and source"),
])
def test_bad_scale_out_blocks_are_named(block, match):
    with pytest.raises(InputError, match=match):
        _device(**block)


def test_the_json_view_of_a_device_reads_back():
    from llmroofline.hardware import list_hardware

    for hw in list_hardware():
        d = {k: v for k, v in hw.to_dict().items() if k != "ridge_flops_per_byte"}
        assert hardware_from_dict(d) == hw, hw.id


def test_every_bundled_device_states_its_network_with_a_source():
    from llmroofline.hardware import list_hardware

    for hw in list_hardware():
        assert hw.scale_out_source.strip(), hw.id
        assert hw.scale_out_default == (hw.scale_out_kind == "none"), hw.id


def test_calibrated_nic_fraction_comes_from_the_priors():
    # InfiniBand 0.92 (nccl-tests: 46-48 GB/s of a 50 GB/s NDR NIC) times the shared realization.
    cal = load_calibration("default")
    eff = cal.for_device(load_hardware("H100-SXM5-80GB"))
    assert eff.nic_bandwidth == pytest.approx(min(0.92 * cal.realization.get("comm_bandwidth", 1.0), 1.0))


# ---- invariants ----------------------------------------------------------------------------

def _old_flat(pattern, nbytes, n, hw, eff):
    """What a COMM operator cost before scale-out networks: a flat ring on the scale-up link."""
    share = 2.0 if pattern == "all_reduce" else 1.0
    ring = share * (n - 1.0) / max(float(n), 1.0)
    return ring * np.asarray(nbytes, dtype=float) / (hw.interconnect_bandwidth * eff.comm_bandwidth) + eff.comm_latency_s


@given(n=st.integers(1, 8), nbytes=st.floats(0, 1e9), pattern=st.sampled_from(["all_reduce", "all_to_all"]),
       latency=st.floats(0, 1e-4), frac=st.floats(0.05, 1))
def test_inside_one_domain_the_answer_is_the_old_flat_ring_exactly(n, nbytes, pattern, latency, frac):
    hw = load_hardware("H100-SXM5-80GB")
    eff = Efficiency(comm_latency_s=latency, comm_bandwidth=frac)
    assert collective_time(pattern, nbytes, n, links(hw, eff)) == _old_flat(pattern, nbytes, n, hw, eff)


link_rates = st.tuples(st.floats(1e9, 1e12), st.floats(0.01, 1.0), st.integers(1, 128),
                       st.floats(0, 1e-5), st.floats(0, 1e-4))


@given(rates=link_rates, nbytes=st.floats(1, 1e9), pattern=st.sampled_from(["all_reduce", "all_gather"]),
       k=st.integers(1, 16))
def test_time_grows_with_the_domains_a_collective_spans(rates, nbytes, pattern, k):
    up, ratio, d, up_lat, out_lat = rates
    lk = Links(domain=d, up_bandwidth=up, out_bandwidth=up * ratio, up_latency_s=up_lat, out_latency_s=out_lat)
    t = [collective_time(pattern, nbytes, n, lk) for n in (k * d, (k + 1) * d)]
    assert t[1] >= t[0] * (1 - 1e-12)
    # Any group larger than the domain costs at least what the whole domain costs.
    assert collective_time(pattern, nbytes, k * d + 1, lk) >= collective_time(pattern, nbytes, d, lk) * (1 - 1e-12)


@given(rates=link_rates, nbytes=st.floats(1, 1e9), extra=st.integers(1, 1000), shared=st.booleans())
def test_all_to_all_across_the_boundary_never_gets_cheaper(rates, nbytes, extra, shared):
    up, ratio, d, up_lat, out_lat = rates
    d = max(d, 2)
    # Concurrent levels: at least half the bytes leave over the NIC once a second domain joins,
    # against (d-1)/d inside one domain, so this holds where NIC <= d / (2(d-1)) x scale-up.
    lk = Links(domain=d, up_bandwidth=up, out_bandwidth=up * ratio * (1 if shared else d / (2 * (d - 1))),
               up_latency_s=up_lat, out_latency_s=out_lat, shared_link=shared)
    assert all_to_all_time(nbytes, lk.domain + extra, lk) >= all_to_all_time(nbytes, lk.domain, lk) * (1 - 1e-12)


def test_bundled_devices_meet_the_condition_of_that_law():
    from llmroofline.hardware import list_hardware

    cal = load_calibration("default")
    for hw in list_hardware():
        lk = links(hw, cal.for_device(hw))
        d = max(lk.domain, 2)
        assert lk.out_bandwidth <= lk.up_bandwidth * d / (2 * (d - 1)) or lk.shared_link, hw.id


# ---- the roofline and the estimate --------------------------------------------------------

def _comm_op(pattern, devices, nbytes):
    z = np.zeros(())
    return Operator(name="x/comm", kind=COMM, precision="fp16", count=1, flops=z, weight_bytes=z, act_read_bytes=z,
                    act_write_bytes=z, kv_read_bytes=z, kv_write_bytes=z, comm_bytes=np.asarray(nbytes),
                    comm_devices=devices, comm_pattern=pattern)


@pytest.mark.parametrize("pattern", ["all_reduce", "all_gather", "reduce_scatter", "all_to_all"])
def test_comm_operators_are_priced_hierarchically(pattern):
    hw, eff = load_hardware("H100-SXM5-80GB"), Efficiency()
    *_, comm = operator_times(_comm_op(pattern, 16, MB16), hw, eff)
    assert float(comm) == collective_time(pattern, MB16, 16, links(hw, eff))


def test_unknown_pattern_is_an_error():
    with pytest.raises(ValueError, match="all_reduce"):
        collective_time("broadcast", MB16, 8, h100_links())


def _comm_per_decode_step(tp):
    t = decode_step("llama3.1-405b", "H100-SXM5-80GB", 1, 1024, tp=tp, calibration="default")
    return float((t.counts[:, None] * t.comm_s.reshape(len(t.counts), -1)).sum())


def test_tp_beyond_the_node_costs_more_communication():
    # 126 layers x 2 all-reduces of one token's 16384 x 2 B: latency-bound at batch 1; each
    # all-reduce across 2 nodes adds 2 NIC messages (8 us), across 4 nodes 6 (24 us).
    c8, c16, c32 = (_comm_per_decode_step(tp) for tp in (8, 16, 32))
    assert c8 < c16 < c32
    assert c16 - c8 == pytest.approx(252 * 8e-6, rel=0.05)


def test_warnings_name_the_link_crossed():
    r = estimate("llama3.1-405b", "H100-SXM5-80GB", tp=16)
    assert any("tp = 16 spans 2 scale-up domains" in w and "InfiniBand NDR at 400 Gb/s" in w for w in r.warnings)
    pp = estimate("llama3.1-405b", "H100-SXM5-80GB", tp=8, pp=2)
    assert any("pp = 2" in w and "1 of 1 stage hand-overs cross InfiniBand NDR" in w for w in pp.warnings)
    assert not any("spans" in w for w in estimate("llama3.1-405b", "H100-SXM5-80GB", tp=4, pp=2).warnings)
    # DeepSeek-V3 with ep 32 over tp 8: the all-to-all spans 4 nodes; 24 of 32 peers are outside.
    ep = estimate("deepseek-v3", "H200-SXM-141GB", tp=8, ep=32)
    assert any("all-to-all over ep = 32" in w and "0.75 of its bytes cross InfiniBand NDR" in w for w in ep.warnings)
    # A card that states no network: the default is named.
    rtx = estimate("llama2-7b", "RTX-4090", tp=16)
    assert any("assumed 100 Gb/s Ethernet" in w for w in rtx.warnings)


def _cli(*args):
    from typer.testing import CliRunner

    from llmroofline.cli import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_cli_tp16_warns_and_costs_more_communication_than_tp8():
    d = _cli("estimate", "--model", "llama3.1-405b", "--hardware", "h100", "--tp", "16", "--json")
    assert any("crosses domains on InfiniBand NDR" in w for w in d["warnings"])
    comm = {}
    for tp in ("8", "16"):
        ops = _cli("ops", "--model", "llama3.1-405b", "--hardware", "h100", "--phase", "decode", "--batch", "1",
                   "--seq", "1024", "--tp", tp, "--json")["operators"]
        comm[tp] = sum(o["count"] * o["time_s"] for o in ops if o["kind"] == "comm")
    assert comm["16"] > comm["8"]


@given(stages=st.integers(1, 64), per_stage=st.integers(1, 64), domain=st.integers(1, 72))
def test_boundaries_across_counts_hand_overs_between_domains(stages, per_stage, domain):
    # Explicitly: the devices of stages i-1 and i, and whether they all sit in one domain.
    def domains(stage):
        return {dev // domain for dev in range(stage * per_stage, (stage + 1) * per_stage)}

    expected = sum(len(domains(i - 1) | domains(i)) > 1 for i in range(1, stages))
    assert boundaries_across(stages, per_stage, domain) == expected
