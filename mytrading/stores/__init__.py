"""Stores and backup: DuckDB's market-data recording (``recording``), the schema versions
every store carries (``schema``) and a consistent copy of the state (``backup``)."""
