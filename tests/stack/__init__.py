"""Tests of the whole stack: processes, supervisord, start/stop, going live, restarts."""
