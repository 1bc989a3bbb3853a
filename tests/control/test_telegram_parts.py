"""The Telegram bot's parts without the network: the confirmation buttons (good once,
for 60 s, for the asker only), ``config/control.toml`` and its checks, the token kept
out of the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mytrading.control.bot import Redact
from mytrading.control.config import load_control
from mytrading.control.confirm import Confirmations, Pending
from mytrading.settings import ConfigError
from tests.telegramstub import TOKEN


def test_a_confirmation_is_good_once_for_its_asker_for_sixty_seconds() -> None:
    now = [1000.0]
    c = Confirmations(60.0, clock=lambda: now[0])
    key = c.ask(111, "killswitch", {"state": "flatten"})
    assert len(key.encode()) + 2 <= 64  # Telegram's callback data limit, with "y:"
    assert "only the person who asked" in str(c.take(key, 222))
    got = c.take(key, 111)  # another's press left it good for its owner
    assert isinstance(got, Pending) and got.args == {"state": "flatten"}
    assert "already used" in str(c.take(key, 111))

    late = c.ask(111, "stop", {"strategy": "x"})
    now[0] += 60.5
    assert "expired" in str(c.take(late, 111))
    assert "already used" in str(c.take(late, 111))  # and it is gone
    assert "unknown" in str(c.take("forged", 111))


def test_control_toml_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "control.toml"
    assert not load_control(path).telegram.enabled  # no file: the bot off

    path.write_text("[telegram]\nenabled = true\nallowed_users = [1]\nconfirm = 3\n")
    with pytest.raises(ConfigError, match=r"telegram\.confirm: Extra inputs"):
        load_control(path)
    path.write_text('[telegram]\nenabled = true\nallowed_users = ["me"]\n')
    with pytest.raises(ConfigError, match=r"allowed_users\.0"):
        load_control(path)

    monkeypatch.delenv("MT_TELEGRAM_CONTROL_TOKEN", raising=False)
    path.write_text("[telegram]\nenabled = true\n")
    with pytest.raises(ConfigError) as e:
        load_control(path)
    assert "allowed_users: empty" in str(e.value) and "no token in MT_TELEGRAM" in str(e.value)

    path.write_text("[telegram]\nenabled = true\nallowed_users = [5]\n")
    monkeypatch.setenv("MT_TELEGRAM_CONTROL_TOKEN", "not-a-token")
    with pytest.raises(ConfigError, match="malformed"):
        load_control(path)
    monkeypatch.setenv("MT_TELEGRAM_CONTROL_TOKEN", TOKEN)
    assert load_control(path).telegram.allowed_users == [5]


def test_the_token_never_reaches_the_log() -> None:
    rec = logging.LogRecord(
        "httpx", logging.WARNING, "", 0, "POST %s failed", (f"https://x/bot{TOKEN}/getMe",), None
    )
    assert Redact(TOKEN).filter(rec)
    assert TOKEN not in rec.getMessage() and "bot<token>/getMe" in rec.getMessage()


def test_strangers_are_recorded_and_alerted_once_a_day_each_and_a_crowd_is_counted(
    tmp_path: Path,
) -> None:
    import asyncio

    from telegram import Bot as TgBot
    from telegram import Update
    from telegram.ext import ApplicationHandlerStop

    from mytrading.control.bot import MAX_STRANGERS_A_DAY, Bot
    from mytrading.control.config import TelegramControl
    from mytrading.control.record import CommandRecord

    record = CommandRecord(tmp_path / "control.sqlite")
    alerts: list[str] = []
    bot = Bot(TelegramControl(enabled=True, allowed_users=[1]), None, record,  # type: ignore[arg-type]
              lambda key, text: alerts.append(key))  # fmt: skip
    tg = TgBot(TOKEN)

    def update(uid: int, n: int) -> Update:
        return Update.de_json(
            {"update_id": n, "message": {"message_id": n, "date": 0, "text": "/status",
             "chat": {"id": uid, "type": "private"},
             "from": {"id": uid, "is_bot": False, "first_name": "x"}}},
            tg,
        )  # fmt: skip

    async def gate(u: Update) -> bool:
        try:
            await bot._gate(u, None)  # type: ignore[arg-type]
        except ApplicationHandlerStop:
            return False
        return True

    async def run() -> None:
        assert await gate(update(1, 1))  # allowed: on to the handlers
        for n in range(3):
            assert not await gate(update(99, 10 + n))  # a stranger: stopped, each time
        for uid in range(1000, 1000 + 2 * MAX_STRANGERS_A_DAY):
            assert not await gate(update(uid, uid))

    asyncio.run(run())
    assert alerts.count("telegram:99") == 1
    assert len(alerts) == MAX_STRANGERS_A_DAY  # a crowd of senders: the rest counted
    assert bot.counts["strangers"] == 3 + 2 * MAX_STRANGERS_A_DAY
    assert sum(1 for e in record.recent(500) if e.who == "unauthorized") == MAX_STRANGERS_A_DAY
    record.close()
