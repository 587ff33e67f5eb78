"""demand-predictor: real-time ridesharing demand inference service."""

__version__ = "1.0.0"
