"""An OpenAlgo-compatible server on the simulated market (issue 3, first part: REST)."""
