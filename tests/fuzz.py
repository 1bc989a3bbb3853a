"""Hypothesis strategies shared by the webhook fuzz tests: request bodies that are bytes,
or JSON objects of alert-like fields with values of any JSON type."""

from __future__ import annotations

import json

from hypothesis import strategies as st

ALERT_FIELDS = ["symbol", "action", "quantity", "position_size", "contracts", "stocks",
                "scan_name", "passphrase", "exchange", "apikey", "x"]  # fmt: skip

json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=3),
)


def alert_bodies(max_size: int = 300, random_keys: bool = False) -> st.SearchStrategy[bytes]:
    """Raw bytes, or a JSON object of up to six fields (alert field names, and with
    ``random_keys`` any text too)."""
    keys = st.sampled_from(ALERT_FIELDS)
    if random_keys:
        keys = st.one_of(keys, st.text(max_size=12))
    objects = st.dictionaries(keys, json_values, max_size=6).map(lambda d: json.dumps(d).encode())
    return st.one_of(st.binary(max_size=max_size), objects)
