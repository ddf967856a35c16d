"""Real data-set adapters (placeholder until written)."""
