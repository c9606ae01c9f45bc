# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Never two instances of one name: a launch whose answer comes too late, and controllers racing each other.

docs/launch-protocol.md describes the protocol these tests hold the module to.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.integration.support import live

LAUNCH = "/api/v1/instance-operations/launch"
ARGS = {"instance_type": ["gpu_1x_a10"], "region": ["us-east-1"], "ssh_key_name": ["deploy"]}


@pytest.fixture(autouse=True)
def no_idempotency(account):
    """The real API does not document Idempotency-Key: the protocol must hold with the simulator ignoring it."""
    account.configure(idempotency=False)


def test_a_launch_processed_after_request_timeout_is_adopted_with_default_options(ansible, account):
    # The API takes 45 s to answer, past the default request_timeout of 30 s, and then processes the launch.
    account.fault(method="POST", path=LAUNCH, delay_seconds=45, count=1)
    result = ansible.module("lambda_instance", {"name": "slow"} | ARGS)
    assert not result.get("failed"), result["msg"]
    assert result["changed"] is True and result["launch"]["how"] == "recovered"
    assert "its launch answer was lost, and the instance was found by name" in result["msg"]
    assert result["instance"]["status"] == "active"
    [node] = live(account, "slow")
    assert result["instance"]["id"] == node["id"]
    assert len(account.requests("POST", LAUNCH)) == 1  # never a second launch in the same run

    again = ansible.module("lambda_instance", {"name": "slow"} | ARGS)
    assert again["changed"] is False and not again.get("failed") and len(live(account, "slow")) == 1


def test_a_storm_of_429s_ends_the_launch_within_wait_timeout_and_one_request_timeout(ansible, account):
    account.fault(method="POST", path=LAUNCH, status=429, retry_after=2, count=100)
    args = {"name": "storm", "wait_timeout": 6, "request_timeout": 2, "launch_interval": 1}  # a turn every second
    started = time.monotonic()
    result = ansible.module("lambda_instance", args | ARGS)
    elapsed = time.monotonic() - started
    assert result["failed"] and "429" in result["msg"], result
    # The bound, with a few seconds for the module's own start; without it, Retry-After kept the run for a minute.
    assert elapsed < 6 + 2 + 3, elapsed
    assert 1 <= len(account.requests("POST", LAUNCH)) <= 4 and live(account, "storm") == []


GARBLED = {
    "truncated": '{"data": {"instance_ids": ["',
    "html": "<html><body>OK</body></html>",
    "empty": '{"data": {}}',
    "null": '{"data": null}',
}


@pytest.mark.parametrize("garbled", list(GARBLED))
def test_a_launch_answered_with_a_garbled_success_is_recovered_in_the_same_run(ansible, account, garbled):
    # The API carries out the launch, then answers 200 with a body that holds no instance id.
    account.fault(method="POST", path=LAUNCH, status=200, body=GARBLED[garbled], after_processing=True, count=1)
    result = ansible.module("lambda_instance", {"name": "garbled", "wait": False, "launch_interval": 0} | ARGS)
    assert not result.get("failed"), result["msg"]
    assert result["changed"] is True and result["launch"]["how"] == "recovered", result["msg"]
    [node] = live(account, "garbled")
    assert result["instance"]["id"] == node["id"]
    assert len(account.requests("POST", LAUNCH)) == 1


def test_a_lost_launch_that_never_appears_fails_and_a_rerun_launches(ansible, account):
    account.fault(method="POST", path=LAUNCH, drop_connection=True, count=1)
    failed = ansible.module(
        "lambda_instance",
        {"name": "lost", "wait": False, "request_timeout": 2, "launch_confirm_timeout": 10, "launch_interval": 0}
        | ARGS,
    )
    assert failed["failed"] and "no instance named 'lost' appeared within 10 s" in failed["msg"]
    assert "A re-run adopts the instance if it appears later" in failed["msg"]
    assert failed["attempts"][0]["result"].startswith("answer lost")
    again = ansible.module("lambda_instance", {"name": "lost", "wait": False, "launch_interval": 0} | ARGS)
    assert again["changed"] and again["launch"]["how"] == "launched" and len(live(account, "lost")) == 1


