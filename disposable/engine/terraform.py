"""Run Terraform for one environment: init/plan/apply/destroy/output, with clear errors.

Everything the engine generates (data dir, local state, lock) lives in .state/<env>/.
`terraform init` reads providers only from the filesystem mirror and refuses a provider
that does not match the committed .terraform.lock.hcl.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disposable.console import CommandResult, run, say
from disposable.engine import providers as mirror
from disposable.engine.binary import Engine, find_engine
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.paths import state_dir

LOCK_ERROR = "Error acquiring the state lock"

# terraform-provider-lxd 1.5.0 builds its LXD client lazily with a check-then-create race
# (lxdProvider.GetServer): when an apply's first LXD calls are two or more containers
# created in parallel (the network already exists: a provision after a killed one, a
# scale-up), one create can get its instance server and its image server as two different
# client objects. The vendored LXD client (2019-12) decides "local image" by pointer
# identity (`r == source` in CreateInstanceFromImage), so that create takes the remote-copy
# path and fails before LXD creates anything. Nothing was created for that host and
# the other hosts are in state; one more apply creates only the missing host(s) (one alone
# cannot race); a second race in a row fails like any apply error. Newer clients compare
# servers (isSameServer); no newer provider is in the offline mirror. README "Decisions":
# the LXD provider's client race.
LXD_CLIENT_RACE = "The source server isn't listening on the network"


@dataclass
class Terraform:
    environment: Environment
    variables: Mapping[str, str] = field(default_factory=dict)
    lock_timeout: str = "60s"
    engine: Engine = field(default_factory=find_engine)

    @property
    def state_file(self) -> Path:
        return state_dir(self.environment.name) / "terraform.tfstate"

    def env(self) -> dict[str, str]:
        env = {
            "TF_CLI_CONFIG_FILE": str(mirror.cli_config_path()),
            "TF_DATA_DIR": str(state_dir(self.environment.name) / "tfdata"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        env.update({f"TF_VAR_{k}": v for k, v in self.variables.items()})
        return env

    def _run(self, *args: str, label: str, echo: bool = True) -> CommandResult:
        return run(
            [*self.engine.argv, f"-chdir={self.environment.stack}", *args], label=label, env=self.env(), echo=echo
        )

    def _check(self, result: CommandResult, what: str) -> CommandResult:
        if result.returncode == 0:
            return result
        if LOCK_ERROR in result.output:
            who = re.search(r"Who:\s+(.*)", result.output)
            created = re.search(r"Created:\s+(.*)", result.output)
            lock_id = re.search(r"ID:\s+(\S+)", result.output)
            raise DisposableError(
                f"terraform {what}: the {self.environment.name} state is locked by another run"
                f" ({who.group(1) if who else 'unknown'}, since {created.group(1) if created else '?'}); "
                f"gave up after waiting {self.lock_timeout}. Nothing was changed.",
                "Wait for the other run to finish and retry. If no other run is alive, release the lock with "
                f"`invoke unlock --env {self.environment.name} --lock-id {lock_id.group(1) if lock_id else 'ID'}`.",
            )
        raise DisposableError(f"terraform {what} failed (exit {result.returncode}); see the output above.")

    def backend_args(self) -> list[str]:
        """Local state for the local cloud; the GCS backend's bucket/prefix from backend.hcl for gcp."""
        if self.environment.is_local:
            # The state path follows the clone; -reconfigure accepts a moved clone (nothing to migrate).
            return [f"-backend-config=path={self.state_file}", "-reconfigure"]
        backend_file = self.environment.stack / "backend.hcl"
        if not backend_file.exists():
            raise DisposableError(
                f"{backend_file} is missing: the {self.environment.name} state lives in a GCS bucket.",
                f"Copy {backend_file.name}.example to {backend_file.name} and name your state bucket (docs/gcp.md).",
            )
        return [f"-backend-config={backend_file}"]

    def init(self) -> None:
        mirror.ensure_mirror()
        args = ["init", "-input=false", "-no-color", *self.backend_args()]
        if (self.environment.stack / ".terraform.lock.hcl").exists():
            args.append("-lockfile=readonly")  # refuse providers that differ from the committed lock
        else:
            say(f"WARNING: {self.environment.stack.name} has no .terraform.lock.hcl yet: init writes one; commit it.")
        result = self._run(*args, label="tf init", echo=False)
        if result.returncode != 0:
            print(result.output)
            raise DisposableError(
                "terraform init failed (output above).",
                "Run ./bootstrap.sh setup to rebuild the provider mirror; if you changed provider versions, "
                "update the stack's .terraform.lock.hcl (terraform providers lock).",
            )

    def apply_unchecked(self, *extra: str) -> CommandResult:
        """apply whose failure the caller classifies (zone fallback); a lock error still raises.
        extra: more arguments, e.g. -replace=ADDRESS."""
        result = self._run("apply", "-input=false", "-no-color", "-auto-approve", f"-lock-timeout={self.lock_timeout}",
                           *extra, label="tf apply")  # fmt: skip
        if result.returncode != 0 and LOCK_ERROR in result.output:
            self._check(result, "apply")
        return result

    def plan(self, *, detailed_exitcode: bool = False, destroy: bool = False) -> int:
        args = ["plan", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}"]
        if detailed_exitcode:
            args.append("-detailed-exitcode")
        if destroy:
            args.append("-destroy")
        result = self._run(*args, label="tf plan")
        if detailed_exitcode and result.returncode == 2:
            return 2
        self._check(result, "plan")
        return 0

    def planned_changes(self) -> list[str]:
        """What apply would do, one line per resource ('module.x.y["k"]: update'); [] when
        the infrastructure matches the configuration (plan -detailed-exitcode exit 0)."""
        plan_file = state_dir(self.environment.name) / "drift.tfplan"
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-lock-timeout={self.lock_timeout}"]
        result = self._run(*args, f"-out={plan_file}", label="tf plan")
        try:
            if result.returncode == 0:
                return []
            if result.returncode != 2:
                self._check(result, "plan")
            shown = self._run("show", "-json", "-no-color", str(plan_file), label="tf show", echo=False)
            self._check(shown, "show")
            changes = _json_object(shown.output).get("resource_changes") or []
            return [
                f"{change['address']}: {'/'.join(change['change']['actions'])}"
                for change in changes
                if change["change"]["actions"] not in (["no-op"], ["read"])
            ]
        finally:
            plan_file.unlink(missing_ok=True)

    def apply(self, *extra: str) -> CommandResult:
        result = self.apply_unchecked(*extra)
        if result.returncode != 0 and self.environment.is_local and LXD_CLIENT_RACE in result.output:
            say(
                "WARNING: terraform-provider-lxd 1.5.0 raced building its LXD client (two clients for one "
                f"remote, so a create took the remote-image path: {LXD_CLIENT_RACE!r}). No container was "
                "created for that host; applying once more (README: Decisions, 'the LXD provider's client race')."
            )
            result = self.apply_unchecked(*extra)
        return self._check(result, "apply")

    def destroy(self) -> CommandResult:
        return self._check(
            self._run(
                "destroy",
                "-input=false",
                "-no-color",
                "-auto-approve",
                f"-lock-timeout={self.lock_timeout}",
                label="tf destroy",
            ),
            "destroy",
        )

    def outputs(self) -> dict[str, Any]:
        result = self._run("output", "-json", label="tf output", echo=False)
        self._check(result, "output")
        return dict(_json_object(result.output))

    def state_resources(self) -> list[dict[str, Any]]:
        """Managed resources in state: [{address, type, values}], without refreshing."""
        if not self.state_file.exists():
            return []
        result = self._run("show", "-json", "-no-color", label="tf show", echo=False)
        self._check(result, "show")
        values = _json_object(result.output).get("values") or {}
        found: list[dict[str, Any]] = []

        def walk(module: dict[str, Any]) -> None:
            for res in module.get("resources", []):
                if res.get("mode") == "managed":
                    found.append({"address": res["address"], "type": res["type"], "values": res.get("values", {})})
            for child in module.get("child_modules", []):
                walk(child)

        walk(values.get("root_module") or {})
        return found

    def state_rm(self, address: str) -> None:
        args = ["state", "rm", "-no-color", f"-lock-timeout={self.lock_timeout}"]
        if self.environment.is_local:  # the backup goes next to the state, not into the stack's directory
            args.append(f"-backup={self.state_file}.rm-backup")
        self._check(self._run(*args, address, label="tf state rm"), "state rm")

    def force_unlock(self, lock_id: str) -> None:
        self._check(self._run("force-unlock", "-force", lock_id, label="tf unlock"), "force-unlock")


def _json_object(output: str) -> dict[str, Any]:
    """The JSON object in a command's output (warnings about the CLI config may precede it)."""
    return dict(json.loads(output[output.index("{") :])) if "{" in output else {}


def fmt_check(path: Path, engine: Engine | None = None) -> bool:
    """`terraform fmt -check` over a tree; prints the diff of any file that is not formatted."""
    argv = (engine or find_engine()).argv
    return run([*argv, "fmt", "-check", "-recursive", "-diff", str(path)], label="tf fmt").returncode == 0
