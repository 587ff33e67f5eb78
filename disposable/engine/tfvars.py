"""`--var NAME=VALUE` parsing, checked before Terraform runs."""

from __future__ import annotations

import re

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
