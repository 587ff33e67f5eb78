"""Benchmark: this service vs naive per-request inference vs the HTTP floor (vs LitServe)."""
