"""`--var NAME=VALUE` parsing, checked before Terraform runs."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from disposable.errors import DisposableError

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Variables the invoke tasks supply themselves; setting them by hand would bypass bootstrap.
RESERVED = {"ssh_public_key", "environment"}


def parse_var_pairs(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not NAME.match(name):
            raise DisposableError(
                f"Bad --var {pair!r}.", "Write --var NAME=VALUE, e.g. --var host_count=2 (lowercase name)."
            )
        if name in RESERVED:
            raise DisposableError(f"--var {name} is set by invoke itself and cannot be overridden.")
        if name == "host_count" and not (value.isdigit() and int(value) >= 1):
            raise DisposableError(f"--var host_count={value}: must be a whole number >= 1.")
        values[name] = value
    return values


def declared_variables(stack: Path) -> set[str]:
    """The variable names a Terraform root declares (its *.tf files)."""
    found: set[str] = set()
    for path in stack.glob("*.tf"):
        found.update(re.findall(r'^variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"', path.read_text(), re.MULTILINE))
    return found


def check_declared(values: dict[str, str], stack: Path, environment: str) -> None:
    """Refuse a --var the environment does not declare (a typo such as host_cuont would
    otherwise be ignored by Terraform, and remembered)."""
    declared = declared_variables(stack) - RESERVED
    unknown = sorted(set(values) - declared)
    if unknown:
        suggestions = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            suggestions.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise DisposableError(
            f"Environment {environment} has no variable {', '.join(suggestions)}.",
            f"Its variables: {', '.join(sorted(declared))}.",
        )


def number(value: object, option: str, kind: type[int] | type[float] = int, minimum: float | None = None) -> float:
    """A numeric command-line option, or a one-line error naming it."""
    try:
        parsed = kind(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DisposableError(f"{option}={value}: not a {'whole ' if kind is int else ''}number.") from None
    if minimum is not None and parsed < minimum:
        raise DisposableError(f"{option}={value}: must be at least {minimum:g}.")
    return parsed
