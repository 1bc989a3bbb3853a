"""A follower account's day set against its lead's (``shadow/followers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading.shadow.followers import NO_COPY, follow, refusals_by_intent
from mytrading.shadow.trades import SideOfDay, Trade

FUT = ("NFO", "NIFTY30DEC26FUT")
MIN = 60_000_000_000


def trade(side: str, book: str, intent: str, action: str, qty: int, px: float = 0.0,
          state: str = "complete", reason: str = "", sent: bool = True) -> Trade:  # fmt: skip
    t = Trade(side, book, intent, *FUT, action, qty, MIN, state=state, reason=reason,  # type: ignore[arg-type]
              sent_ns=MIN if sent else 0)  # fmt: skip
    if px:
        t.add_fill(qty, px, MIN + 1, 20.0)
    return t


def test_each_lead_decision_is_copied_refused_rejected_or_not_made() -> None:
    lead = SideOfDay("live", trades={"s": [
        trade("live", "s", "i1", "BUY", 65, 24_000.0),
        trade("live", "s", "i2", "SELL", 65, 24_100.0),
        trade("live", "s", "i3", "BUY", 65, 24_050.0),
        trade("live", "s", "i4", "SELL", 65, 24_020.0),
        trade("live", "s", "i5", "BUY", 65, 24_010.0),
        trade("live", "s", "risk-x", "SELL", 65, 24_000.0),  # risk's exit: no copy due
    ]})  # fmt: skip
    book = "s@second"
    second = SideOfDay("live", trades={book: [
        trade("live", book, "i1", "BUY", 130, 24_000.5),  # half a rupee worse a unit
        trade("live", book, "i2", "SELL", 130, 24_101.0),  # a rupee better
        trade("live", book, "i3", "BUY", 130, state="rejected", reason="RMS: margin"),
        trade("live", book, "conv-1", "BUY", 130, 24_060.0),  # its convergence, of its own
        trade("live", book, "i5", "BUY", 130, state="rejected", sent=False,
              reason="broker session expired: place not sent to second"),  # the router's
    ]})  # fmt: skip
    refused = refusals_by_intent([
        ("2026-11-27 09:20:00", book, "rejected", "max_notional", 0, 0, "reject", "", [], "",
         "i4@second"),
        ("2026-11-27 09:20:00", "s", "exit", "max_loss", 0, 0, "close", "", [], "", ""),
    ])  # fmt: skip
    assert refused == {"i4@second": "max_notional"}
    mark = 24_030_00

    (f,) = follow("s", lead, {"second": second}, refused, lambda *_: mark, shadow_net=1_234_50)
    assert (f.book, f.account, f.decisions, f.copied, f.own) == (book, "second", 5, 2, 1)
    assert f.not_copied == {
        "rejected by the broker: RMS: margin": 1,
        "refused: max_notional": 1,
        "not sent to the broker: broker session expired: place not sent to second": 1,
    }
    assert f.slippage == round(-0.5 * 100 * 130 + 1.0 * 100 * 130)  # paise: +65.00
    assert f.ratio == 2.0
    assert f.net == second.net(book, lambda *_: mark) and f.lead_net == lead.net(
        "s", lambda *_: mark
    )
    line = f.line()
    assert line.startswith(
        "follower second: 2 of 5 copied (1 rejected by the broker: RMS: margin, 1 refused: "
        "max_notional, 1 not sent to the broker: broker session expired: place not sent to "
        "second), 1 of its own, slippage +65.00"
    )
    assert line.endswith(f"vs the lead's x2 {f.lead_net * 2 / 100:+,.2f}, the shadow's +2,469.00")
    assert f.row()["shadow_net"] == 1_234.5
    assert f.row()["not_copied"] == f.not_copied and f.row()["slippage"] == 65.0


def test_a_copy_risk_never_made_is_said_and_an_account_without_the_strategy_is_left_out() -> None:
    lead = SideOfDay("live", trades={"s": [trade("live", "s", "i1", "BUY", 65, 24_000.0)]})
    third = SideOfDay("live", trades={"s@third": []})
    other = SideOfDay("live", trades={"t@fourth": [trade("live", "t@fourth", "j", "BUY", 65, 1.0)]})
    got = follow("s", lead, {"third": third, "fourth": other}, {"i1@third": "x"}, lambda *_: 0)
    assert [f.book for f in got] == ["s@third"]  # fourth follows another strategy
    assert got[0].not_copied == {"refused: x": 1}
    (f,) = follow("s", lead, {"third": SideOfDay("live", trades={"s@third": [
        trade("live", "s@third", "conv", "BUY", 65, 24_001.0)]})}, {}, lambda *_: 0)  # fmt: skip
    assert f.not_copied == {NO_COPY: 1} and f.own == 1 and f.ratio == 0.0
    assert "vs the lead's -" in f.line()


def test_a_notebook_gets_each_follower_as_a_row() -> None:
    """``from mytrading.research import shadow``: ``.followers``, one row per day,
    strategy and account, the JSON's figures."""
    from datetime import date

    from mytrading.research.shadow import frames
    from mytrading.shadow.day import ShadowDay, StrategyShadow
    from mytrading.shadow.pairing import Bridge

    lead = SideOfDay("live", trades={"s": [trade("live", "s", "i1", "BUY", 65, 24_000.0)]})
    copy = SideOfDay("live", trades={"s@second": [
        trade("live", "s@second", "i1", "BUY", 130, 24_001.0)]})  # fmt: skip
    fol = follow("s", lead, {"second": copy}, {}, lambda *_: 24_010_00)
    day = ShadowDay(date(2026, 11, 27), {"s": StrategyShadow("s", [], Bridge(), 1, fol)}, {}, {})
    got = frames([day]).followers
    assert got.to_dict("records") == [{"day": date(2026, 11, 27), "strategy": "s",
                                       "account": "second", **fol[0].row()}]  # fmt: skip
    assert got.loc[0, "slippage"] == -130.0 and got.loc[0, "ratio"] == 2.0
    assert day.to_json()["strategies"]["s"]["followers"] == {"second": fol[0].row()}


