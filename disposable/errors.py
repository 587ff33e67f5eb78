"""The one exception type users see: what went wrong and what to do about it."""

from __future__ import annotations


class DisposableError(Exception):
    """A failure with an actionable hint. `invoke` prints both and exits non-zero."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message
