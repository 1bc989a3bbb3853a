"""The Telegram control bot as a process (``python -m mytrading.control``) against a
stand-in of the Bot API (``tests/telegramstub.py``) and real daemons (router and risk on
the in-process simulated broker: the bot commands risk; the engine's part is the command
line test's, the same layer): every command from an allowed user, a
stranger's flood ignored (no reply, one alert, allowed users still answered at once), a
confirmation pressed by another user, twice and too late, the kill switch through its
button, the bot's network down and back, and the CLI agreeing with the bot."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from mytrading.control.record import CommandRecord
from mytrading.monitor.store import AlertStore
from tests.procs import Watcher, cli, settings_of, spawn, stop_all
from tests.telegramstub import TOKEN, BotApiStub

NAME = "sma_crossover"
ALICE, BOB, STRANGER = 111, 222, 999


def _config(env: dict[str, str], api: str, tmp: Path) -> dict[str, str]:
    import shutil

    from mytrading.settings import PROJECT_ROOT

    cfg = tmp / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    (cfg / "control.toml").write_text(
        "[telegram]\nenabled = true\n"
        f'api = "{api}"\ntoken_env = "MT_TELEGRAM_CONTROL_TOKEN"\n'
        f"allowed_users = [{ALICE}, {BOB}]\nconfirm_s = 3\n"
    )
    return {**env, "MT_CONFIG_DIR": str(cfg), "MT_TELEGRAM_CONTROL_TOKEN": TOKEN}


@pytest.mark.integration
def test_the_bot_commands_the_stack_for_allowed_users_only(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    api = BotApiStub()
    env = _config(
        {
            **tmp_env,
            "MT_SIM_SPEED": "120",
            "MT_HEARTBEAT_S": "0.5",
        },
        api.url,
        tmp_path,
    )
    s = settings_of(env)
    w = Watcher(s, ("sys.status.",))
    procs = {d: spawn(d, env) for d in ("router", "risk", "control")}

    def say(user: int, text: str, timeout: float = 15.0) -> str:
        n = len(api.sent())
        api.message(user, text)
        return str(api.reply_to(user, n, timeout)["text"])

    try:
        w.wait(lambda: set(w.status) >= {"router", "risk"}, 60, "the daemons")
        api.wait(lambda: api.sent("getUpdates"), 30, "the bot polling")

        status = say(ALICE, "/status")
        cli_status = json.loads(cli("control", "status", "--json", env=env).stdout.splitlines()[-1])
        for name, d in cli_status["daemons"].items():  # the same daemons, the same pids
            assert re.search(rf"{name}\s+\S+\s+pid {d['pid']}", status), (name, status)

        assert "paused (confirmed by risk)" in say(ALICE, f"/pause {NAME}")
        assert "already" in say(ALICE, f"/pause {NAME}")
        assert NAME in say(ALICE, "/pause nope")  # the names that exist
        assert "resumed (was HALTED: paused by telegram:111 via telegram" in say(
            BOB, f"/resume {NAME}"
        )
        assert "/killswitch on|off|flatten" in say(ALICE, "/killswitch maybe")
        assert "unknown command" in say(ALICE, "/frobnicate")
        assert "GROSS" in say(ALICE, "/pnl")
        assert "no trades today" in say(ALICE, "/trades")  # (no engine here)
        say(ALICE, "/positions")
        assert "no strategy has a schedule" in say(ALICE, "/schedule")

        # A stranger's flood: no reply, nothing done, one alert; Alice answered meanwhile.
        for i in range(60):
            api.message(STRANGER, "/killswitch flatten" if i % 2 else "/status")
        t0 = time.monotonic()
        assert "stack:" in say(ALICE, "/halted")
        assert time.monotonic() - t0 < 5.0
        assert not [p for p in api.sent() if int(p["chat_id"]) == STRANGER]
        alerts = AlertStore(s.stores.alerts_db)
        try:
            said = [a for a in alerts.log(50) if a["rule"] == "control_stranger"]
        finally:
            alerts.close()
        assert len(said) == 1 and str(STRANGER) in said[0]["text"], said

        # The kill switch asks; Bob may not press Alice's button; hers works once.
        n = len(api.sent())
        api.message(ALICE, "/killswitch on")
        ask = api.reply_to(ALICE, n)
        assert "Kill switch ON" in ask["text"] and "reply_markup" in ask
        yes = ask["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        msg = api.messages[max(api.messages)]
        qid = api.press(BOB, msg, yes)
        answered = api.wait(
            lambda: [p for p in api.sent("answerCallbackQuery") if p["callback_query_id"] == qid],
            15, "Bob's press answered",
        )  # fmt: skip
        assert "only the person who asked" in answered[0]["text"]
        api.press(ALICE, msg, yes)
        api.wait(lambda: "kill switch on (confirmed by risk)" in msg["text"], 15, "the edit")
        qid = api.press(ALICE, msg, yes)  # twice: refused
        again = api.wait(
            lambda: [p for p in api.sent("answerCallbackQuery") if p["callback_query_id"] == qid],
            15, "the second press answered",
        )  # fmt: skip
        assert "already used" in again[0]["text"]
        w.wait(lambda: w.status["risk"].detail.get("kill_mode") == "on", 10, "risk's kill mode")

        # Too late (confirm_s = 3 here, for a loaded machine's presses; 60 by default):
        # refused, nothing changed.
        n = len(api.sent())
        api.message(ALICE, "/killswitch off")
        ask = api.reply_to(ALICE, n)
        msg = api.messages[max(api.messages)]
        time.sleep(3.5)
        qid = api.press(ALICE, msg, ask["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        late = api.wait(
            lambda: [p for p in api.sent("answerCallbackQuery") if p["callback_query_id"] == qid],
            15, "the late press answered",
        )  # fmt: skip
        assert "expired" in late[0]["text"]
        w.pump(1.0)  # risk's beats since: still on
        assert w.status["risk"].detail.get("kill_mode") == "on"

        # The bot's network down: the CLI still commands the stack; the bot comes back.
        api.down()
        r = cli("control", "kill-switch", "off", "--json", env=env)
        assert json.loads(r.stdout.splitlines()[-1])["changed"], r.stdout + r.stderr
        time.sleep(1.5)
        assert procs["control"].poll() is None
        api.up()
        assert re.search(r"risk\s+running", say(ALICE, "/status", timeout=45))  # answered again

        # Stop through its button.
        n = len(api.sent())
        api.message(ALICE, f"/stop {NAME}")
        ask = api.reply_to(ALICE, n)
        msg = api.messages[max(api.messages)]
        api.press(ALICE, msg, ask["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        api.wait(lambda: "stopping" in msg["text"], 15, "the stop")
        w.wait(
            lambda: w.status["risk"].detail["states"]["strategies"].get(NAME) == "halted",
            10, "risk's state",
        )  # fmt: skip

        # Two operators flatten at once: one flatten, one "already"
        asks = []
        for user in (ALICE, BOB):
            n = len(api.sent())
            api.message(user, "/killswitch flatten")
            ask = api.reply_to(user, n)
            data = ask["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            asks.append((user, api.messages[max(api.messages)], data))
        for user, msg, data in asks:
            api.press(user, msg, data)
        api.wait(lambda: all("kill switch" in m["text"] for _, m, _ in asks), 15, "both done")
        texts = [str(m["text"]) for _, m, _ in asks]
        assert sum("kill switch flatten (confirmed by risk)" in t for t in texts) == 1, texts
        assert sum("already flatten" in t for t in texts) == 1, texts
        risk_log = [json.loads(x) for x in (s.log_dir / "risk.log").read_text().splitlines()]
        flattens = [x for x in risk_log if x.get("event") == "trading state"
                    and x.get("state") == "flatten"]  # fmt: skip
        assert len(flattens) == 1, flattens

        rec = CommandRecord(s.stores.control_db)
        try:
            rows = rec.recent(200)
        finally:
            rec.close()
        mine = [r for r in rows if r.via == "telegram"]
        assert {"telegram:111", "telegram:222", "unauthorized"} <= {r.who for r in mine}
        assert any(r.command == "kill_switch" and r.outcome == "done" for r in mine)
        assert sum(1 for r in mine if r.who == "unauthorized") == 1  # once a day
        log = (s.log_dir / "telegram.log").read_text()
        assert TOKEN not in log and TOKEN.split(":")[1] not in log
    finally:
        api.down()
        stop_all(procs.values())
        w.close()
