"""Tests of mytrading/webhook and the signals daemon."""
