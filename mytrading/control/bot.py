"""The Telegram bot: the command layer (``control/actions.py``) from a phone.

A supervised process of the stack (``[program:telegram]``, started when
``config/control.toml`` enables it), built on python-telegram-bot's long polling. It holds
no order and no position: it reads the daemons' heartbeats and hands risk a command, as
``main.py control`` does, so a Telegram outage (or this process's) never touches trading,
and the library retries the Bot API with backoff until it answers again.

* Only ``allowed_users`` (and, when set, only in ``allowed_chats``) are answered. Anyone
  else changes nothing and gets no reply; the first message of each sender a day is on
  the record and raises one alert (``control_stranger``) through the alert channels (for
  the first ``MAX_STRANGERS_A_DAY`` senders; more are counted in the log's last line).
* ``/stop`` and ``/killswitch`` ask for a confirmation: a button good once, for
  ``confirm_s`` (60 s), for the user who asked only (``control/confirm.py``).
* Every command is recorded with who (``telegram:<user id>``) and from which chat.

The token is read from the variable ``token_env`` names and never logged: the HTTP
library's request lines (which hold it in the URL) are kept below the log level, and a
filter blanks it from any line that would carry it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import NetworkError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from mytrading.control.actions import KILL_VALUES, Answer, Caller, Control
from mytrading.control.config import TelegramControl
from mytrading.control.confirm import Confirmations, Pending
from mytrading.control.record import CommandRecord
from mytrading.control.stackthread import StackThread
from mytrading.control.strategyfile import StrategyFile, parse_values
from mytrading.domain.refdata import IST

NAME = "telegram"
STRANGER_RULE = "control_stranger"
MAX_TEXT = 3900  # Telegram's limit is 4096 characters a message
POLL_TIMEOUT_S = 10  # getUpdates' long poll
MAX_STRANGERS_A_DAY = 20  # senders not allowed recorded and alerted a day; the rest counted

log = structlog.get_logger(NAME)

HELP = """mytrading commands
/status  the daemons, the stack's state, margin
/pnl  gross, charges and net per strategy and for the stack
/positions  open positions
/trades  today's fills
/halted  trading states with why, who and when
/schedule  today's plan: each scheduled strategy's days and hours
/shadow  the latest day's live trading against its own backtest, by cause
/pause NAME  no new entries (exits and stops keep working)
/resume NAME  active again (also lifts a halt)
/stop NAME  flatten it through risk's exits, then paused (asks to confirm)
/killswitch on|off|flatten  the whole stack (asks to confirm)
/enable NAME, /disable NAME  start or stop a (flat) strategy on the running engine
/params NAME key=value ...  new parameters for a running, flat strategy
/help  this list"""

READS: dict[str, Callable[[Control], Answer]] = {
    "status": lambda c: c.status(),
    "pnl": lambda c: c.pnl(),
    "positions": lambda c: c.positions(),
    "trades": lambda c: c.trades(),
    "halted": lambda c: c.halted(),
    "schedule": lambda c: c.schedule(),
    "shadow": lambda c: c.shadow(),
}
ONE_NAME = ("pause", "resume", "stop", "enable", "disable")
CONFIRMED = ("stop", "killswitch")


class Redact(logging.Filter):
    """Blanks the bot's token from any log line (an HTTP error can quote its URL)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and self.secret in record.getMessage():
            record.msg = record.getMessage().replace(self.secret, "<token>")
            record.args = None
        return True


