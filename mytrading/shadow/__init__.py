"""Live against its own backtest (issue 53): each day's live trades paired with what the
backtest does over the same recorded market, and every rupee of difference put to a
named cause (``day.py`` runs it, ``pairing.py`` pairs and bridges, ``trades.py`` reads
both sides in paise)."""
