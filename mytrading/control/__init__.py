"""Steering the running stack: one command layer that the command line (and, later, the
Telegram bot and the HTTP API) calls, so they cannot disagree (``control/actions.py``);
every command kept with who asked, from where, when, what and what came of it
(``control/record.py``)."""
