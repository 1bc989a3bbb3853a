"""Live against its own backtest (issue 53): each day's live trades paired with what the
backtest does over the same recorded market, and every rupee of difference put to a
named cause (``day.py`` runs it, ``pairing.py`` pairs and bridges, ``trades.py`` reads
both sides in paise)."""

# ``main.py backtest shadow``'s exit code when the running feed holds the recording and
# has not copied the day yet: the same command succeeds later (the monitor asks again)
SHADOW_LATER = 3
