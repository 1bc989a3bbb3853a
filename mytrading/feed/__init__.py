"""The feed daemon."""