class Bot:
    def __init__(
        self,
        cfg: TelegramControl,
        stack: StackThread,
        record: CommandRecord,
        raise_alert: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
        parent: int | None = None,
    ) -> None:
        """``parent``: the supervisor's pid, watched (its death stops the bot)."""
        self.cfg = cfg
        self.parent = parent
        self.stack = stack
        self.record = record  # the event loop's own connection (strangers)
        self.raise_alert = raise_alert
        self.confirms = Confirmations(cfg.confirm_s, clock)
        self.allowed_users = set(cfg.allowed_users)
        self.allowed_chats = set(cfg.allowed_chats)
        # senders not allowed, said today (at most MAX_STRANGERS_A_DAY: a flood from many
        # accounts is counted, not recorded or alerted one by one)
        self.strangers_seen: set[int] = set()
        self._strangers_day = ""
        self.counts = {"commands": 0, "strangers": 0, "refused_presses": 0}

    def build(self, token: str) -> Application[Any, Any, Any, Any, Any, Any]:
        api = self.cfg.api.rstrip("/")
        app = (
            Application.builder()
            .token(token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .concurrent_updates(8)  # a stranger's flood never queues an allowed user
            .get_updates_read_timeout(POLL_TIMEOUT_S + 10)
            .post_init(self._started)
            .build()
        )
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        for name in READS:
            app.add_handler(CommandHandler(name, self._read))
        for name in ONE_NAME:
            app.add_handler(CommandHandler(name, self._one_name))
        app.add_handler(CommandHandler("killswitch", self._killswitch))
        app.add_handler(CommandHandler("params", self._params))
        app.add_handler(CommandHandler(["help", "start"], self._help))
        app.add_handler(CallbackQueryHandler(self._pressed))
        app.add_handler(MessageHandler(filters.ALL, self._unknown))
        app.add_error_handler(self._error)
        return app

    # ------------------------------------------------------------------ the gate

    def allowed(self, update: Update) -> bool:
        user = update.effective_user
        chat = update.effective_chat
        if user is None or user.id not in self.allowed_users:
            return False
        return not self.allowed_chats or (chat is not None and chat.id in self.allowed_chats)

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anyone not allowed: nothing done, no reply; once a day on record and alerted."""
        if self.allowed(update):
            return
        self.counts["strangers"] += 1
        user = update.effective_user
        chat = update.effective_chat
        uid = user.id if user is not None else 0
        day = datetime.now(IST).date().isoformat()
        if self._strangers_day != day:  # a new day: each sender said once again
            self._strangers_day, self.strangers_seen = day, set()
        if uid not in self.strangers_seen and len(self.strangers_seen) < MAX_STRANGERS_A_DAY:
            self.strangers_seen.add(uid)
            msg = update.effective_message
            said = (msg.text or "")[:60] if msg is not None else "(a button)"
            where = f"chat {chat.id}" if chat is not None else ""
            self.record.add(
                "unauthorized", "telegram", f"telegram:{uid} {where}".strip(), "message",
                {"text": said}, "refused", "not an allowed user",
            )  # fmt: skip
            handle = f" (@{user.username})" if user is not None and user.username else ""
            self.raise_alert(
                f"telegram:{uid}",
                f"a Telegram user not allowed, {uid}{handle} in {where or 'no chat'}, "
                f"wrote to the control bot: {said!r}; nothing was done and no reply sent "
                "(said once a day per sender; config/control.toml allowed_users)",
            )
            log.warning("a stranger wrote to the bot", user=uid, chat=where)
        raise ApplicationHandlerStop

    # ------------------------------------------------------------------ commands

    def _caller(self, update: Update) -> Caller:
        user = update.effective_user
        chat = update.effective_chat
        return Caller(
            f"telegram:{user.id if user else 0}",
            "telegram",
            f"chat {chat.id}" if chat is not None else "",
        )

    async def _run(self, caller: Caller, fn: Callable[[Control], Answer]) -> Answer:
        self.counts["commands"] += 1
        return await asyncio.wrap_future(self.stack.submit(caller, fn))

    async def _reply(self, update: Update, text: str, **kw: Any) -> None:
        msg = update.effective_message
        if msg is not None:
            await msg.reply_text(_pre(text), parse_mode="HTML", **kw)

    async def _read(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        name = _command_of(update)
        answer = await self._run(self._caller(update), READS[name])
        await self._reply(update, answer.text)

    async def _one_name(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        command = _command_of(update)
        args = context.args or []
        caller = self._caller(update)
        if len(args) != 1:
            names = (await self._run(caller, lambda c: _names(c))).text
            await self._reply(update, f"/{command} NAME: one of {names}")
            return
        name = args[0]
        if command in CONFIRMED:
            await self._ask(update, command, {"strategy": name},
                            f"Stop {name}: pause it and close its positions?")  # fmt: skip
            return
        answer = await self._run(caller, lambda c: getattr(c, command)(name))
        await self._reply(update, answer.text)

    async def _killswitch(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        if len(args) != 1 or args[0] not in KILL_VALUES:
            await self._reply(update, f"/killswitch {'|'.join(KILL_VALUES)}")
            return
        value = args[0]
        what = {
            "on": "Kill switch ON: no new entries anywhere?",
            "off": "Kill switch OFF: trading again?",
            "flatten": "Kill switch FLATTEN: halt everything and close every position?",
        }[value]
        await self._ask(update, "killswitch", {"state": value}, what)

    async def _params(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        got = parse_values(args[1:]) if len(args) >= 2 else "give NAME key=value ..."
        if isinstance(got, str):
            await self._reply(update, f"/params NAME key=value ...: {got}")
            return
        name = args[0]
        answer = await self._run(self._caller(update), lambda c: c.set_params(name, got))
        await self._reply(update, answer.text)

    async def _ask(self, update: Update, command: str, args: dict[str, str], text: str) -> None:
        user = update.effective_user
        key = self.confirms.ask(user.id if user else 0, command, args)
        buttons = InlineKeyboardMarkup(
            [[
                InlineKeyboardButton("Confirm", callback_data=f"y:{key}"),
                InlineKeyboardButton("Cancel", callback_data=f"n:{key}"),
            ]]
        )  # fmt: skip
        await self._reply(
            update, f"{text}\n(good for {self.cfg.confirm_s:g} s, for you only)",
            reply_markup=buttons,
        )  # fmt: skip

    async def _pressed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        if q is None or not q.data or ":" not in q.data:
            return
        yes, key = q.data.split(":", 1)
        taken = self.confirms.take(key, q.from_user.id)
        caller = self._caller(update)
        if isinstance(taken, str):
            self.counts["refused_presses"] += 1
            self.record.add(caller.who, "telegram", caller.origin, "confirm",
                            {"button": yes}, "refused", taken)  # fmt: skip
            await q.answer(taken, show_alert=True)
            return
        if yes != "y":
            await q.answer("cancelled")
            await q.edit_message_text("cancelled: nothing was changed")
            return
        await q.answer("working...")
        answer = await self._run(caller, _confirmed(taken))
        await q.edit_message_text(_pre(answer.text), parse_mode="HTML")

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, HELP)

    async def _unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        said = (msg.text or "") if msg is not None else ""
        await self._reply(update, f"unknown command {said.split()[0] if said else ''!r}\n{HELP}")

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # a network error is the library's to retry (with backoff); anything else is said,
        # never a crash
        err = context.error
        event = (
            "the Bot API unreachable: retrying with backoff"
            if isinstance(err, NetworkError)
            else "telegram handler error"
        )
        log.warning(event, error=type(err).__name__, text=str(err)[:200])

    async def _started(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        me = app.bot
        log.info("telegram bot polling", bot=me.username, api=self.cfg.api,
                 allowed_users=len(self.allowed_users))  # fmt: skip
        if self.parent is not None:
            app.create_task(_watch_parent(app, self.parent))


def _confirmed(p: Pending) -> Callable[[Control], Answer]:
    if p.command == "stop":
        return lambda c: c.stop(str(p.args["strategy"]))
    return lambda c: c.kill_switch(str(p.args["state"]))


def _names(c: Control) -> Answer:
    return Answer(True, False, ", ".join(c.strategies()) or "none", read=True)


def _command_of(update: Update) -> str:
    msg = update.effective_message
    text = (msg.text or "") if msg is not None else ""
    return text.split()[0].lstrip("/").split("@")[0].lower() if text else ""


def _pre(text: str) -> str:
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n... (cut: `main.py control` on the host has it whole)"
    return f"<pre>{html.escape(text, quote=False)}</pre>"


async def _watch_parent(app: Application[Any, Any, Any, Any, Any, Any], parent: int) -> None:
    from mytrading.process import instance

    while not instance.parent_gone(parent):
        await asyncio.sleep(1.0)
    log.warning("supervisor gone: stopping")
    app.stop_running()


def main() -> None:
    """``python -m mytrading.control.bot``: exit 2 on a configuration that cannot run."""
    from mytrading.config import for_process
    from mytrading.control.busview import BusView, known_strategies
    from mytrading.monitor.store import AlertStore
    from mytrading.process import instance
    from mytrading.process.logsetup import setup_logging
    from mytrading.process.rundir import private_umask
    from mytrading.process.shell import hold_instance_lock
    from mytrading.settings import ConfigError

    private_umask()
    try:
        config = for_process()
        s = config.settings
        cfg = config.control.telegram
        channels = [c.name for c in config.channels]
    except (ConfigError, ValueError) as exc:
        print(f"{NAME}: configuration error:\n{exc}", file=sys.stderr)
        sys.exit(2)
    if not cfg.enabled:
        print(f"{NAME}: off in config/control.toml ([telegram] enabled = false)", file=sys.stderr)
        sys.exit(2)
    setup_logging(NAME, s.log_dir, s.logs.level, rotation=s.logs.rotation())
    token = cfg.token()
    for h in logging.getLogger().handlers:
        h.addFilter(Redact(token))
    lock = hold_instance_lock(NAME, s)
    parent = None
    if instance.supervised():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the getppid() watch stops us
        parent = instance.die_with_parent()

    alerts = AlertStore(s.stores.alerts_db)

    def raise_alert(key: str, text: str) -> None:
        now = time.time()
        if alerts.last_message(STRANGER_RULE, key) >= _day_start(now):
            return  # once a day per sender, across restarts too
        alerts.add(now, STRANGER_RULE, key, "warning", "fire",
                   f"[WARNING] mytrading {STRANGER_RULE}: {text}", channels)  # fmt: skip

    stack = StackThread(
        lambda: BusView(s),
        s.stores.control_db,
        lambda: known_strategies(s),
        StrategyFile(s),
        reports_dir=s.log_dir / "reports",
    )
    stack.start()
    record = CommandRecord(s.stores.control_db)
    bot = Bot(cfg, stack, record, raise_alert, parent=parent)
    log.info("starting", pid=os.getpid(), api=cfg.api, token_env=cfg.token_env)
    code = 0
    try:
        bot.build(token).run_polling(
            timeout=POLL_TIMEOUT_S,
            bootstrap_retries=-1,  # the Bot API unreachable at start: tried again, backing off
            allowed_updates=["message", "callback_query"],
            close_loop=True,
        )
    except Exception:
        log.critical("telegram bot failed", exc_info=True)
        code = 1
    finally:
        log.info("stopped", **bot.counts)
        stack.stop()
        record.close()
        alerts.close()
        lock.release()
    sys.exit(code)


def _day_start(now: float) -> float:
    d = datetime.fromtimestamp(now, IST)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


if __name__ == "__main__":
    main()
