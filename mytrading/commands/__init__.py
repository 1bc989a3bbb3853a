"""The command line, one module per area of commands (``main`` builds the app)."""
