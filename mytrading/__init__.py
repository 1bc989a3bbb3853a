"""mytrading: a multi-process trading stack for Indian markets through OpenAlgo."""
