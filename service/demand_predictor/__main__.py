"""Command line: ``python -m demand_predictor serve|verify|config``.

* ``serve``  - run the HTTP service (configuration from DP_* environment variables).
* ``verify`` - check the model artifact (manifest + weights sha256) and exit 0/2.
* ``config`` - print the effective configuration as JSON and exit (0, or 2 if invalid).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from demand_predictor import logs
from demand_predictor.config import ConfigError, load_settings

EXIT_BAD_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demand_predictor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("serve", "verify", "config"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"demand-predictor: configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logs.configure(settings.log_level)

    if args.command == "config":
        values = {k: str(v) for k, v in dataclasses.asdict(settings).items()}
        print(json.dumps(values, indent=2))
        return 0

    from demand_predictor import server  # imports torch: keep `config` fast

    if args.command == "verify":
        from demand_predictor.artifact import ArtifactError

        try:
            manifest = server.verify_artifact(settings).manifest
        except ArtifactError as exc:
            print(f"demand-predictor: {exc}", file=sys.stderr)
            return server.EXIT_BAD_ARTIFACT
        print(
            json.dumps(
                {
                    "model": manifest.name,
                    "version": manifest.version,
                    "sha256": manifest.sha256,
                    "status": "ok",
                }
            )
        )
        return 0
    return server.run(settings)


if __name__ == "__main__":
    sys.exit(main())
