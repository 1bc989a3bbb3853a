"""Accounts configuration (config/accounts.toml) and the follower mirror's arithmetic."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import msgspec
import pytest

from mytrading.domain.accounts import MAIN, Follow, book_name, load_accounts
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.margin import load_margins
from mytrading.risk.mirror import Mirror
from mytrading.settings import PROJECT_ROOT, ConfigError, Settings, load_settings
from tests.simhelpers import FUT, order

DAY = date(2026, 11, 20)
LOT = 65


def accounts_file(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    monkeypatch.setenv("MT_ACCOUNTS_FILE", str(path))
    return load_settings()


SECOND = """
[accounts.second]
host = "http://127.0.0.1:5001/"
ws_url = "ws://127.0.0.1:8766"
api_key_env = "MT_TEST_SECOND_KEY"
orders_per_s = 5
"""


def test_main_alone_when_no_file_names_others(settings: Settings) -> None:
    a = load_accounts(settings)
    assert list(a.by_name) == [MAIN] and a.data_order == (MAIN,)
    assert a.by_name[MAIN].orders_per_s == settings.router.orders_per_s
    assert a.followers("sma_crossover") == ()


def test_accounts_followers_and_data_order(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT_TEST_SECOND_KEY", "k2-secret")
    monkeypatch.setenv("MT_BROKER", "openalgo")
    s = accounts_file(
        tmp_path,
        SECOND
        + '[strategies.s]\nfollow = { second = 2 }\n[strategies.t]\nfollow = { second = "B" }\n'
        + '[strategies.u]\nlead = "second"\nfollow = { main = 1 }\n'
        + '[strategies.v]\nlead = "second"\n'
        + '[market_data]\norder = ["second", "main"]\n',
        monkeypatch,
    )
    a = load_accounts(s)
    second = a.by_name["second"]
    assert (second.rest_url, second.orders_per_s, second.smart_orders_per_s) == (
        "http://127.0.0.1:5001",
        5.0,
        s.router.smart_orders_per_s,
    )
    assert "k2-secret" not in repr(second)  # a key never reaches a log line
    assert a.followers("s") == (Follow("second", multiple=2.0),)
    assert a.followers("t") == (Follow("second", grade="B"),)
    assert a.data_order == ("second", "main") and a.grades() == {"B"}
    assert book_name("s", "second") == "s@second"
    assert (a.account_of("s@second"), a.account_of("s")) == ("second", MAIN)
    # a strategy can lead on another account, and main can follow it
    assert (a.lead("u"), a.lead("v"), a.lead("s"), a.lead("unmapped")) == (
        "second",
        "second",
        MAIN,
        MAIN,
    )
    assert a.followers("u") == (Follow(MAIN, multiple=1.0),) and a.followers("v") == ()
    assert (a.account_of("u"), a.account_of("u@main")) == ("second", MAIN)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            SECOND.replace('api_key_env = "MT_TEST_SECOND_KEY"', 'api_key_env = "MT_NO_SUCH"'),
            "MT_NO_SUCH is empty",
        ),
        (SECOND.replace("orders_per_s = 5", "orders_per_s = 0"), "orders_per_s must be"),
        (SECOND + "colour = 1\n", "allowed keys"),
        (SECOND.replace("[accounts.second]", "[accounts.main]"), "'main' is set by"),
        (SECOND.replace("[accounts.second]", "[accounts.Second]"), "a name is a-z"),
        (SECOND + "[strategies.s]\nfollow = { third = 1 }\n", "follow.third is not an account"),
        (
            SECOND + "[strategies.s]\nlead = 'second'\nfollow = { second = 1 }\n",
            "follow.second is not",
        ),
        (SECOND + "[strategies.s]\nlead = 'third'\n", "lead 'third' is not an account"),
        (SECOND + "[strategies.s]\nfollow = 2\n", "follow = "),
        (SECOND + "[strategies.s]\nfollow = { second = -1 }\n", "must be positive"),
        (SECOND + "[strategies.s]\ncolour = 'red'\n", "keys lead = <account>"),
        (SECOND + '[market_data]\norder = ["second", "second"]\n', "distinct account names"),
        ("[brokers]\n", "unknown tables"),
        ("[accounts.second\n", "accounts.toml"),
    ],
)
def test_bad_accounts_files_name_the_problem(
    tmp_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    says: str,
) -> None:
    monkeypatch.setenv("MT_TEST_SECOND_KEY", "k2")
    monkeypatch.setenv("MT_BROKER", "openalgo")
    s = accounts_file(tmp_path, text, monkeypatch)
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        load_accounts(s)


def test_in_process_broker_has_one_account(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT_TEST_SECOND_KEY", "k2")
    s = accounts_file(tmp_path, SECOND, monkeypatch)  # tmp_env: MT_BROKER=sim
    with pytest.raises(ConfigError, match="has one account"):
        load_accounts(s)


def test_the_shipped_accounts_file_loads(settings: Settings) -> None:
    assert (PROJECT_ROOT / "config" / "accounts.toml").exists()
    assert list(load_accounts(settings).by_name) == [MAIN]


# ------------------------------------------------------------------- the mirror


class Harness:
    """Risk's book with the lead ``s`` on main and one follower; orders "fill" at once."""

    def __init__(
        self, refdata: RefData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str
    ) -> None:
        monkeypatch.setenv("MT_TEST_SECOND_KEY", "k2")
        monkeypatch.setenv("MT_BROKER", "openalgo")
        s = accounts_file(
            tmp_path, SECOND + f"[strategies.s]\nfollow = {{ second = {size} }}\n", monkeypatch
        )
        self.book = RiskBook()
        self.mirror = Mirror(load_accounts(s), refdata, load_margins(PROJECT_ROOT / "config"))
        self.n = 0

    def lead(self, action: str, lots: int, fill: bool = True) -> list[wire.Order]:
        """The lead's order through the mirror; the orders (lead first) count as working
        and, with ``fill``, fill at once."""
        self.n += 1
        base = msgspec.structs.replace(order(f"i{self.n}", lots * LOT), action=action)
        before = self.book.net(("s", "NFO", FUT))
        self.last_lead = base
        out = [base, *self.mirror.plan(base, before, self.book, DAY)]
        for o in out:
            key = (o.strategy, o.exchange, o.symbol)
            signed = o.quantity if o.action == "BUY" else -o.quantity
            self.book.on_approved(o.order_id, key, signed)
            if fill:
                self.fill(o)
        return out[1:]

    def fill(self, o: wire.Order) -> None:
        key = (o.strategy, o.exchange, o.symbol)
        del self.book.working[o.order_id]
        signed = o.quantity if o.action == "BUY" else -o.quantity
        self.book.positions[key] = self.book.positions.get(key, 0) + signed

    def follower(self) -> int:
        return self.book.positions.get(("s@second", "NFO", FUT), 0)


