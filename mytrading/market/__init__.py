"""The simulated market: prices for the embedded default."""
