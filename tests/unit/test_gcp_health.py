"""`invoke verify`'s readiness check on GCP: a private (`iap`) host is probed ON the host over
the SSH/IAP path Ansible uses, because the controller has no route to its private address;
local (`direct`) hosts keep the direct HTTP GET. The SSH runner is a fake: no host, no GCP."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from disposable.errors import DisposableError
from disposable.hosts import health
from disposable.hosts.contract import parse_outputs
from disposable.proof import verify


class FakeSsh:
    """Answers the remote probe with the given outputs in turn; records every argv."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _gcp_only(outputs: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(outputs))
    data["environment"]["value"] = "gcp"
    data["hosts"]["value"] = [h for h in data["hosts"]["value"] if h["connection"] == "iap"]
    return data


@pytest.fixture
def no_http(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """httpx.get must not be used for private hosts: record any call."""
    urls: list[str] = []

    def refuse(url: str, **kwargs: Any) -> httpx.Response:
        urls.append(url)
        raise httpx.ConnectTimeout("no route to the private address")

    monkeypatch.setattr(health.httpx, "get", refuse)
    return urls


def test_a_private_host_is_checked_on_the_host_over_iap(
    outputs: dict[str, Any], state_dir: Path, no_http: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_VAR_project_id", "dml-prod-123")
    monkeypatch.setattr(health.time, "sleep", lambda s: None)
    ssh = FakeSsh((0, '503 {"status": "loading model"}'), (0, '200 {"status": "ready"}'))
    waited = health.wait_ready(parse_outputs(_gcp_only(outputs)), runner=ssh)

    assert list(waited) == ["gpu-1"] and no_http == []
    argv = ssh.calls[0]
    assert argv[0] == "ssh" and "deploy@10.0.0.7" in argv
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    assert proxy.startswith("ProxyCommand=gcloud compute start-iap-tunnel gpu-1 %p --listen-on-stdin")
    assert "--zone=us-central1-a" in proxy
    assert "StrictHostKeyChecking=yes" in argv
    remote = argv[-1]
    assert remote.startswith("python3 -c ") and "http://127.0.0.1:8080/readyz" in remote
    assert len(ssh.calls) == 2  # 503 first, then ready


def test_an_unreachable_private_host_fails_with_what_ssh_said(
    outputs: dict[str, Any], state_dir: Path, no_http: list[str]
) -> None:
    refused = "ERROR: (gcloud.compute.start-iap-tunnel) Error while connecting [4003: 'failed to connect to backend']."
    ssh = FakeSsh((255, refused))
    with pytest.raises(DisposableError) as caught:
        health.wait_ready(parse_outputs(_gcp_only(outputs)), timeout=0, runner=ssh)
    assert "over SSH through IAP" in caught.value.message
    assert "ssh exit 255" in caught.value.message and "failed to connect to backend" in caught.value.message


def test_a_local_host_keeps_the_direct_http_check(
    outputs: dict[str, Any], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(json.dumps(outputs))
    data["hosts"]["value"] = [h for h in data["hosts"]["value"] if h["connection"] == "direct"]
    urls: list[str] = []

    def ok(url: str, **kwargs: Any) -> httpx.Response:
        urls.append(url)
        return httpx.Response(200, text="ready")

    monkeypatch.setattr(health.httpx, "get", ok)
    ssh = FakeSsh((0, "200"))
    health.wait_ready(parse_outputs(data), runner=ssh)
    assert urls == ["http://10.150.77.10:8080/readyz"] and ssh.calls == []


def test_verify_finds_the_front_door_in_the_contract(outputs: dict[str, Any], state_dir: Path) -> None:
    (state_dir / "fleet").mkdir(parents=True)
    path = state_dir / "fleet" / "outputs.json"
    door = {"url": "https://predict.example.com/", "address": "1.2.3.4"}
    path.write_text(json.dumps({**outputs, "front_door": {"value": door}}))
    assert verify.front_door_url("fleet") == "https://predict.example.com"
    path.write_text(json.dumps({**outputs, "front_door": {"value": None}}))
    assert verify.front_door_url("fleet") == ""
    path.write_text(json.dumps(outputs))
    assert verify.front_door_url("fleet") == ""


def test_verify_asks_again_when_a_busy_host_sheds_the_zone_only_prediction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 of admission control (latency budget) right after a rebuild is load, not a
    defect: asked again, as a client would. Any other failure is an error at once."""
    shed = httpx.Response(503, json={"error": "latency_budget"}, headers={"retry-after": "1"})
    fresh = httpx.Response(200, json={"predictions": [{"demand": 3.2, "stale": False}]})
    answers = [shed, shed, fresh]
    monkeypatch.setattr(health.httpx, "post", lambda *a, **k: answers.pop(0))
    monkeypatch.setattr(health.time, "sleep", lambda s: None)
    assert health.check_zone_only_prediction("http://door")["stale"] is False
    assert answers == []
    down = httpx.Response(503, json={"error": "feature_store_unavailable"}, headers={"retry-after": "1"})
    monkeypatch.setattr(health.httpx, "post", lambda *a, **k: down)
    with pytest.raises(DisposableError, match="-> 503"):
        health.check_zone_only_prediction("http://door")
