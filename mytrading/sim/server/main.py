"""Start the OpenAlgo-compatible simulator server (REST on loopback) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable
from datetime import date

import structlog

from mytrading.domain.clock import build_clock
from mytrading.domain.refdata import load_refdata
from mytrading.process import instance
from mytrading.process.logsetup import setup_logging
from mytrading.process.prestart import settled
from mytrading.process.rundir import private_umask
from mytrading.process.shell import hold_instance_lock, stop_delay
from mytrading.settings import ConfigError, FaultSwitches, Settings, load_settings
from mytrading.sim.books import BookStore
from mytrading.sim.exchange import SimExchange
from mytrading.sim.market import SimMarket, configured_market
from mytrading.sim.replay import ReplayError, ReplayMarket
from mytrading.sim.server import faults
from mytrading.sim.server.feedfaults import FeedPlan
from mytrading.sim.server.rest import RateLimits, SimServer, run_market
from mytrading.sim.server.ws import FeedServer
from mytrading.web.guard import protect
from mytrading.web.shed import Shed, ShedSite
from mytrading.web.shed import runner as shed_runner


def build(settings: Settings) -> tuple[SimServer, FeedServer, SimExchange]:
    refdata = load_refdata(settings.config_dir)
    clock = build_clock(settings, refdata.calendar)
    market: SimMarket | ReplayMarket
    if settings.sim.replay:
        market = ReplayMarket(
            refdata, settings.stores.record_db, date.fromisoformat(settings.sim.replay)
        )
    else:
        day = clock.now().date()
        market = configured_market(settings, refdata, day)
    ex = SimExchange(
        refdata,
        clock,
        market,
        capital=settings.sim.capital,
        slippage_ticks=settings.sim.slippage_ticks,
        fill_model=settings.sim.fill_model,
        partial_fills=settings.sim.partial_fills,
        price_band_pct=settings.sim.price_band_pct,
        option_band_pct=settings.sim.option_price_band_pct,
    )
    limits = RateLimits(
        settings.sim.order_rate_limit, settings.sim.smart_rate_limit, settings.sim.api_rate_limit
    )
    key = settings.api_key() or settings.sim.api_key.get_secret_value()
    server = SimServer(ex, key, limits)
    server.delay_s = settings.sim.rest_delay_ms / 1000.0
    server.history_spacing_s = settings.sim.history_spacing_ms / 1000.0
    plan = FeedPlan.from_settings(settings.sim)
    return server, FeedServer(ex, key, settings.sim.ws_auth_grace_s, plan), ex


async def serve(settings: Settings, parent: int | None = None) -> None:
    log = structlog.get_logger("simserver")
    server, feed, ex = build(settings)
    plan = faults.parse(FaultSwitches().sim_faults)  # checked by main() before we got here
    if plan.any_random or plan.clock_offset_s:
        log.warning("MT_SIM_FAULTS: a broker's bad day, on purpose", plan=repr(plan))
    log.info("feed", plan=repr(feed.plan))  # how late and messy its ticks are
    store = BookStore(settings.state_dir)
    books = ex.attach_books(store)
    if store.set_aside is not None:
        log.error("books file unreadable: set aside, fresh account", kept_as=str(store.set_aside))
    if store.torn_lines:
        log.warning("books file had a torn line (a write cut by a crash)", lines=store.torn_lines)
    log.info(
        "books restored" if books.orders or books.carried else "fresh account",
        day=books.day,
        orders=len(books.orders),
        trades=len(books.trades),
        carried=len(books.carried),
        capital=round(books.capital, 2),
    )
    if isinstance(ex.market, SimMarket) and settings.sim.history_sessions:
        # Past bars up to now, the current minute included, right before the first quotes:
        # history then has no hole at the start, whatever the start cost on the clock.
        ex.history_store.preload(
            ex.market.past_bars(
                ex.clock.now_ns(), settings.sim.history_sessions, settings.sim.seed + 1
            )
        )
    ex.step()  # quotes exist before the first request
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The supervisor is gone (parent-death SIGHUP, or the getppid() watch): stop like on
    # SIGTERM, after the daemons that talk to us (the broker goes last).
    delay = stop_delay("simserver")

    def leave(why: str) -> None:
        if not leaving:
            leaving.append(why)
            log.warning("supervisor gone, stopping", why=why, in_s=delay)
            loop.call_later(delay, stop.set)

    leaving: list[str] = []
    loop.add_signal_handler(signal.SIGHUP, leave, "SIGHUP")
    watch = asyncio.create_task(_watch_parent(parent, leave)) if parent is not None else None
    host = settings.sim.server_host
    runners = []
    server.on_drop_ws = feed.drop_all
    server.ws_sent = lambda: (feed.sent_total, feed.dropped_total)
    apps = (
        (server.app(plan), settings.sim.rest_port),
        (feed.app(), settings.sim.ws_port),
    )
    names = settings.http_names(host)
    limits = settings.http.shed_limits()
    for app, port in apps:
        runner = shed_runner(protect(app, names), limits)
        await runner.setup()
        await ShedSite(runner, host, port, Shed(limits)).start()
        runners.append(runner)
    log.info(
        "listening",
        rest=f"http://{host}:{settings.sim.rest_port}/api/v1/",
        ws=f"ws://{host}:{settings.sim.ws_port}",
    )
    settled()  # what start built lives as long as the server: no full collection walks it
    market = asyncio.create_task(run_market(ex, settings.sim.tick_hz, stop, feed.broadcast))
    await stop.wait()
    gc.unfreeze()
    if watch is not None:
        watch.cancel()
    await market
    # Close the WebSocket clients first: aiohttp's cleanup would otherwise wait for their
    # handlers (up to 60 s) and a stop would hang for as long as a feed stays connected.
    await feed.drop_all()
    for runner in runners:
        await runner.cleanup()
    if ex.books is not None:
        ex.books.close()
    log.info("stopped", requests=sum(server.counts.values()))


async def _watch_parent(parent: int, leave: Callable[[str], None]) -> None:
    while not instance.parent_gone(parent):
        await asyncio.sleep(0.5)
    leave(f"parent {parent} exited")


def main() -> None:
    private_umask()
    try:
        faults.parse(FaultSwitches().sim_faults)
    except ValueError as exc:
        print(f"simserver: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"simserver: configuration error:\n{exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(
        "simserver", settings.log_dir, settings.logs.level, rotation=settings.logs.rotation()
    )
    lock = hold_instance_lock("simserver", settings)  # before binding any port
    parent = None
    if instance.supervised():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until serve() handles it
        parent = instance.die_with_parent()
    try:
        asyncio.run(serve(settings, parent))
    except ReplayError as exc:
        structlog.get_logger("simserver").critical("cannot replay", reason=str(exc))
        sys.exit(2)
    finally:
        lock.release()
