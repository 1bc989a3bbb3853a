"""Indicators in two forms with identical results.

``vector.py``: whole histories (numba); ``stream.py``: O(1) per new bar.
"""
