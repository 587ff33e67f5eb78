"""State outside the disposable hosts, on real LXD hosts: Debian's Redis on the features
host with its data on the environment's state volume, the producer writing from the
controller, the service reading it; the versioned model store the hosts pull from, and a
model version moved across the fleet under load and back. Two inference hosts without the
GPU stack (proven by the single-host tests) keep each rebuild short. The model store is a
directory of this module's own, so the versions it publishes never reach other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, Invoke

from disposable.hosts import health
from disposable.hosts.inventory import load_contract
from disposable.local import statevolume
from disposable.state.feed import feeder_password_file

HOSTS = ("--var", "host_count=2", "--var", 'groups=["inference","no_gpu_stack"]')
ZONE_ONLY = {"zone_id": 5, "hour": 8, "day_of_week": 2}
SELF_CONTAINED = {
    **ZONE_ONLY,
    "weather": {"temperature_c": 12.0, "precipitation_mm_h": 0.0, "wind_speed_m_s": 3.0},
    "recent_rides": [400, 420, 410, 430],
}


@pytest.fixture(scope="module")
def environment(invoke: Invoke, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = os.environ.get("DML_MODEL_STORE_DIR")
    os.environ["DML_MODEL_STORE_DIR"] = str(tmp_path_factory.mktemp("model-store"))  # every invoke inherits it
    try:
        yield from _environment(invoke)
    finally:
        if before is None:
            os.environ.pop("DML_MODEL_STORE_DIR", None)
        else:
            os.environ["DML_MODEL_STORE_DIR"] = before


def _environment(invoke: Invoke) -> Iterator[None]:
    assert invoke("destroy", "--include-state")[0] == 0
    code, out = invoke("provision", *HOSTS)
    assert code == 0 and "state: created LXD volume" in out
    code, out = invoke("configure", timeout=1800)
    assert code == 0 and "Feature store: wrote the current interval" in out
    yield
    assert invoke("destroy", "--include-state")[0] == 0
    assert not statevolume.exists("local")


def _urls() -> list[str]:
    return [f"http://{h.address}:8080" for h in load_contract("local").in_group("inference")]


def _predict(url: str, instance: dict[str, Any], shed_for: float = 10.0) -> httpx.Response:
    """One prediction; asked again (for up to `shed_for` s) only while admission control
    sheds it (503/429 queue_full or latency_budget): a just-configured host may shed its
    first request, which says "later", not "wrong" (verify does the same). Any other
    answer is returned as it is."""
    response, shed = health.post_until_not_shed(f"{url}/v1/predict", {"instances": [instance]}, shed_for)
    if shed:
        print(f"{url}: shed {shed} time(s) before this answer")
    return response


def _feeder(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """The producer, or a one-off Redis command as the feeder user, from the controller."""
    store = load_contract("local").feature_store
    assert store is not None
    password = str(feeder_password_file("local"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "service")}
    if code is None:
        argv = [sys.executable, "-m", "demand_predictor.feed", "--redis-url", store.url, "--username", "feeder"]
        argv += ["--password-file", password, *args]
    else:
        client = (
            "import redis,sys; r=redis.Redis.from_url(sys.argv[1], username='feeder', "
            "password=open(sys.argv[2]).read().strip(), decode_responses=True); "
        )
        argv = [sys.executable, "-c", client + code, store.url, password, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True, timeout=60)


def test_1_zone_only_requests_use_the_store_and_every_host_agrees(environment: None) -> None:
    answers = []
    for url in _urls():
        response = _predict(url, ZONE_ONLY)
        assert response.status_code == 200, response.text
        prediction = response.json()["predictions"][0]
        assert prediction["stale"] is False
        answers.append(prediction["demand"])
    assert len(set(answers)) == 1, f"the same zone and time give the same answer on every host: {answers}"
    own = _predict(_urls()[0], SELF_CONTAINED).json()["predictions"][0]
    assert own["demand"] != answers[0], "values the client sends win over the store's"


def test_1b_invoke_load_goes_through_the_front_door_to_every_host(environment: None, invoke: Invoke) -> None:
    """`invoke load`: the front door (the load balancer), not a host; every host answers."""
    code, out = invoke("load", "--rate", "40", "--seconds", "10", timeout=120)
    assert code == 0, out
    figures = json.loads((REPO / ".state" / "local" / "reports" / "load.json").read_text())
    door = load_contract("local").front_door
    assert door is not None and figures["target"] == f"front door {door.address}:{door.port}"
    assert figures["failed"] == 0 and figures["requests"] >= 300, figures  # 40/s for 10 s
    assert set(figures["served_by"]) == {h.name for h in load_contract("local").in_group("inference")}, figures


def test_2_a_rebuild_of_every_host_keeps_the_data_and_include_state_removes_it(
    invoke: Invoke, environment: None
) -> None:
    marker = f"fv:marker:{uuid.uuid4().hex}"
    _feeder(marker, code="r.set(sys.argv[3], 'kept')")
    before = {h.name: h.instance_id for h in load_contract("local").hosts}
    code, out = invoke("rebuild", *HOSTS, timeout=1800)
    assert code == 0 and "state: LXD volume" in out and "kept" in out
    after = {h.name: h.instance_id for h in load_contract("local").hosts}
    assert all(after[name] != before[name] for name in before), "every host, Redis' too, was replaced"
    assert _feeder(marker, code="print(r.get(sys.argv[3]))").stdout.strip() == "kept"
    for url in _urls():
        assert _predict(url, ZONE_ONLY).json()["predictions"][0]["stale"] is False

    code, out = invoke("rebuild", "--include-state", *HOSTS, timeout=1800)
    assert code == 0 and "state: deleted LXD volume" in out
    assert _feeder(marker, code="print(r.get(sys.argv[3]))").stdout.strip() == "None"


def test_3_features_past_their_ttl_are_answered_stale_not_refused(environment: None) -> None:
    _feeder("--once", "--ttl-s", "2", "--interval-s", "1")
    time.sleep(3)  # the keys expired: the producer "stopped"
    try:
        for url in _urls():
            response = _predict(url, ZONE_ONLY)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["stale"] is True
    finally:
        _feeder("--once")  # fresh features for the next test


def test_4_redis_down_503_for_requests_that_need_it_200_for_the_rest_readiness_unchanged(
    environment: None,
) -> None:
    features_host = load_contract("local").in_group("features")[0].name
    subprocess.run(["lxc", "exec", features_host, "--", "systemctl", "stop", "redis-server"], check=True)
    try:
        for url in _urls():
            response = _predict(url, ZONE_ONLY)
            assert response.status_code == 503 and "retry-after" in response.headers, response.text
            assert _predict(url, SELF_CONTAINED).status_code == 200
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200, "one Redis blip must not empty the fleet"
            assert "dp_feature_store_up 0.0" in httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        subprocess.run(["lxc", "exec", features_host, "--", "systemctl", "start", "redis-server"], check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(_predict(url, ZONE_ONLY).status_code == 200 for url in _urls()):
            break
        time.sleep(1)
    assert all(_predict(url, ZONE_ONLY).status_code == 200 for url in _urls()), "the service notices Redis is back"


def _versions_served() -> set[str]:
    return {httpx.get(f"{url}/v1/models/demand-predictor", timeout=5).json()["version"] for url in _urls()}


def test_5_a_model_version_moves_across_the_fleet_under_load_and_back(
    invoke: Invoke, environment: None, tmp_path: Path
) -> None:
    """deploy-model and rollback-model under an open-loop load on the front door: no request
    refused, every host on the new version (other answers), then back to the old one's
    exact answers."""
    from disposable.fleet.load import Load
    from disposable.state import models

    artifact = tmp_path / "model-1.1.0"
    env = {**os.environ, "PYTHONPATH": str(REPO / "service")}
    train = [
        sys.executable,
        "-m",
        "demand_predictor.train",
        "--out",
        str(artifact),
        "--seed",
        "8",
        "--version",
        "1.1.0",
    ]
    subprocess.run(train, env=env, check=True, timeout=600)
    models.publish(artifact)
    assert _versions_served() == {"1.0.0"}
    old = _predict(_urls()[0], SELF_CONTAINED).json()["predictions"][0]

    door = load_contract("local").front_door
    assert door is not None
    load = Load(door.address, door.port).start()
    try:
        window = load.phase("deploy-model 1.1.0, then rollback-model")
        code, out = invoke("deploy-model", "1.1.0", timeout=900)
        assert code == 0 and "Model: deployed demand-predictor 1.0.0 -> 1.1.0 on 2 host(s)" in out
        assert _versions_served() == {"1.1.0"}
        new = _predict(_urls()[0], SELF_CONTAINED).json()["predictions"][0]
        assert new["model_version"] == "1.1.0" and new["demand"] != old["demand"]
        code, out = invoke("rollback-model", timeout=900)
        assert code == 0 and "rolled back demand-predictor 1.1.0 -> 1.0.0" in out
        time.sleep(2)
        window.end = time.monotonic()
    finally:
        load.stop()
    figures = load.figures(window)
    print(f"\nmodel swap under load: {figures}")
    assert figures["failed"] == 0, figures
    assert _versions_served() == {"1.0.0"}
    assert _predict(_urls()[0], SELF_CONTAINED).json()["predictions"][0] == old, "rollback: the old exact answers"


def test_6_a_version_the_store_does_not_hold_is_refused_before_any_host_changes(
    invoke: Invoke, environment: None
) -> None:
    code, out = invoke("deploy-model", "9.9.9")
    assert code != 0 and "demand-predictor '9.9.9' is not in the model store" in out and "1.0.0" in out
    assert _versions_served() == {"1.0.0"}
