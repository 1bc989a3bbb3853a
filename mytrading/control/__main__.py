"""``python -m mytrading.control``: the Telegram control bot (``control/bot.py``), the
program ``telegram`` of supervisord.conf."""

from mytrading.process.startguard import gate

gate("telegram")  # before the imports: a bot that keeps failing at start exits at once

from mytrading.control.bot import main  # noqa: E402

main()
