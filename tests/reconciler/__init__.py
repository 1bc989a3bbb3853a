"""Tests of mytrading/reconciler."""
