"""Tests of mytrading/monitor."""