def test_every_launch_carries_an_idempotency_key_that_the_api_may_honour(ansible, account):
    ansible.module("lambda_instance", {"name": "keyed", "wait": False, "launch_interval": 0} | ARGS)
    [request] = account.requests("POST", LAUNCH)
    key = request["idempotency_key"]
    assert len(key) > 32
    # Switched off, as the real API may be, the simulator launches a repeat again.
    body = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["deploy"], "name": "x0"}
    headers = {"Authorization": "Bearer sim-api-key", "Idempotency-Key": "k-0"}
    for _repeat in range(2):
        assert account.http("POST", account.url + "/instance-operations/launch", body, headers)[0] == 200
    assert len(live(account, "x0")) == 2
    # Switched on, the simulator honours it: a repeat of that request answers the same id and launches nothing.
    account.configure(idempotency=True)
    body = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["deploy"], "name": "x"}
    headers = {"Authorization": "Bearer sim-api-key", "Idempotency-Key": "k-1"}
    first = account.http("POST", account.url + "/instance-operations/launch", body, headers)[1]
    second = account.http("POST", account.url + "/instance-operations/launch", body, headers)[1]
    assert first["data"] == second["data"] and len(live(account, "x")) == 1
    status, other, _headers = account.http(
        "POST", account.url + "/instance-operations/launch", body | {"name": "y"}, headers
    )
    assert status == 422 and other["error"]["code"] == "global/idempotency-key-reused"


# The options of the racing controllers, trial by trial: the shortest accepted request and confirmation timeouts, the
# defaults (the late launch is then answered, 5 s late), and waiting for the instance or not. Every accepted value
# must keep the name to one instance.
RACE_OPTIONS = [
    {"request_timeout": 2, "launch_confirm_timeout": 10, "wait": False},
    {"request_timeout": 3, "launch_confirm_timeout": 12, "wait": False},
    {"request_timeout": 2, "launch_confirm_timeout": 10, "wait": True, "wait_timeout": 60},
    {"wait": False},
]
LATE_SECONDS = 5  # the first launch the API receives is carried out this late
RACERS = ("alice", "bob", "carol", "dave", "erin")


@pytest.mark.parametrize("trial", range(10))
def test_controllers_racing_for_one_name_leave_exactly_one_instance(ansible, account, tmp_path, trial):
    """Five controllers (different users: different HOME, so different pacer lock files) launch one name at once;
    the API carries out the first launch it receives late, after the others' (and, with a short request_timeout,
    after its run gave up waiting for the answer)."""
    name = f"race-{trial}"
    options = RACE_OPTIONS[trial % len(RACE_OPTIONS)]
    account.fault(method="POST", path=LAUNCH, delay_seconds=LATE_SECONDS, count=1)
    results = {}
    start = threading.Barrier(len(RACERS))

    def controller(who):
        home = tmp_path / who
        home.mkdir()
        start.wait()
        args = {"name": name, "launch_interval": 0} | options | ARGS
        results[who] = ansible.module("lambda_instance", args, env={"HOME": str(home)})

    racers = [threading.Thread(target=controller, args=(who,)) for who in RACERS]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    deadline = time.monotonic() + 30  # whatever the runs did, the late launch has been carried out by now
    while any(entry["status"] is None for entry in account.requests()) and time.monotonic() < deadline:
        time.sleep(0.2)

    said = {who: result["msg"] for who, result in results.items()}
    [survivor] = live(account, name)
    for who, result in results.items():
        assert not result.get("failed"), (who, said)
        assert result["instance"]["id"] == survivor["id"], (who, survivor["id"], said)
        # A racer that starts after the other's launch is listed finds the instance and launches nothing.
        how = result.get("launch", {}).get("how", "found")
        # Honest results: only a run whose own instance survived says plainly that it launched it.
        if how == "found":
            assert result["changed"] is False and result["msg"] == f"Instance {name} ({survivor['id']}) exists."
        elif how == "launched":
            assert result["changed"] and result["msg"].startswith("Launched instance")
        elif how == "replaced":
            assert result["changed"] and "terminated this run's duplicate" in result["msg"]
            assert result["launch"]["terminated"] != survivor["id"]
        elif how == "recovered":  # its answer was lost, and its own instance is the one kept
            assert result["changed"] and "its launch answer was lost" in result["msg"]
        else:
            assert how == "adopted" and result["changed"] is False and result["msg"].startswith("Adopted")
    kept = [who for who, result in results.items() if result.get("launch", {}).get("how") in ("launched", "recovered")]
    assert len(kept) == 1, {who: result["msg"] for who, result in results.items()}
    launched = len(account.requests("POST", LAUNCH))
    terminated = account.requests("POST", "/instance-operations/terminate")
    assert len(terminated) == launched - 1  # each duplicate terminated by the run that made it, once
