"""The risk daemon."""
