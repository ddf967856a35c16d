"""The embedded, procedurally rendered benchmark (placeholder until written)."""
