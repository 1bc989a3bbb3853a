"""Steering the running stack: one command layer that the command line and the HTTP API
(``control/api.py``, with its page) call, and the Telegram bot is to, so they cannot
disagree (``control/actions.py``);
every command kept with who asked, from where, when, what and what came of it
(``control/record.py``)."""
