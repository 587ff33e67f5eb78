"""The GCP bake (disposable.gcp.bake): image from a configured host's boot disk in family
dml-gpu, host started again whatever happens. gcloud is a fake: no GCP here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from disposable.errors import DisposableError
from disposable.gcp.bake import FAMILY, bake_gcp
from disposable.hosts.contract import parse_outputs

PROJECT = "my-dml-project"
IMAGE = "dml-gpu-0123456789ab"


class FakeGcloud:
    def __init__(self, existing: bool = False, fail_create: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.existing = existing
        self.fail_create = fail_create

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        if args[:3] == ["compute", "images", "describe"]:
            if not self.existing:
                raise DisposableError("gcloud compute images describe failed (exit 1): not found")
            return IMAGE
        if args[:3] == ["compute", "images", "create"] and self.fail_create:
            raise DisposableError("gcloud compute images create failed (exit 1): quota")
        return ""


def _gcp_contract(outputs: dict[str, Any]) -> Any:
    data = json.loads(json.dumps(outputs))
    data["environment"]["value"] = "gcp"
    data["hosts"]["value"] = [h for h in data["hosts"]["value"] if h["connection"] == "iap"]
    return parse_outputs(data)


def test_bake_stops_images_into_the_family_and_starts(outputs: dict[str, Any]) -> None:
    gcloud = FakeGcloud()
    assert bake_gcp(_gcp_contract(outputs), PROJECT, IMAGE, gcloud, lambda _: None) == IMAGE
    assert [c[:3] for c in gcloud.calls] == [
        ["compute", "images", "describe"],
        ["compute", "instances", "stop"],
        ["compute", "images", "create"],
        ["compute", "instances", "start"],
    ]
    create = gcloud.calls[2]
    assert create[create.index("--family") + 1] == FAMILY == "dml-gpu"
    assert create[create.index("--source-disk") + 1] == "gpu-1"
    assert create[create.index("--source-disk-zone") + 1] == "us-central1-a"


def test_the_host_is_started_again_when_the_image_fails(outputs: dict[str, Any]) -> None:
    gcloud = FakeGcloud(fail_create=True)
    with pytest.raises(DisposableError, match="quota"):
        bake_gcp(_gcp_contract(outputs), PROJECT, IMAGE, gcloud, lambda _: None)
    assert gcloud.calls[-1][:3] == ["compute", "instances", "start"]


def test_an_existing_image_is_reused(outputs: dict[str, Any]) -> None:
    gcloud = FakeGcloud(existing=True)
    bake_gcp(_gcp_contract(outputs), PROJECT, IMAGE, gcloud, lambda _: None)
    assert [c[:3] for c in gcloud.calls] == [["compute", "images", "describe"]]


def test_no_project_no_bake(outputs: dict[str, Any]) -> None:
    with pytest.raises(DisposableError, match="does not know the project"):
        bake_gcp(_gcp_contract(outputs), "", IMAGE, FakeGcloud(), lambda _: None)