def test_a_multiple_follower_mirrors_entries_adds_and_exits(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, "2")
    [f] = h.lead("BUY", 1)
    assert (f.order_id, f.strategy, f.account, f.action, f.quantity, f.exit) == (
        "s.i1@second",
        "s@second",
        "second",
        "BUY",
        2 * LOT,
        False,
    )
    h.lead("BUY", 2)
    assert h.follower() == 6 * LOT
    [f] = h.lead("SELL", 1)  # a partial exit: the follower keeps its ratio
    assert (f.action, f.quantity, f.exit, h.follower()) == ("SELL", 2 * LOT, True, 4 * LOT)
    h.lead("SELL", 2)  # flat: the follower is flat too
    assert h.follower() == 0 and h.mirror.ratios == {}
    [f] = h.lead("SELL", 1)  # and a short mirrors as a short
    assert (f.action, h.follower()) == ("SELL", -2 * LOT)
    # a follower book that risk set REDUCING only mirrors what reduces it
    h.book.states.set("s@second", "reducing")
    assert h.lead("SELL", 1) == [] and h.follower() == -2 * LOT
    [f] = h.lead("BUY", 2)
    assert (f.action, f.quantity, h.follower()) == ("BUY", 2 * LOT, 0)
    h.book.states.set("s@second", "halted")
    assert h.lead("SELL", 1) == []


def test_a_fractional_multiple_rounds_down_to_lots(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, "0.5")
    assert h.lead("BUY", 1) == []  # half a lot is no lot
    [f] = h.lead("BUY", 2)  # three lots on main: one and a half, so one
    assert f.quantity == LOT
    [f] = h.lead("SELL", 3)
    assert (f.action, f.quantity, h.follower()) == ("SELL", LOT, 0)


