"""Proof that hosts are what the code says: verify, drift, fingerprint, report, nightly."""
