"""``/metrics`` for Prometheus (prometheus-client): built at each scrape from the latest
snapshot, plus one histogram fed as order updates arrive.

Names follow Prometheus's conventions: a ``mytrading_`` prefix, base units in the name
(``_seconds``, ``_bytes``, ``_rupees``, ``_ratio``), ``_total`` on counters. Counters come
from the daemons' own running counts, so a daemon that restarts starts its counters
again, which Prometheus's ``rate()`` reads as a reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _g(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"mytrading_{name}", doc, labels=labels)


def _c(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"mytrading_{name}", doc, labels=labels)


class StackCollector(Collector):
    def __init__(self, snap: Callable[[], dict[str, Any]]) -> None:
        self._snap = snap

    def collect(self) -> Iterator[Any]:
        s = self._snap()
        if not s:
            return
        yield from self._daemons(s)
        yield from self._trading(s)

    def _daemons(self, s: dict[str, Any]) -> Iterator[Any]:
        up = _g("daemon_up", "1 while the daemon's heartbeats arrive", ["daemon"])
        age = _g("heartbeat_age_seconds", "Time since the daemon's last heartbeat", ["daemon"])
        msgs_in = _c("messages_received", "Messages the daemon read", ["daemon"])
        msgs_out = _c("messages_sent", "Messages the daemon sent", ["daemon"])
        errors = _c("errors", "Errors the daemon counted (and survived)", ["daemon"])
        gaps = _c("sequence_gaps", "Messages the daemon found missing", ["daemon"])
        lat = _g(
            "hop_latency_seconds",
            "Latency of the hop into the daemon (bus send to handling), by quantile",
            ["daemon", "quantile"],
        )
        cpu = _g("process_cpu_ratio", "Share of one core the process used", ["daemon"])
        rss = _g("process_resident_memory_bytes", "Resident memory", ["daemon"])
        fds = _g("process_open_fds", "Open file descriptors, sockets included", ["daemon"])
        lag = _g("event_loop_lag_max_seconds", "Worst lateness of the loop's timers", ["daemon"])
        gc_max = _g("gc_pause_max_seconds", "Longest garbage-collection pause", ["daemon"])
        grow = _g("process_memory_growing", "1 if RSS grew steadily for an hour", ["daemon"])
        for d in s["daemons"]:
            n = [d["name"]]
            up.add_metric(n, 1.0 if d["up"] else 0.0)
            if "pid" not in d:
                continue
            age.add_metric(n, d["age_s"])
            msgs_in.add_metric(n, d["msgs_in"])
            msgs_out.add_metric(n, d["msgs_out"])
            errors.add_metric(n, d["errors"])
            gaps.add_metric(n, d["gaps"])
            lat.add_metric([d["name"], "0.5"], d["lat_p50_us"] / 1e6)
            lat.add_metric([d["name"], "0.99"], d["lat_p99_us"] / 1e6)
            h = d.get("health") or {}
            if h:
                cpu.add_metric(n, h.get("cpu_pct", 0.0) / 100)
                rss.add_metric(n, h.get("rss_mb", 0.0) * 2**20)
                fds.add_metric(n, h.get("fds", 0))
                lag.add_metric(n, h.get("loop_lag_max_ms", 0.0) / 1000)
                gc_max.add_metric(n, h.get("gc_pause_max_ms", 0.0) / 1000)
                grow.add_metric(n, 1.0 if h.get("rss_growing") else 0.0)
        yield from (up, age, msgs_in, msgs_out, errors, gaps, lat, cpu, rss, fds, lag, gc_max, grow)

    def _time(self, feed: dict[str, Any]) -> Iterator[Any]:
        """The feed's watch on time (``feed/timewatch.py``, ``domain/bars.py``)."""
        lag = _g(
            "feed_lag_seconds",
            "Tick arrival less its stamp over the last minute, by source and quantile",
            ["source", "quantile"],
        )
        for source, d in sorted((feed.get("lag") or {}).items()):
            lag.add_metric([source, "0.5"], d.get("p50_ms", 0.0) / 1000)
            lag.add_metric([source, "0.99"], d.get("p99_ms", 0.0) / 1000)
        off = _g("clock_offset_seconds", "The broker's clock less this host's", [])
        if feed.get("clock_offset_s") is not None:
            off.add_metric([], feed["clock_offset_s"])
        late = _c("late_ticks", "Ticks that came after their bar was handed out", [])
        late.add_metric([], feed.get("late_ticks", 0))
        by_clock = _c("bars_closed_by_clock", "Bars the clock closed (instrument quiet)", [])
        by_clock.add_metric([], feed.get("bars_by_clock", 0))
        yield from (lag, off, late, by_clock)

    def _trading(self, s: dict[str, Any]) -> Iterator[Any]:
        feed = s["feed"]
        ticks = _c("ticks", "Ticks the feed published", [])
        ticks.add_metric([], feed.get("ticks", 0))
        bars = _c("bars", "One-minute bars the feed published", [])
        bars.add_metric([], feed.get("bars", 0))
        cov = _g("feed_coverage_ratio", "Share of subscribed symbols quoted within 5 s", [])
        parts = str(feed.get("coverage", "")).split(" ", 1)[0].split("/")
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]):
            cov.add_metric([], int(parts[0]) / int(parts[1]))
        yield from self._time(feed)
        risk = s["risk"]
        intents = _c("intents", "Intents risk decided on (approved or rejected)", [])
        approved = _c("risk_approvals", "Intents risk approved", [])
        rejected = _c("risk_rejections", "Intents risk rejected, by rule", ["reason"])
        approved.add_metric([], risk.get("approved", 0))
        for reason, n in sorted(risk.get("rejected", {}).items()):
            rejected.add_metric([reason], n)
        intents.add_metric([], risk.get("approved", 0) + sum(risk.get("rejected", {}).values()))
        orders = _c("orders", "Order state changes seen, by the state reached", ["state"])
        for state, n in sorted(s["orders"].items()):
            orders.add_metric([state], n)
        fills = _c("fills", "Fills seen", [])
        fills.add_metric([], s["fills"])
        unknown = _g("orders_unknown", "Orders whose state the broker would not tell", [])
        unknown.add_metric([], len(s["unknown_orders"]))
        pnl = _g("strategy_pnl_rupees", "P&L today per strategy", ["strategy", "kind"])
        for st in s["strategies"]:
            pnl.add_metric([st["name"], "gross"], st["pnl_gross"] or 0.0)
            for kind in ("net", "realized", "unrealized", "charges"):
                if st.get(kind if kind != "net" else "pnl_net") is not None:
                    pnl.add_metric([st["name"], kind], st[kind if kind != "net" else "pnl_net"])
        greek = _g(
            "strategy_greek",
            "Greeks per strategy and underlying: delta (units), gamma (per point), theta "
            "(rupees a day), vega (rupees per volatility point)",
            ["strategy", "underlying", "greek"],
        )
        stack = _g(
            "stack_greek", "The stack's Greeks per underlying (as above)", ["underlying", "greek"]
        )
        totals: dict[tuple[str, str], float] = {}
        for st in s["strategies"]:
            for und, g in sorted((st.get("greeks") or {}).items()):
                for k in ("delta", "gamma", "theta", "vega"):
                    greek.add_metric([st["name"], und, k], g.get(k, 0.0))
                    totals[(und, k)] = totals.get((und, k), 0.0) + g.get(k, 0.0)
        for (und, k), v in sorted(totals.items()):
            stack.add_metric([und, k], v)
        margin = _g("margin_used_rupees", "Margin the broker reports as used", ["account"])
        avail = _g("margin_available_rupees", "Margin the broker reports as available", ["account"])
        for acct, f in sorted(s["funds"].items()):
            margin.add_metric([acct], f["utilised"])
            avail.add_metric([acct], f["available"])
        kill = _g("kill_switch", "1 while the kill switch is on", [])
        kill.add_metric([], 1.0 if risk.get("kill_switch") else 0.0)
        pending = _g("alerts_pending", "Alert deliveries not yet made", [])
        pending.add_metric([], s["alerts_pending"])
        alerts = _c(
            "alerts", "Alerts raised, by rule and kind (fire, repeat, recover)", ["rule", "kind"]
        )
        for rule, kind, n in s.get("alert_counts", []):
            alerts.add_metric([rule, kind], n)
        yield from (ticks, bars, cov, intents, approved, rejected, orders, fills, unknown)
        yield from (pnl, greek, stack, margin, avail, kill, pending, alerts)


def registry(snap: Callable[[], dict[str, Any]]) -> tuple[CollectorRegistry, Histogram]:
    """The registry ``/metrics`` serves, and the order-latency histogram to feed."""
    reg = CollectorRegistry()
    reg.register(StackCollector(snap))
    hist = Histogram(
        "mytrading_order_latency_seconds",
        "From the market event behind an order to the router sending it to the broker",
        buckets=LATENCY_BUCKETS,
        registry=reg,
    )
    return reg, hist
