"""Tests of mytrading/engine."""
