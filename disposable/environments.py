"""The environments `--env` can name, and the Terraform stack behind each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from disposable.errors import DisposableError
from disposable.paths import TERRAFORM_DIR


@dataclass(frozen=True)
class Environment:
    name: str
    stack: Path  # Terraform root module
    cloud: str  # "lxd" (local cloud) or "gcp"
    description: str

    @property
    def is_local(self) -> bool:
        return self.cloud == "lxd"


ENVIRONMENTS: dict[str, Environment] = {
    "local": Environment(
        name="local",
        stack=TERRAFORM_DIR / "environments" / "local",
        cloud="lxd",
        description="LXD system containers on this machine (the default; no cloud account)",
    ),
    "gcp": Environment(
        name="gcp",
        stack=TERRAFORM_DIR / "environments" / "gcp",
        cloud="gcp",
        description="GCE n1-standard-4 + NVIDIA T4 in a GCP project (docs/gcp.md)",
    ),
}


def get_environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise DisposableError(
            f"Unknown environment {name!r}.",
            f"Use --env with one of: {known}.",
        ) from None
