"""The monitor daemon: alerts, Prometheus metrics and the dashboard (docs/monitoring.md)."""
