"""disposable-ml: orchestration behind `invoke` (one job per module).

tasks.py only parses arguments and calls into this package.
"""
