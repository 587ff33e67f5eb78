"""The GCP cloud's controller-side parts: zone fallback and the janitor."""
