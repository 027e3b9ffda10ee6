"""Fleet sizing: how many replicas (and devices) serve a request rate within latency targets.

Per device and layout, a rate sweep of one replica finds the highest rate per replica whose p90
TTFT and p90 TPOT meet the targets; replicas = ceil(rate / that), devices = replicas x GPUs per
replica. The layouts are every tensor-parallel degree and the one `recommend` ranks first (with
pipeline stages or expert parallelism where that is cheaper: a MoE model spread over several
nodes). That one is sized first; a layout whose capacity alone prices it above a fleet found is
not swept. Disaggregated layouts size the two sides apart, as they decouple: prefill instances
by TTFT (M/G/1 wait + prefill + KV transfer, tensor-parallel), decode instances by TPOT (any of
the layouts), every prefill device and degree paired with every decode device and layout; the
cheapest pair wins, so the prefill:decode ratio is chosen, not given. Each answer is checked by
a final estimate of the whole fleet at the offered rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..efficiency import load_calibration
from ..errors import InputError
from ..recommend import Layout, resolve_devices, resolve_prices, tp_choices
from .api import parse_rates, serve

SWEEP = np.geomspace(0.002, 0.999, 40)  # shares of one replica's capacity
BIG = 4096  # instances on the side not being sized (never its bottleneck)
RETRIES = 8  # instances added one at a time when the whole fleet misses a target


@dataclass(frozen=True)
class FleetEntry:
    device: str
    tp: int
    replicas: int
    gpus: int  # per replica (a disaggregated entry: prefill + decode instance GPUs)
    devices_needed: int
    rate_per_replica_req_s: float
    ttft_p90_s: float
    tpot_p90_s: float
    cost_per_hour: float
    cost_per_million_tokens: float
    disaggregated: bool = False
    prefill: dict[str, Any] = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)
    pp: int = 1
    ep: int = 1
    dp: int = 1  # attention replicas: GPUs per replica = tp x dp x pp

    @property
    def layout(self) -> Layout:
        return self.tp, self.pp, self.ep, self.dp

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("device", "tp", "pp", "ep", "dp", "replicas", "gpus", "devices_needed",
                                           "rate_per_replica_req_s", "ttft_p90_s", "tpot_p90_s", "cost_per_hour",
                                           "cost_per_million_tokens", "disaggregated")}
        if self.disaggregated:
            d.update(prefill=self.prefill, decode=self.decode)
        return d


def _limit(rates, ttft, tpot, ttft_slo, tpot_slo) -> float:
    """Highest swept rate whose p90s meet the targets (0 when none does)."""
    ok = np.isfinite(ttft) & np.isfinite(tpot)
    if ttft_slo is not None:
        ok &= ttft <= ttft_slo
    if tpot_slo is not None:
        ok &= tpot <= tpot_slo
    # the first failure ends the run: latencies rise with rate
    bad = np.flatnonzero(~ok)
    upto = bad[0] if bad.size else len(rates)
    return float(rates[upto - 1]) if upto > 0 else 0.0


def _degrees_kw(layout: Layout) -> dict[str, Any]:
    """A layout as serve's keyword arguments."""
    return dict(zip(("tp", "pp", "ep", "dp"), layout, strict=True))


def _gpus(layout: Layout) -> int:
    """GPUs of one instance: tp x pp x dp."""
    tp, pp, _, dp = layout
    return tp * pp * dp


def _usd_per_million(usd_per_hour: float, rate: float, output_len: float) -> float:
    """USD per million output tokens of a fleet costing usd_per_hour at `rate` requests/s."""
    return usd_per_hour / (rate * output_len * 3600) * 1e6


def _capacity(common: dict[str, Any], device: str, layout: Layout, **kw) -> float:
    """Requests/s one replica of the layout carries at most (no latency target)."""
    kw = {**_degrees_kw(layout), **kw}
    return serve(hardware=device, rate=1e-3, **common, **kw).capacity_req_s


