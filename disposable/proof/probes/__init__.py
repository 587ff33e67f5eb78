"""Scripts that run on the managed hosts (python3 standard library only)."""
