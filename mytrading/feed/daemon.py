"""The feed: quotes the market and publishes ticks and 1-minute bars.

With ``MT_BROKER=openalgo`` (the default, against the local simulator server or a real
OpenAlgo) the quotes arrive over OpenAlgo's WebSocket (``openalgo/ws.py``); with
``MT_BROKER=sim`` they come as the same ``market_data`` JSON from the simulated venue in
this process (``venue.local_quotes``), read by the same parser. Either way the feed
publishes ticks and builds 1-minute bars (``domain/bars.py``), and reports its coverage.

What it subscribes is what the other daemons declare (``messaging/interest.py``): the engine's
strategies' instruments, each in the mode asked (a strategy may ask for depth, published
as ``Depth`` on ``md.depth.*``), risk's positions and working orders, the webhook
strategies' symbols; plus the indices (``MT_FEED_SUBSCRIBE=universe``: the whole
universe as well).

Quotes come from the first account of ``config/accounts.toml [market_data] order`` that
answers, failing over to the next and back (``openalgo.ws.FeedClient``); the bars of a
gap are backfilled from the history of the account then in use.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mytrading import hosttime, venue
from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import RefDataError
from mytrading.domain.universe import quoted, universe
from mytrading.feed.timewatch import TimeWatch
from mytrading.messaging import wire
from mytrading.messaging.bus import MD_HWM
from mytrading.messaging.interest import Interests
from mytrading.openalgo.history import http_history
from mytrading.openalgo.paced import Fetcher
from mytrading.openalgo.rest import OpenAlgoREST
from mytrading.openalgo.ws import FeedClient, Source, depth_from, tick_from_json
from mytrading.process.base import Daemon
from mytrading.stores.recording import Recorder

COVERAGE_FRESH_S = 5.0
COVERAGE_ALERT = 0.90
# Coverage under COVERAGE_ALERT is a warning when first seen and an error once it has
# lasted this long (wall seconds): a busy host or a server still starting can hold every
# quote back for a few seconds, and that is not a feed an operator must look at.
COVERAGE_ERROR_AFTER_S = 15.0
# a source's p99 lag over a minute past this is logged (the monitor's feed_lag rule alerts
# at its own threshold, config/alerts.toml)
LAG_LOG_MS = 5000.0


@dataclass
class Backfill:
    """One symbol's gap being filled: its live bars wait in ``held`` meanwhile."""

    future: Future[list[wire.Bar]]
    last: int  # start_ns of the last bar published before the gap
    current: int  # start_ns of the minute forming at the reconnect
    held: list[wire.Bar] = field(default_factory=list)


class CoverageWatch:
    """When the share of fresh symbols is worth saying: ``low`` when it falls under
    ``COVERAGE_ALERT`` (after the first ``COVERAGE_FRESH_S`` of uptime), ``error`` once it
    has stayed under for ``COVERAGE_ERROR_AFTER_S`` (``alert`` from then on), ``restored``
    when it is back; each once per episode."""

    def __init__(self) -> None:
        self.low_since = 0.0  # monotonic time coverage fell (0.0: it is not low)
        self.alert = False

    def low_for(self, now: float) -> float:
        return now - self.low_since if self.low_since else 0.0

    def judge(self, fresh: int, total: int, uptime: float, now: float) -> str:
        low = total > 0 and fresh / total < COVERAGE_ALERT and uptime > COVERAGE_FRESH_S
        if low and not self.low_since:
            self.low_since = now
            return "low"
        if low and not self.alert and now >= self.low_since + COVERAGE_ERROR_AFTER_S:
            self.alert = True
            return "error"
        if not low and self.low_since:
            self.low_since, self.alert = 0.0, False
            return "restored"
        return ""