def _sweep(common: dict[str, Any], device: str, layout: Layout, ttft_slo, tpot_slo, cap: float | None = None,
           **kw) -> tuple[float, Any]:
    """Highest rate per replica meeting the targets: a geometric sweep up to capacity (`cap`, or
    found first), then a linear one between the last rate that met them and the first that did not."""
    if cap is None:
        cap = _capacity(common, device, layout, **kw)
    kw = {**_degrees_kw(layout), **kw}
    rates = SWEEP * cap
    s = serve(hardware=device, rate=rates, **common, **kw)
    limit = _limit(s.rate, s.percentiles["ttft_p90_s"], s.percentiles["tpot_p90_s"], ttft_slo, tpot_slo)
    above = rates[rates > limit]
    if above.size:
        fine = np.linspace(max(limit, rates[0] / 10), above[0], 41)[1:]
        f = serve(hardware=device, rate=fine, **common, **kw)
        more = _limit(f.rate, f.percentiles["ttft_p90_s"], f.percentiles["tpot_p90_s"], ttft_slo, tpot_slo)
        limit = max(limit, more)
    return limit, s


def _known_capacity(caps: dict[Layout, float | InputError], common: dict[str, Any], device: str,
                    layout: Layout) -> float:
    """_capacity, asked once per layout (an InputError, such as a model that does not fit, too)."""
    if layout not in caps:
        try:
            caps[layout] = _capacity(common, device, layout)
        except InputError as err:
            caps[layout] = err
    found = caps[layout]
    if isinstance(found, InputError):
        raise found
    return found


def _aggregated(common: dict[str, Any], device: str, layout: Layout, cap: float, total: float, usd: float,
                ttft_slo, tpot_slo, sweeps: dict) -> FleetEntry | str:
    """The fleet of replicas of one layout that carries `total` req/s within the targets, checked
    as a whole at that rate, or why there is none. Its sweep is kept in `sweeps`."""
    tp, pp, ep, dp = layout
    limit, s = _sweep(common, device, layout, ttft_slo, tpot_slo, cap=cap)
    sweeps[(device, layout)] = (limit, s)
    if limit <= 0:
        return "misses the latency targets even at a trickle of requests"
    reps = math.ceil(total / limit - 1e-9)
    gpus = _gpus(layout)
    check = serve(hardware=device, rate=total, tp=tp, pp=pp, ep=ep, dp=dp, replicas=reps, **common)
    usd_h = reps * gpus * usd
    return FleetEntry(device, tp, reps, gpus, reps * gpus, total / reps, float(check.percentiles["ttft_p90_s"][0]),
                      float(check.percentiles["tpot_p90_s"][0]), usd_h,
                      _usd_per_million(usd_h, total, common["output_len"]), pp=pp, ep=ep, dp=dp)


def _first_layouts(model: Any, input_len: int, output_len: int, hws: list, *, ttft_slo, tpot_slo, max_gpus,
                   prices, weight_dtype, kv_dtype, calibration, runtime, serving: dict[str, Any]) -> dict[str, Layout]:
    """Per device, the layout `recommend` ranks first: swept first (the likeliest to be the
    cheapest fleet, so that the others can be ruled out by their capacity alone), and, when it has
    pipeline stages or expert or attention-data parallelism, the one layout beyond plain tensor
    parallelism worth a sweep. `recommend` searches every layout with one continuous-batching
    estimate each, in a fraction of one sweep's time; a MoE model that fits nowhere within 8 GPUs
    is widened to wide expert parallelism there."""
    from ..recommend import recommend

    images = {k: serving[k] for k in ("images", "image_size") if k in serving}
    rec = recommend(model, input_len, output_len, devices=hws, ttft_slo=ttft_slo, tpot_slo=tpot_slo,
                    max_gpus=max_gpus, prices=prices, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                    calibration=calibration, runtime=runtime, **images)
    return {c.device: (c.tp, c.pp, c.ep, c.dp) for c in rec.ranking}


