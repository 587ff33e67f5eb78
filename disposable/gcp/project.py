"""Which GCP project an environment lives in, and which zones its nightly tries.

The project is needed outside Terraform: the IAP ProxyCommand (`gcloud compute
start-iap-tunnel --project`), the janitor, the zone fallback's gcloud calls. Where it comes
from, first match wins:

1. the `project_id` output in `.state/<env>/outputs.json`: where Terraform did create the
   hosts (written by provision; the gcp roots output it beside the contract);
2. the environment root's `terraform.tfvars` (git-ignored; Terraform gives it precedence
   over TF_VAR_* variables, so it is also where a plan/apply would go);
3. explicitly given variables (`--var project_id=...`, passed to Terraform as TF_VAR_*);
4. the variables of the last provision (`.state/<env>/provision-vars.json`);
5. `TF_VAR_project_id` in the environment (the nightly workflow sets it).

An empty string means unknown. Pure file and environment reads, no GCP calls.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from disposable.paths import TERRAFORM_DIR, state_root

PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
# `project_id = "my-project"` at the top level of a .tfvars file (comments and other
# variables ignored); enough for the one string variable this needs.
_TFVARS_PROJECT = re.compile(r'^\s*project_id\s*=\s*"([^"]*)"\s*(?:#.*|//.*)?$', re.MULTILINE)
ZONES_ENV = "DML_GCP_ZONES"  # the nightly workflow sets it from the GCP_ZONES repository variable


def stack_dir(env: str) -> Path:
    """The Terraform root of a GCP environment (terraform/environments/<env>)."""
    from disposable.environments import ENVIRONMENTS

    known = ENVIRONMENTS.get(env)
    return known.stack if known else TERRAFORM_DIR / "environments" / env


def tfvars_file(env: str) -> Path:
    return stack_dir(env) / "terraform.tfvars"


def _valid(project: object) -> str:
    return project if isinstance(project, str) and PROJECT_ID.match(project) else ""


def from_outputs(env: str) -> str:
    path = state_root() / env / "outputs.json"  # paths.outputs_file would create the directory
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    value = outputs.get("project_id") if isinstance(outputs, dict) else None
    if isinstance(value, dict):
        value = value.get("value")
    return _valid(value)


def from_tfvars(env: str) -> str:
    try:
        text = tfvars_file(env).read_text()
    except OSError:
        return ""
    found = _TFVARS_PROJECT.findall(text)
    return _valid(found[-1]) if found else ""


def from_provision_vars(env: str) -> str:
    path = state_root() / env / "provision-vars.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    return _valid(data.get("project_id")) if isinstance(data, dict) else ""


def project_for(env: str, variables: Mapping[str, str] | None = None) -> str:
    """The GCP project of `env` (see the module docstring for the order); "" when unknown."""
    candidates = (
        lambda: from_outputs(env),
        lambda: from_tfvars(env),
        lambda: _valid((variables or {}).get("project_id")),
        lambda: from_provision_vars(env),
        lambda: _valid(os.environ.get("TF_VAR_project_id")),  # noqa: SIM112 (Terraform's name)
    )
    for candidate in candidates:
        project = candidate()
        if project:
            return project
    return ""


def parse_zone_list(text: str) -> list[str]:
    """'us-central1-a, us-central1-b' -> ['us-central1-a', 'us-central1-b'] (order kept);
    anything that is not a zone name is dropped."""
    return [z for z in (part.strip() for part in text.replace(" ", ",").split(",")) if ZONE.match(z)]


def nightly_zones(zones: Sequence[str]) -> list[str]:
    """The zones a GCP nightly tries: those given (`--zones`), else $DML_GCP_ZONES."""
    return list(zones) if zones else parse_zone_list(os.environ.get(ZONES_ENV, ""))
