"""Tests of mytrading/router."""