def size_fleet(model: Any, input_len: int, output_len: int, rate: float, devices: Any = None, *,
               ttft_slo: float | None = None, tpot_slo: float | None = None, disaggregated: bool = False,
               max_gpus: int | None = None, prices: dict[str, float] | None = None, weight_dtype: Any = None,
               kv_dtype: str | None = None, calibration: Any = "default", runtime: Any = None,
               curves: bool = False, **serving: Any) -> dict[str, Any]:
    """Replicas, devices and cost per device to serve `rate` requests/s within p90 targets.

    Returns {"ranking": [FleetEntry dicts, cheapest per hour first], "excluded": [{device, reason}]}.
    Aggregated entries always; with disaggregated=True also the best prefill/decode pair per decode
    device. Costs: USD per hour of the whole fleet, and per million output tokens at that rate.
    curves=True adds "curves", one per entry, for the request-rate view (`pareto_plot.rate_view_*`):
    the replica's sweep (rate per replica, p90 TTFT and TPOT) and the highest rate per replica (per
    prefill and decode instance when disaggregated) within the targets, from which the devices
    needed at any total rate follow."""
    r = parse_rates(rate)
    if r.size != 1:
        raise InputError("recommend --rate takes one rate (requests per second)")
    total = float(r[0])
    if ttft_slo is None and tpot_slo is None:
        raise InputError("fleet sizing needs a latency target: --ttft-slo and/or --tpot-slo (seconds, p90)")
    hws = resolve_devices(devices)
    price = resolve_prices(prices, hws)
    cal = load_calibration(calibration)
    common = dict(model=model, input_len=input_len, output_len=output_len, weight_dtype=weight_dtype,
                  kv_dtype=kv_dtype, calibration=cal, runtime=runtime, **serving)
    entries: list[FleetEntry] = []
    excluded: list[dict[str, str]] = []
    prefill_sides: list[tuple[str, int, float, float]] = []  # device, tp, rate per instance, USD/h
    decode_sides: list[tuple[str, Layout, float, float]] = []  # device, layout, rate per instance, USD/h
    from ..model import load_model

    m = load_model(model)
    first = _first_layouts(model, input_len, output_len, hws, ttft_slo=ttft_slo, tpot_slo=tpot_slo, max_gpus=max_gpus,
                           prices=prices, weight_dtype=weight_dtype, kv_dtype=kv_dtype, calibration=cal,
                           runtime=runtime, serving=serving)
    sweeps: dict[tuple[str, Layout], tuple[float, Any]] = {}
    limits: dict[tuple[str, Layout, str], float] = {}
    for hw in hws:
        usd = price.get(hw.id, hw.price_per_hour_usd)
        reason = "no tensor-parallel degree fits"
        layouts = [(tp, 1, 1, 1) for tp in tp_choices(m, hw, 8 if max_gpus is None else max_gpus)]
        layouts += [first[hw.id]] if hw.id in first and first[hw.id] not in layouts else []
        caps: dict[Layout, float | InputError] = {}
        # The layout recommend ranks first is sized first: likely the cheapest fleet, it bounds the
        # others. Replicas are sized below capacity, so ceil(rate / capacity) replicas of a layout
        # cost at least that bound; a layout whose bound cannot beat a fleet already sized (the
        # cheapest wins, the earlier layout on a tie) is not swept.
        done: dict[Layout, FleetEntry | str] = {}
        lead = first.get(hw.id)
        if lead is not None:
            try:
                done[lead] = _aggregated(common, hw.id, lead, _known_capacity(caps, common, hw.id, lead), total, usd,
                                         ttft_slo, tpot_slo, sweeps)
            except InputError:
                pass
        bars = [(e.cost_per_hour, layouts.index(k)) for k, e in done.items() if isinstance(e, FleetEntry)]
        best: FleetEntry | None = None
        for i, layout in enumerate(layouts):
            tp, pp, ep, dp = layout
            try:
                cap = _known_capacity(caps, common, hw.id, layout)
                bound = math.ceil(total / cap - 1e-9) * _gpus(layout) * usd
                known = [*bars, *([(best.cost_per_hour, -1)] if best is not None else [])]
                if layout not in done and not any((bound, i) > bar for bar in known):
                    done[layout] = _aggregated(common, hw.id, layout, cap, total, usd, ttft_slo, tpot_slo, sweeps)
            except InputError as err:
                reason = str(err)
                continue
            if disaggregated:  # prefill sides tensor-parallel; decode sides any layout
                plain = layout == (tp, 1, 1, 1)
                beside = tp if plain else max(t for t, *_ in layouts)  # a stand-in prefill instance while sizing decode
                try:
                    if plain:
                        lp, _ = _sweep(common, hw.id, layout, ttft_slo, None, prefill_hardware=hw.id, prefill_tp=tp,
                                       replicas=BIG)
                        if lp > 0:
                            prefill_sides.append((hw.id, tp, lp, usd * tp))
                            limits[(hw.id, (tp, 1, 1, 1), "prefill")] = lp
                    ld, _ = _sweep(common, hw.id, layout, None, tpot_slo, prefill_hardware=hw.id, prefill_tp=beside,
                                   prefill_count=BIG)
                    if ld > 0:
                        decode_sides.append((hw.id, layout, ld, usd * _gpus(layout)))
                        limits[(hw.id, layout, "decode")] = ld
                except InputError:
                    pass
            e = done.get(layout)
            if isinstance(e, str):
                reason = e
            elif e is not None and (best is None or e.cost_per_hour < best.cost_per_hour):
                best = e
        if best is None:
            excluded.append({"device": hw.id, "reason": reason})
        else:
            entries.append(best)
    if disaggregated:
        for dev, dlayout, drate, dusd in decode_sides:
            dtp, dpp, dep_, ddp = dlayout
            dgpus = _gpus(dlayout)
            pick = None
            for pdev, ptp, prate, pusd in prefill_sides:
                n_p, n_d = math.ceil(total / prate - 1e-9), math.ceil(total / drate - 1e-9)
                cost = n_p * pusd + n_d * dusd
                if pick is None or cost < pick[0]:
                    pick = (cost, pdev, ptp, n_p, n_d, pusd)
            if pick is None:
                continue
            cost, pdev, ptp, n_p, n_d, pusd = pick
            # The sides were sized apart (prefill swept beside its own device): the whole fleet may
            # differ a little (the KV link, the decode-slot wait). Add an instance where it misses.
            for _ in range(RETRIES):
                check = serve(hardware=dev, rate=total, tp=dtp, pp=dpp, ep=dep_, dp=ddp, replicas=n_d,
                              prefill_hardware=pdev, prefill_tp=ptp, prefill_count=n_p, **common)
                ttft, tpot = check.percentiles["ttft_p90_s"][0], check.percentiles["tpot_p90_s"][0]
                slow_ttft = not np.isfinite(ttft) or (ttft_slo is not None and ttft > ttft_slo)
                slow_tpot = not np.isfinite(tpot) or (tpot_slo is not None and tpot > tpot_slo)
                if not (slow_ttft or slow_tpot):
                    break
                n_p += int(slow_ttft and not slow_tpot)
                n_d += int(slow_tpot)
            else:
                continue
            cost = n_p * pusd + n_d * dusd
            decode = {"device": dev, "tp": dtp, "pp": dpp, "ep": dep_, "dp": ddp, "count": n_d,
                      "rate_per_instance_req_s": total / n_d}
            e = FleetEntry(dev, dtp, n_d, ptp + dgpus, n_p * ptp + n_d * dgpus, total / n_d,
                           float(check.percentiles["ttft_p90_s"][0]), float(check.percentiles["tpot_p90_s"][0]),
                           cost, _usd_per_million(cost, total, output_len), disaggregated=True,
                           prefill={"device": pdev, "tp": ptp, "count": n_p, "rate_per_instance_req_s": total / n_p},
                           decode=decode, pp=dpp, ep=dep_, dp=ddp)
            if not any(x.disaggregated and x.device == dev and x.cost_per_hour <= e.cost_per_hour for x in entries):
                entries = [x for x in entries if not (x.disaggregated and x.device == dev)] + [e]
    entries.sort(key=lambda e: (e.cost_per_hour, e.devices_needed, e.device))
    out = {"rate": total, "input_len": input_len, "output_len": output_len, "ttft_slo": ttft_slo,
           "tpot_slo": tpot_slo, "percentile": 90, "ranking": [e.to_dict() for e in entries], "excluded": excluded}
    if serving.get("images") and m.vision is not None:  # vision-language models: images per request
        out.update(images=int(serving["images"]),
                   image_tokens=int(serving["images"]) * m.vision.layout(serving.get("image_size")).tokens)
    if curves:
        out["curves"] = [_curve(e, sweeps, limits, price, hws) for e in entries]
    return out


