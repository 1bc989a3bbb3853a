"""Tests of mytrading/risk."""
