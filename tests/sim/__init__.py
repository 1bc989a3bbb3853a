"""Tests of mytrading/sim."""
