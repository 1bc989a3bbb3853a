"""Tests of the shared modules (bus, wire, ids, reference data, configuration, layering)."""