class FeedDaemon(Daemon):
    name = "feed"
    pub_hwm = MD_HWM  # a slow reader loses ticks, never stalls the feed; gaps show it
    sub_prefixes = ("ctl.interest.",)

    def setup(self) -> None:
        s = self.settings
        self.bars = BarBuilder(self.refdata.calendar, "1m")
        self.ticks_out = 0
        self.bars_out = 0
        self.client: FeedClient | None = None
        self.local: venue.LocalMarketData | None = None  # MT_BROKER=sim
        self.bad_quotes = 0
        self.last_seen: dict[tuple[str, str], float] = {}
        self.last_bar: dict[tuple[str, str], int] = {}  # start_ns of the last bar published
        self.recorder = (
            Recorder(s.stores.record_db, idle_release_s=s.stores.record_idle_s)
            if s.stores.record
            else None
        )
        self._pruned_day = ""
        if self.recorder is not None:
            self.every(60.0, self._retention, first_in=0)
        self.backfilling: dict[tuple[str, str], Backfill] = {}
        self.fetcher: Fetcher | None = None
        self.coverage_watch = CoverageWatch()
        self.depth_out = 0
        self.local_modes: dict[tuple[str, str], int] = {}
        if s.broker == "openalgo":
            self._setup_openalgo()
        else:
            self.local = venue.local_quotes(s, self.refdata, self.clock.now().date())
            self.universe: list[tuple[str, str]] = self.local.instruments
            self.every(1.0 / s.sim.tick_hz, self.publish_sim_ticks, first_in=0)
        base = dict.fromkeys(self.universe if s.feed.subscribe == "universe" else (), 2)
        for name in s.sim.underlyings:  # the indices: always quoted
            u = self.refdata.underlying(name)
            if u.kind == "INDEX":
                base[(u.spot_exchange, name)] = max(base.get((u.spot_exchange, name), 0), 2)
        self.interests = Interests(self.refdata, base, s.state_dir / "feed_interest.json")
        self._applied_day = date.min  # the market day the subscriptions were last made for
        restored = self.interests.load()
        if restored:
            self.log.info("subscriptions restored from the last run", instruments=restored)
        self._tick_topics: dict[tuple[str, str], str] = {}
        # tools (the chain view) ask on a pipe, daemons on their PUB: one handler
        self.pipe_in("pipe.interest", self.on_message)
        self._apply_interest()
        self.every(5.0, self._expire_interest)
        self.every(0.1, self.close_bars)
        self.time = TimeWatch()
        self.late_last_minute = 0  # late ticks the feed's bars left out, last full minute
        self._late_at_roll = 0
        self.every(0.5, self._watch_time)
        if self.client is not None and s.feed.ping_s:
            self.every(s.feed.ping_s, self.client.ping, first_in=2.0)

    # --------------------------------------------------------------- interest

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Interest) and self.interests.update(msg.src, msg.wants):
            self._apply_interest()

    def _expire_interest(self) -> None:
        if self.interests.expire() or self.clock.now().date() != self._applied_day:
            self._apply_interest()  # a new market day: contracts past their expiry go

    def _apply_interest(self) -> None:
        today = self.clock.now().date()
        self._applied_day = today
        wanted = {k: m for k, m in self.interests.wanted().items() if not self._expired(k, today)}
        self.instruments = list(wanted)
        for k in wanted:
            if k not in self._tick_topics:
                self._tick_topics[k] = wire.tick_topic(*k)
        if self.client is not None:
            self.client.set_wanted(wanted)
        else:
            self.local_modes = wanted

    def _expired(self, key: tuple[str, str], today: date) -> bool:
        """A contract whose expiry day is past: nothing quotes it, so it is neither
        subscribed nor counted in the coverage (a strategy or risk may still declare it
        until its books forget it)."""
        try:
            expiry = self.refdata.instrument(*key).expiry
        except RefDataError:
            return False
        return expiry is not None and expiry < today

    def _setup_openalgo(self) -> None:
        # Plain HTTP, not the SDK: its 1.1 s import would be most of a restart.
        s = self.settings
        accounts = self.accounts
        data = [accounts.by_name[n] for n in accounts.data_order]
        host = self.host
        rests = [
            OpenAlgoREST(
                a.api_key, a.rest_url, s.openalgo.timeout_s, transport=host.transport(a.rest_url)
            )
            for a in data
        ]
        self.histories = {
            a.name: http_history(
                a.rest_url,
                a.api_key,
                s.openalgo.timeout_s,
                lambda tf: self.bars,
                transport=host.transport(a.rest_url),
            )
            for a in data
        }

        def spot_of(name: str) -> float:
            """The index level that centres the option strip, from the first data account
            that answers; waits for servers still starting (supervisor starts everything
            at once), up to 30 s."""
            u = self.refdata.underlying(name)
            for attempt in range(60):
                for rest in rests:
                    q = rest.quotes(symbol=name, exchange=u.spot_exchange)
                    if q.get("status") == "success":
                        return float(q["data"]["ltp"])
                if attempt == 0:
                    self.log.warning(
                        "waiting for OpenAlgo quotes", symbol=name, reply=q.get("message")
                    )
                hosttime.sleep(0.5)
            raise ConnectionError(f"no quote for {name} from any account: {q.get('message')}")

        self.universe = []
        if s.feed.subscribe == "universe":  # the option strips need the indices' levels
            insts = universe(
                self.refdata,
                quoted(self.refdata, s.sim.underlyings, s.sim.stocks),
                self.clock.now().date(),
                s.sim.strikes,
                spot_of,
                s.sim.stock_strikes,
            )
            self.universe = [(i.exchange, i.symbol) for i in insts]
        for rest in rests:
            rest.close()
        self.sessions_seen = 0
        self.backfilled = 0
        self.fetcher = host.fetcher("feed-backfill")
        first, *rest_ = data
        self.client = FeedClient(
            first.ws_url,
            first.api_key,
            [],  # what to subscribe comes from the interest, once set up
            wake=host.wakeup(self.guarded(self._on_ws_ticks)),
            fallbacks=tuple(Source(a.name, a.ws_url, a.api_key) for a in rest_),
            failback_s=s.feed.failback_s,
            name=first.name,
        )
        host.start_ws(self.client)
        self.log.info(
            "OpenAlgo feed starting",
            sources=[a.name for a in data],
            url=first.ws_url,
        )

    def _on_ws_ticks(self) -> None:
        assert self.client is not None
        if self.client.sessions > 1 and self.client.sessions != self.sessions_seen:
            self.sessions_seen = self.client.sessions
            self._backfill()
        self.sessions_seen = self.client.sessions
        now = self.clock.now_ns()
        source = self.client.source.name
        for item in self.client.take():
            if isinstance(item, wire.Tick):
                self._publish_tick(item, now, source)
            else:
                self._publish_depth(item)

    def _backfill(self) -> None:
        """After a reconnect: publish, from ``history``, the 1-minute bars missed while
        disconnected, in order, so strategies see neither a gap nor a repeat.

        The bar that was open at the disconnect is discarded (it saw only part of its
        minute); every bar after the last one published, up to the minute now forming,
        comes from the server. The calls run off the loop, paced as OpenAlgo paces
        history (``openalgo/paced.py``); a symbol's live bars wait until its backfill
        has been published (``_collect_backfills``).
        """
        assert self.client is not None and self.fetcher is not None
        current = self.bars.bucket_start(self.clock.now_ns())
        self.bars.discard_open()
        day = self.clock.now().date()
        fetch = self.histories[self.client.source.name]
        for exchange, symbol in self.instruments:
            key = (exchange, symbol)
            last = self.last_bar.get(key)
            if last is None:
                continue
            earlier = self.backfilling.pop(key, None)
            call = functools.partial(fetch, exchange, symbol, "1m", day, day)
            fut = self.fetcher.submit((exchange, symbol, current), call)
            self.backfilling[key] = Backfill(fut, last, current, earlier.held if earlier else [])
        self.log.info("backfilling bars after reconnect", symbols=len(self.backfilling))
        if self.backfilling:
            self.heartbeat()  # the engine holds its 1-minute bars from now (runner.py)

    def _collect_backfills(self) -> None:
        for key, job in list(self.backfilling.items()):
            if not job.future.done():
                continue
            del self.backfilling[key]
            try:
                bars = job.future.result()
            except Exception as exc:  # HistoryError, or whatever else the call raised
                self.count_error("history backfill failed", symbol=key[1], reason=str(exc))
                bars = []
            n = 0
            for bar in bars:
                if job.last < bar.start_ns < job.current:
                    self._publish_bar(bar)
                    n += 1
            for bar in job.held:
                self._publish_bar(bar)
            self.backfilled += n
            if not self.backfilling:
                self.log.info("bars backfilled after reconnect", bars=self.backfilled)
                self.heartbeat()  # ... and hands them with the backfilled ones now

    def publish_sim_ticks(self) -> None:
        """The in-process venue's quotes, read from OpenAlgo's ``market_data`` JSON by the
        same parser as the WebSocket's."""
        assert self.local is not None
        now = self.clock.now_ns()
        for raw, mode in self.local.messages(now, self.local_modes):
            tick = tick_from_json(raw)
            if tick is None:
                self.bad_quotes += 1
                continue
            self._publish_tick(tick, now, "sim")
            if mode == 3:
                depth = depth_from(json.loads(raw))
                if depth is not None:
                    self._publish_depth(depth)

    def _publish_depth(self, depth: wire.Depth) -> None:
        self.publish(wire.depth_topic(depth.exchange, depth.symbol), depth)
        self.depth_out += 1

    def _publish_tick(self, tick: wire.Tick, now_ns: int, source: str) -> None:
        """Publish and record a tick, measure its lag, fold it into the 1-minute bars
        (``now_ns``: our market clock as the batch it came in was taken)."""
        key = (tick.exchange, tick.symbol)
        self.last_seen[key] = hosttime.monotonic()
        topic = self._tick_topics.get(key) or wire.tick_topic(*key)
        self.publish(topic, tick)
        self.ticks_out += 1
        if self.recorder is not None:
            self.recorder.add_tick(tick)
        bar = self.bars.on_tick(tick, now_ns)
        lag = self.bars.lag_sample
        if not tick.exch_ns:
            self.time.unstamped += 1  # stamped by its arrival: no lag to measure
        elif lag is not None:
            self.time.sample(source, lag)
        if bar is not None:
            self._publish_bar(bar)

    def _watch_time(self) -> None:
        """Each minute of market time: the sources' lag and the late ticks, summed up;
        said in the log when off; the last pong taken (a quiet market wakes no tick batch)."""
        pong = self.client.take_pong() if self.client is not None else None
        if pong is not None:
            self.time.pong(*pong)
        if not self.time.roll(self.clock.now_ns()):
            return
        late = self.bars.stats.late
        self.late_last_minute, self._late_at_roll = late - self._late_at_roll, late
        if self.late_last_minute:
            self.log.warning(
                "late ticks left out of bars",
                last_minute=self.late_last_minute,
                late_max_s=round(self.bars.stats.late_max_ns / 1e9, 3),
                worst=sorted(self.bars.stats.by_key.items(), key=lambda kv: -kv[1])[:3],
            )
        p99 = self.time.worst_p99_ms()
        if p99 is not None and p99 > LAG_LOG_MS:
            self.log.warning("feed lag high", **self.time.detail())

    def _retention(self) -> None:
        """Once a market day: recordings older than their retention go (the writer does
        it; ``MT_RECORD_KEEP_DAYS`` ticks, ``MT_RECORD_BARS_KEEP_DAYS`` bars)."""
        now = self.clock.now_ns()
        day = self.clock.now().date().isoformat()
        if self.recorder is None or day == self._pruned_day:
            return
        self._pruned_day = day
        s = self.settings
        self.recorder.prune(
            now - int(s.retention.record_keep_days * 86400e9),
            now - int(s.retention.record_bars_keep_days * 86400e9),
        )

    def close_bars(self) -> None:
        if self.backfilling:
            self._collect_backfills()
        if self.client is not None and not self.client.authenticated:
            return  # in an outage a bar would close incomplete; the backfill brings it whole
        for bar in self.bars.close_due(self.clock.now_ns()):
            self._publish_bar(bar)

    def _publish_bar(self, bar: wire.Bar) -> None:
        key = (bar.exchange, bar.symbol)
        if key in self.backfilling:  # after the bars history brings for the gap
            self.backfilling[key].held.append(bar)
            return
        if bar.start_ns <= self.last_bar.get(key, -1):
            return  # never the same minute twice
        self.last_bar[key] = bar.start_ns
        self.publish(wire.bar_topic(bar.tf, bar.exchange, bar.symbol), bar)
        self.bars_out += 1
        if self.recorder is not None:
            self.recorder.add_bar(bar)

    def coverage(self) -> tuple[int, int]:
        now = hosttime.monotonic()
        fresh = sum(
            1 for k in self.instruments if now - self.last_seen.get(k, -1e9) <= COVERAGE_FRESH_S
        )
        return fresh, len(self.instruments)

    def _judge_coverage(self, fresh: int, total: int) -> None:
        now = hosttime.monotonic()
        said = self.coverage_watch.judge(fresh, total, self.uptime(), now)
        if said == "low":
            self.log.warning("feed coverage low", fresh=fresh, total=total)
        elif said == "error":
            self.log.error("feed coverage below 90%", fresh=fresh, total=total,
                           for_s=round(self.coverage_watch.low_for(now)))  # fmt: skip
        elif said == "restored":
            self.log.info("feed coverage restored", fresh=fresh, total=total)

    def detail(self) -> dict[str, Any]:
        fresh, total = self.coverage()
        self._judge_coverage(fresh, total)
        low = self.coverage_watch.alert
        d: dict[str, Any] = {
            "source": "openalgo" if self.client else "sim",
            **({"bad_quotes": self.bad_quotes} if self.bad_quotes else {}),
            "instruments": total,
            "subscribe": self.settings.feed.subscribe,
            "declared_by": sorted(self.interests.by_src),
            "interest_refused": self.interests.refused,
            "depth": self.depth_out,
            "coverage": f"{fresh}/{total} symbols fresh within {COVERAGE_FRESH_S:.0f} s",
            "coverage_alert": low,
            "ticks": self.ticks_out,
            "bars": self.bars_out,
            **self.time.detail(),
            **self.bars.stats.as_dict(),
            "late_ticks_last_minute": self.late_last_minute,
            "bar_grace_s": self.settings.bar_grace_s,
            "market_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
        if self.recorder is not None:
            d.update(
                recorded_ticks=self.recorder.ticks_written,
                recorded_bars=self.recorder.bars_written,
                recording_pruned=self.recorder.pruned,
                record_errors=self.recorder.errors,
                recording_open=self.recorder.con is not None,  # let go while idle
                recording_held_s=round(self.recorder.held_s, 1),  # a reader holds it
                recording_dropped=self.recorder.dropped,
            )
        if self.client is not None:
            d.update(
                connected=self.client.authenticated,
                reconnects=self.client.reconnects,
                duplicates_dropped=self.client.duplicates,
                bad_messages=self.client.bad_messages,
                alerting=self.client.alerting,
                bars_backfilled=self.backfilled,
                backfilling=len(self.backfilling),
                data_account=self.client.source.name,
                failovers=self.client.failovers,
            )
        return d

    def teardown(self) -> None:
        if self.client is not None:
            self.client.stop()
        if self.fetcher is not None:
            self.fetcher.close()
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            recorder.close()  # flushes what is still queued