def _curve(e: FleetEntry, sweeps: dict, limits: dict, price: dict[str, float], hws: list) -> dict[str, Any]:
    """One entry's data for the request-rate view (see size_fleet)."""
    usd = {hw.id: price.get(hw.id, hw.price_per_hour_usd) for hw in hws}
    if e.disaggregated:
        p, d = e.prefill, e.decode
        return {"device": e.device, "disaggregated": True,
                "label": f"{p['device']} tp{p['tp']} → {d['device']} {_degrees(d)}",
                "sides": [{"gpus": p["tp"], "usd_per_gpu_hour": usd[p["device"]],
                           "limit_req_s": limits[(p["device"], (p["tp"], 1, 1, 1), "prefill")]},
                          {"gpus": d["tp"] * d["pp"] * d["dp"], "usd_per_gpu_hour": usd[d["device"]],
                           "limit_req_s": limits[(d["device"], e.layout, "decode")]}]}
    limit, s = sweeps[(e.device, e.layout)]
    return {"device": e.device, "disaggregated": False, "label": f"{e.device} {_degrees(e.to_dict())}",
            "sides": [{"gpus": e.gpus, "usd_per_gpu_hour": usd[e.device], "limit_req_s": limit}],
            "rate": s.rate.tolist(), "capacity_req_s": s.capacity_req_s,
            "ttft_p90_s": [None if not np.isfinite(v) else float(v) for v in s.percentiles["ttft_p90_s"]],
            "tpot_p90_s": [None if not np.isfinite(v) else float(v) for v in s.percentiles["tpot_p90_s"]]}