def test_a_follower_refused_catches_up_and_one_ahead_is_not_traded_against_the_lead(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, "2")
    [f] = h.lead("BUY", 1, fill=False)
    del h.book.working[f.order_id]  # the follower's broker refused it
    h.fill(h.last_lead)
    [f] = h.lead("BUY", 1)  # the lead's next order brings it to its target
    assert (f.quantity, h.follower()) == (4 * LOT, 4 * LOT)
    # the lead is closed by hand: the follower is ahead of its target when the lead opens
    h.book.positions[("s", "NFO", FUT)] = 0
    assert h.lead("BUY", 1) == [] and h.mirror.drift == 1  # would have to sell: left alone
    assert h.follower() == 4 * LOT
    assert h.lead("BUY", 1) == [] and h.mirror.drift == 1  # the lead caught up: on target


def test_after_a_risk_restart_the_ratio_is_read_from_what_the_follower_holds(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, "2")
    h.book.positions[("s", "NFO", FUT)] = 2 * LOT
    h.book.positions[("s@second", "NFO", FUT)] = 6 * LOT  # opened at 3x before a change
    [f] = h.lead("SELL", 1)
    assert (f.quantity, h.follower()) == (3 * LOT, 3 * LOT)


def test_a_graded_follower_is_sized_from_its_own_margin(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, '"B"')
    assert h.lead("BUY", 1) == []  # no funds figure from its broker yet: not sized
    h.book.positions.clear()
    # 10,00,000 free at B (65 %): 6,50,000 over the table's futures margin a lot
    h.book.funds["second"].report(1_000_000.0, time.time_ns())
    per_lot = load_margins(PROJECT_ROOT / "config").per_lot(  # type: ignore[union-attr]
        refdata.instrument("NFO", FUT), "futures", DAY
    )
    lots = int(650_000 // per_lot)
    assert lots >= 1
    [f] = h.lead("BUY", 1)
    assert f.quantity == lots * LOT
    # what it needs is held back from the account until its broker reports again
    free = h.book.free_margin(time.time_ns(), "second")
    assert free == pytest.approx(1_000_000.0 - lots * per_lot)
    assert h.book.free_margin(time.time_ns()) is None  # main's own figure is apart
    [f] = h.lead("BUY", 1)  # adding keeps the ratio fixed at the open
    assert h.follower() == 2 * lots * LOT
    h.book.funds["second"].report(10.0, time.time_ns())
    [f] = h.lead("SELL", 2)  # and exits need no margin
    assert h.follower() == 0


def test_cancels_and_modifies_reach_the_followers_orders(
    refdata: RefData, tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(refdata, tmp_path, monkeypatch, "2")
    [f] = h.lead("BUY", 1, fill=False)
    lead_id = f.order_id.removesuffix("@second")
    modify = msgspec.structs.replace(
        order("m", 2 * LOT),
        order_id="s.m",
        op="modify",
        ref_order_id=lead_id,
        pricetype="LIMIT",
        price=100.0,
    )
    [m] = h.mirror.plan(modify, h.book.net(("s", "NFO", FUT)), h.book, DAY)
    assert (m.order_id, m.ref_order_id, m.quantity, m.price, m.account) == (
        "s.m@second",
        f.order_id,
        4 * LOT,
        100.0,
        "second",
    )
    cancel = msgspec.structs.replace(
        order("c", 0), order_id="s.c", op="cancel", ref_order_id=lead_id
    )
    [c] = h.mirror.plan(cancel, 0, h.book, DAY)
    assert (c.order_id, c.ref_order_id, c.strategy, c.op) == (
        "s.c@second",
        f.order_id,
        "s@second",
        "cancel",
    )


def test_the_status_view_names_accounts(settings: Settings) -> None:
    """Per-account lines of ``main.py status``: the data account, each lane's queue and
    a dead order-update socket; a mismatch on another account names it."""
    from mytrading.process.status import StatusCollector

    def beat(name: str, **detail: object) -> wire.Status:
        return wire.Status(
            name=name,
            pid=1,
            state="running",
            started_ns=0,
            uptime_s=1.0,
            msgs_in=0,
            msgs_out=0,
            errors=0,
            gaps=0,
            lat_p50_us=0.0,
            lat_p99_us=0.0,
            detail=detail,
        )

    view = StatusCollector(settings)
    try:
        view._take(beat("feed", source="openalgo", data_account="second", failovers=1))
        accounts = {
            "main": {"queued": 0, "order_ws_up": True},
            "second": {"queued": 3, "order_ws_up": False},
        }
        view._take(beat("router", accounts=accounts))
        view._take(
            wire.ReconEvent(
                exchange="NFO",
                symbol=FUT,
                product="NRML",
                ours=0,
                broker=65,
                action="external",
                account="second",
            )
        )
        text = view.render({})
    finally:
        view.close()
    assert "feed: openalgo via second" in text and "failovers 1" in text
    assert "accounts: main queued 0; second queued 3, order updates DOWN" in text
    assert f"recon mismatch second/NFO:{FUT} ours=0 broker=65" in text


def test_a_builder_files_accounts_are_its_lead_and_followers(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A builder file's ``[accounts]`` table does what accounts.toml's
    ``[strategies.<name>]`` does, for an enabled builder strategy; both at once is an
    error, and a follower that is not an account is named as accounts.toml's would be."""
    from mytrading.builder.templates import render

    monkeypatch.setenv("MT_TEST_SECOND_KEY", "k2")
    monkeypatch.setenv("MT_BROKER", "openalgo")
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    text = render("b_fly", "iron_fly") + "\n[accounts]\nfollow = { second = 2 }\n"
    (strategies / "b_fly.toml").write_text(text)
    monkeypatch.setenv("MT_STRATEGIES_DIR", str(strategies))
    monkeypatch.setenv("MT_STRATEGIES", "b_fly")
    acc = load_accounts(accounts_file(tmp_path, SECOND, monkeypatch))
    assert acc.lead("b_fly") == MAIN
    assert acc.followers("b_fly") == (Follow("second", multiple=2.0),)
    monkeypatch.setenv("MT_STRATEGIES", "sma_crossover")  # not enabled: not read
    assert load_accounts(accounts_file(tmp_path, SECOND, monkeypatch)).followers("b_fly") == ()
    monkeypatch.setenv("MT_STRATEGIES", "b_fly")
    both = SECOND + "[strategies.b_fly]\nfollow = { second = 1 }\n"
    with pytest.raises(ConfigError, match=r"accounts in accounts\.toml too"):
        load_accounts(accounts_file(tmp_path, both, monkeypatch))
    (strategies / "b_fly.toml").write_text(text.replace("second = 2", "third = 2"))
    with pytest.raises(
        ConfigError, match=r"b_fly.toml \[accounts\]: follow.third is not an account"
    ):
        load_accounts(accounts_file(tmp_path, SECOND, monkeypatch))


def test_an_accounts_key_is_read_from_env_file_and_read_only_commands_need_none(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 38: MT_ACCOUNT_SECOND_KEY in .env, as env_template.txt says, starts the stack
    (the environment still wins); without it anywhere, ``config check`` refuses and
    names it, while ``risk`` and ``status`` run (they need no broker key)."""
    import mytrading.settings as settings_mod
    from tests.procs import cli

    monkeypatch.delenv("MT_TEST_SECOND_KEY", raising=False)
    monkeypatch.setenv("MT_BROKER", "openalgo")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(settings_mod, "PROJECT_ROOT", home)
    (home / ".env").write_text("MT_TEST_SECOND_KEY=from-dotenv\n")
    s = accounts_file(tmp_path, SECOND, monkeypatch)
    assert load_accounts(s).by_name["second"].api_key == "from-dotenv"
    monkeypatch.setenv("MT_TEST_SECOND_KEY", "from-shell")
    assert load_accounts(s).by_name["second"].api_key == "from-shell"
    monkeypatch.delenv("MT_TEST_SECOND_KEY")
    (home / ".env").write_text("")
    with pytest.raises(ConfigError, match="MT_TEST_SECOND_KEY is empty"):
        load_accounts(s)
    assert load_accounts(s, keys=False).by_name["second"].api_key == ""
    env = {**tmp_env, "MT_BROKER": "openalgo", "MT_ACCOUNTS_FILE": str(tmp_path / "accounts.toml")}
    r = cli("config", "check", env=env)
    assert r.returncode == 2 and "MT_TEST_SECOND_KEY is empty" in r.stderr
    r = cli("risk", env=env)  # no stack here: it says so, not a configuration error
    assert r.returncode == 1 and "no heartbeat from risk" in r.stderr, r.stderr
