"""The engine daemon."""