def devices_needed(curve: dict[str, Any], rate) -> np.ndarray:
    """Devices an entry's layout needs to carry each total rate within the targets: per side,
    ceil(rate / highest rate per instance) instances x GPUs per instance.

    >>> devices_needed({"sides": [{"gpus": 2, "limit_req_s": 3.0, "usd_per_gpu_hour": 1.0}]}, [1, 3, 3.5]).tolist()
    [2, 2, 4]
    """
    r = np.asarray(rate, dtype=float)
    return sum(np.ceil(r / side["limit_req_s"] - 1e-9).astype(int) * side["gpus"] for side in curve["sides"])


def fleet_cost_per_million(curve: dict[str, Any], rate, output_len: float) -> np.ndarray:
    """USD per million output tokens of that fleet at each total rate (it is sized in whole instances)."""
    r = np.asarray(rate, dtype=float)
    usd_h = sum(np.ceil(r / side["limit_req_s"] - 1e-9) * side["gpus"] * side["usd_per_gpu_hour"]
                for side in curve["sides"])
    return usd_h / (r * output_len * 3600) * 1e6


def layout_text(entry: dict[str, Any]) -> str:
    """One fleet entry's layout in words: '3x tp2', '2x tp1 ep16 dp16' or 'prefill 1x H800 tp4 + decode 2x tp8'."""
    if entry["disaggregated"]:
        p, d = entry["prefill"], entry["decode"]
        return f"prefill {p['count']}x {p['device']} tp{p['tp']} + decode {d['count']}x {_degrees(d)}"
    return f"{entry['replicas']}x {_degrees(entry)}"


def _degrees(entry: dict[str, Any]) -> str:
    """'tp8', or with pipeline, expert or attention-data parallelism 'tp1 ep16 dp16'."""
    return " ".join([f"tp{entry['tp']}"] + [f"{k}{entry[k]}" for k in ("pp", "ep", "dp") if entry.get(k, 1) != 1])
