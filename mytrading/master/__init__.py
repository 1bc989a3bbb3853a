"""The broker's master contract: lot sizes, tick sizes, expiries and strikes from the source."""
