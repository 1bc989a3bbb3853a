"""Tests of mytrading/openalgo."""
