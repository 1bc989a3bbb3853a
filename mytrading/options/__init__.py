"""Options helpers: Black-Scholes pricing, Greeks and implied volatility (numba), and
strike and expiry selection for OpenAlgo option symbols."""