def test_a_configured_follower_that_got_no_copy_all_day_is_said() -> None:
    """``config/accounts.toml`` has ``third`` follow the strategy; risk made it no copy
    (its target never moved at its ratio): it is said with none copied, not left out."""
    lead = SideOfDay("live", trades={"s": [trade("live", "s", "i1", "BUY", 65, 24_000.0)]})
    (f,) = follow("s", lead, {}, {}, lambda *_: 24_000_00, configured={"third"})
    assert (f.book, f.copied, f.decisions, f.not_copied) == ("s@third", 0, 1, {NO_COPY: 1})
    assert f.line().startswith("follower third: 0 of 1 copied (1 no copy made by risk")


def test_followers_come_from_accounts_toml_and_an_unreadable_one_is_said(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's shadow reads which accounts follow each strategy from accounts.toml; a
    file it cannot read (a key it does not know) is said in its notes, and the followers
    are then those the day's records show, the shadow still made."""
    from mytrading.settings import load_settings
    from mytrading.shadow.day import followers_configured

    path = tmp_path / "accounts.toml"
    monkeypatch.setenv("MT_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("MT_BROKER", "openalgo")  # the in-router venue has one account
    path.write_text('[accounts.second]\nhost = "http://127.0.0.1:5001/"\n'
                    'ws_url = "ws://127.0.0.1:8766"\napi_key_env = "MT_TEST_SECOND_KEY"\n'
                    '[strategies.s]\nfollow = { second = 2 }\n')  # fmt: skip
    notes: list[str] = []
    got = followers_configured(load_settings(), ["s", "t"], notes)
    assert got == {"s": {"second"}} and notes == [], notes
    path.write_text("[accounts.second]\nnot_a_key = 1\n")
    got = followers_configured(load_settings(), ["s"], notes)
    assert got == {} and len(notes) == 1
    assert (
        notes[0].startswith("followers from the day's records only: ")
        and "[accounts.second]: allowed keys are" in notes[0]
    )
