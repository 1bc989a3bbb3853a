"""The reconciler daemon."""
