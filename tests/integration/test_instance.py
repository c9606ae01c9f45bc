"""lambda_instance through real ansible-playbook runs: idempotency, placement, launch safety, waiting, bad input."""

from __future__ import annotations

import re
import threading
import time

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc
from tests.integration.support import add_deploy_key, live, task

LAUNCH = "/api/v1/instance-operations/launch"


def instance(title, /, **args):
    """A lambda_instance task; launches are not paced unless a test asks for it."""
    args.setdefault("launch_interval", 0)
    return task(title, "lambda_instance", **args)


def launch(title="launch", /, **args):
    args = {"name": "trainer", "instance_type": "gpu_1x_a10", "region": "us-east-1", "ssh_key_name": "deploy"} | args
    return instance(title, **args)


def launched(simulator, name="trainer"):
    """An instance launched through the API, as the setup of a test: what launch() would launch, not waited for."""
    body = {"name": name, "instance_type_name": "gpu_1x_a10", "region_name": "us-east-1", "ssh_key_names": ["deploy"]}
    status, answer = simulator.api("POST", LAUNCH, body)
    assert status == 200, answer
    return answer["data"]["instance_ids"][0]


# ------------------------------------------------------------------ present, idempotency, check mode
def test_launch_waits_for_active_and_second_run_only_reads(ansible, account):
    run = ansible.playbook([launch(tags={"team": "research"}, hostname="trainer-1")])
    result = run.task("launch")
    assert result["_status"] == "changed", run.output
    assert result["instance"]["status"] == "active" and result["instance"]["ip"]
    assert result["placement"] == {"instance_type": "gpu_1x_a10", "region": "us-east-1"}
    tags = result["instance"]["tags"]
    assert tags == {"team": "research", "launch-id": tags["launch-id"], "launched-at": tags["launched-at"]}
    assert abs(time.time() - parse_utc(tags["launched-at"]).timestamp()) < 120
    assert len(account.requests("POST", LAUNCH)) == 1

    account.clear_requests()
    again = ansible.playbook([launch(tags={"team": "research"}, hostname="trainer-1")]).task("launch")
    assert again["_status"] == "ok" and again["instance"]["id"] == result["instance"]["id"]
    assert [(r["method"], r["path"]) for r in account.requests()] == [("GET", "/api/v1/instances")]
    assert len(live(account)) == 1


def test_check_mode_sends_no_change(ansible, account):
    run = ansible.playbook([launch()], check=True, diff=True)
    result = run.task("launch")
    assert result["_status"] == "changed" and "Would have launched" in result["msg"]
    assert result["placement"] == {"instance_type": "gpu_1x_a10", "region": "us-east-1"}
    assert result["diff"]["before"] == {} and result["diff"]["after"]["name"] == "trainer"
    assert {r["method"] for r in account.requests()} == {"GET"}
    assert live(account) == []

    launched(account)
    account.clear_requests()
    run = ansible.playbook([instance("remove", name="trainer", state="absent")], check=True)
    assert run.task("remove")["_status"] == "changed"
    assert {r["method"] for r in account.requests()} == {"GET"}
    assert len(live(account)) == 1


# ------------------------------------------------------------------ placement
def test_failover_to_the_first_pair_with_capacity(ansible, account):
    run = ansible.playbook(
        [
            launch(
                instance_type=["gpu_8x_a100_80gb_sxm4", "gpu_1x_h100_pcie", "gpu_1x_a10"],
                region=["us-west-2", "us-west-1"],
            )
        ]
    )
    result = run.task("launch")
    assert result["_status"] == "changed", run.output
    assert result["placement"] == {"instance_type": "gpu_1x_a10", "region": "us-west-1"}
    assert len(account.requests("GET", "/instance-types")) == 1
    assert len(account.requests("POST", LAUNCH)) == 1


def test_launch_moves_on_when_capacity_vanished(ansible, account):
    account.fault(
        method="POST",
        path=LAUNCH,
        status=400,
        code="instance-operations/launch/insufficient-capacity",
        message="Not enough capacity to fulfill launch request.",
        count=1,
    )
    run = ansible.playbook([launch(region=["us-east-1", "us-west-1"], wait=False)])
    result = run.task("launch")
    assert result["_status"] == "changed", run.output
    assert result["placement"]["region"] == "us-west-1"
    assert [a["result"] for a in result["attempts"]] == ["insufficient-capacity", "launched"]
    assert len(live(account)) == 1


def test_no_capacity_anywhere_lists_what_was_tried(ansible, account):
    run = ansible.playbook(
        [launch(instance_type=["gpu_8x_a100_80gb_sxm4", "gpu_1x_a10"], region=["us-south-1", "europe-central-1"])]
    )
    result = run.task("launch")
    assert result["_status"] == "failed"
    assert "gpu_8x_a100_80gb_sxm4 in us-south-1" in result["msg"]
    assert "gpu_1x_a10 in europe-central-1" in result["msg"]
    assert "gpu_8x_a100_80gb_sxm4: no region" in result["msg"]
    assert "gpu_1x_a10: " in result["msg"] and "us-east-1" in result["msg"]
    assert account.requests("POST", LAUNCH) == []


def test_file_system_pins_the_region(ansible, account):
    account.api("POST", "/filesystems", {"name": "datasets", "region": "us-west-1"})
    run = ansible.playbook([launch(region=None, file_system_names=["datasets"], wait=False)])
    result = run.task("launch")
    assert result["_status"] == "changed", run.output
    assert result["placement"]["region"] == "us-west-1"
    assert result["instance"]["file_system_names"] == ["datasets"]


# ------------------------------------------------------------------ launch safety
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "code": "global/internal-error", "after_processing": True},
        {"drop_connection": True, "after_processing": True},
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "after_processing": True},
    ],
    ids=["500-after-processing", "dropped-after-processing", "html-502-after-processing"],
)
def test_lost_launch_response_is_adopted_not_repeated(ansible, account, fault):
    account.fault(method="POST", path=LAUNCH, count=1, **fault)
    result = ansible.playbook([launch()]).task("launch")
    assert result["_status"] == "changed", result
    assert len(live(account, "trainer")) == 1
    assert len(account.requests("POST", LAUNCH)) == 1
    assert result["instance"]["status"] == "active"


def test_a_500_before_processing_is_never_followed_by_a_second_launch_in_the_same_run(ansible, account):
    # The answer may or may not have been processed: the run looks for the name, never launches again, and fails
    # when nothing appears; the re-run launches it.
    account.fault(method="POST", path=LAUNCH, status=500, code="global/internal-error", count=1)
    run = ansible.playbook([launch(wait=False, request_timeout=2, launch_confirm_timeout=10)])
    run.failure("launch", "no instance named 'trainer' appeared within 10 s", "A re-run adopts the instance")
    assert live(account, "trainer") == [] and len(account.requests("POST", LAUNCH)) == 1
    again = ansible.playbook([launch(wait=False)]).task("launch")
    assert again["_status"] == "changed" and again["launch"]["how"] == "launched", again
    assert len(live(account, "trainer")) == 1 and len(account.requests("POST", LAUNCH)) == 2


def test_parallel_forks_respect_the_launch_limit(ansible, simulator_factory):
    sim = simulator_factory("--launch-interval", "12", "--boot-seconds", "1")
    add_deploy_key(sim)
    plays = [
        {
            "hosts": "nodes",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "launch",
                    "lambdalabs.cloud.lambda_instance": {
                        "name": "node-{{ inventory_hostname }}",
                        "instance_type": "gpu_1x_a10",
                        "region": "us-east-1",
                        "ssh_key_name": "deploy",
                        "api_url": sim.url,
                    },
                }
            ],
        }
    ]
    inventory = ansible.tmp_path / "hosts.ini"
    inventory.write_text("[nodes]\n" + "\n".join(f"n{i} ansible_connection=local" for i in range(4)) + "\n")
    run = ansible.playbook(plays=plays, inventory=str(inventory), args=["--forks", "4"])
    run.assert_ok()
    assert sorted(e["host"] for e in run.results if e["status"] == "changed") == ["n0", "n1", "n2", "n3"]
    assert sorted(i["name"] for i in live(sim)) == [f"node-n{i}" for i in range(4)]
    launches = sim.requests("POST", LAUNCH)
    assert sum(1 for r in launches if r["status"] == 200) == 4
    # Paced on the controller: the API never has to refuse a launch.
    assert [r["status"] for r in launches] == [200] * 4


def test_launch_429_is_waited_out(ansible, account):
    account.fault(method="POST", path=LAUNCH, status=429, retry_after=1, count=1)
    result = ansible.playbook([launch(wait=False)]).task("launch")
    assert result["_status"] == "changed", result
    assert [r["status"] for r in account.requests("POST", LAUNCH)] == [429, 200]


def test_a_long_run_of_429_is_waited_out_until_wait_timeout(ansible, account):
    # More refusals than the client's own attempts: the module keeps taking turns.
    account.fault(method="POST", path=LAUNCH, status=429, retry_after=0, count=8)
    result = ansible.playbook([launch(wait=False)]).task("launch")
    assert result["_status"] == "changed", result
    assert [r["status"] for r in account.requests("POST", LAUNCH)] == [429] * 8 + [200]
    account.fault(method="POST", path=LAUNCH, status=429, retry_after=0, count=100)
    failed = ansible.playbook([launch(name="other", wait=False, wait_timeout=0)])
    failed.failure("launch", "Lambda Cloud API error 429")
    assert len(live(account)) == 1


# ------------------------------------------------------------------ waiting
def test_wait_timeout_leaves_the_instance_and_names_it(ansible, simulator_factory):
    sim = simulator_factory("--boot-seconds", "60")
    add_deploy_key(sim)
    result = ansible.playbook([launch(api_url=sim.url, wait_timeout=3)]).task("launch")
    assert result["_status"] == "failed"
    [node] = live(sim, "trainer")
    assert node["id"] in result["msg"] and "'booting'" in result["msg"]
    assert "left in place" in result["msg"]
    assert sim.requests("POST", "/instance-operations/terminate") == []


def test_an_instance_made_after_ours_found_once_active_does_not_replace_it(ansible, simulator_factory):
    # Another instance of the same name, with a lower id, appears after this run's settle step but before its own
    # instance is active. The API made it after ours (the audit trail has no launch of it before ours): a late
    # launch, which its own run ends. This run keeps its instance, as a run that already reported it would.
    sim = simulator_factory("--boot-seconds", "4", "--terminate-seconds", "0")
    add_deploy_key(sim)
    racer = "0" * 32
    stop = threading.Event()

    def racer_after_the_settle_step():
        while not stop.wait(0.1):
            if live(sim, "trainer") and len(sim.requests("GET", "/instances")) >= 3:  # find, turn, settle
                sim.seed(instances=[{"id": racer, "name": "trainer", "status": "active", "region": "us-east-1"}])
                return

    seeder = threading.Thread(target=racer_after_the_settle_step)
    seeder.start()
    try:
        result = ansible.module(
            "lambda_instance",
            {
                "name": "trainer",
                "instance_type": ["gpu_1x_a10"],
                "region": ["us-east-1"],
                "ssh_key_name": ["deploy"],
                "api_url": sim.url,
                "launch_interval": 0,
                "wait_timeout": 60,
            },
        )
    finally:
        stop.set()
        seeder.join()
    assert not result.get("failed"), result["msg"]
    assert result["launch"]["how"] == "launched" and result["instance"]["id"] != racer, result["msg"]
    assert sim.requests("POST", "/instance-operations/terminate") == []
    # The look once active asked the audit trail which came first, as the API reference names instances.
    [trail] = sim.requests("GET", "/audit-events")
    assert trail["status"] == 200 and "resource_type=cloud.instance" in trail["query"], trail
    assert sorted(node["id"] for node in live(sim, "trainer")) == sorted([racer, result["instance"]["id"]])


def test_instance_ended_while_waiting_fails_with_the_reason(ansible, simulator_factory):
    sim = simulator_factory("--boot-seconds", "60", "--terminate-seconds", "0")

    add_deploy_key(sim)

    stop = threading.Event()

    def terminate_once_launched():
        while not stop.wait(0.2):
            for node in live(sim, "trainer"):
                sim.api("POST", "/instance-operations/terminate", {"instance_ids": [node["id"]]})
                return

    terminator = threading.Thread(target=terminate_once_launched)
    terminator.start()
    try:
        result = ansible.playbook([launch(api_url=sim.url, wait_timeout=60)]).task("launch")
    finally:
        stop.set()
        terminator.join()
    assert result["_status"] == "failed"
    assert "while waiting for it to become active" in result["msg"]
    assert re.search(r"became '(terminating|terminated|gone)'", result["msg"]), result["msg"]
    assert result["changed"] is True  # it did launch


def test_rename_restart_and_absent(ansible, account):
    created = ansible.playbook([launch()]).task("launch")["instance"]
    run = ansible.playbook(
        [
            instance("rename", id=created["id"], name="trainer-renamed"),
            instance("rename again", id=created["id"], name="trainer-renamed"),
            instance("restart", name="trainer-renamed", state="restarted"),
            instance("absent", name="trainer-renamed", state="absent"),
            instance("absent again", name="trainer-renamed", state="absent"),
            instance("restart missing", name="trainer-renamed", state="restarted"),
        ],
        diff=True,
    )
    rename = run.task("rename")
    assert rename["_status"] == "changed" and rename["instance"]["name"] == "trainer-renamed"
    assert rename["diff"]["before"]["name"] == "trainer" and rename["diff"]["after"]["name"] == "trainer-renamed"
    assert run.task("rename again")["_status"] == "ok"
    restart = run.task("restart")
    assert restart["_status"] == "changed" and restart["instance"]["status"] == "active"
    assert len(account.requests("POST", "/instance-operations/restart")) == 1
    absent = run.task("absent")
    assert absent["_status"] == "changed" and absent["diff"]["after"] == {}
    assert absent["instance"]["status"] == "terminated"
    assert run.task("absent again")["_status"] == "ok"
    missing = run.task("restart missing")
    assert missing["_status"] == "failed" and "no existing instance 'trainer-renamed'" in missing["msg"]
    assert live(account) == []


def test_differences_fail_by_default_warn_on_request_and_never_relaunch(ansible, account):
    launched(account)
    account.clear_requests()
    wanted = {"instance_type": "gpu_1x_a100_sxm4", "region": "us-west-2", "tags": {"team": "x"}}
    run = ansible.playbook([launch(**wanted), launch("warn only", on_mismatch="warn", **wanted)], check=False)
    failed = run.failure("launch", "instance_type is 'gpu_1x_a10'", "region is 'us-east-1'", "Nothing was changed")
    assert "tags" in failed["msg"] and len(failed["differences"]) == 3
    warned = run.task("warn only")
    assert warned["_status"] == "ok"
    warning = " ".join(warned.get("warnings", []))
    assert "instance_type is 'gpu_1x_a10'" in warning and "region is 'us-east-1'" in warning and "tags" in warning
    assert ansible.playbook([launch(**wanted)], check=True).task("launch")["_status"] == "failed"
    assert account.requests("POST") == []


# ------------------------------------------------------------------ bad input
BAD_INPUT = [
    ("two keys", {"ssh_key_name": ["deploy", "other"]}, "parameter ssh_key_name: the API takes exactly one SSH key"),
    ("long name", {"name": "n" * 65}, "parameter name: must be at most 64 characters"),
    ("bad hostname", {"hostname": "Bad_Host"}, "parameter hostname: 'Bad_Host' is not valid: use 1-63 lowercase"),
    ("bad tag", {"tags": {"Team": "x"}}, "parameter tags: 'Team' is not valid: tag key 'Team' must start"),
    ("big user data", {"user_data": "x" * (1024 * 1024 + 1)}, "parameter user_data: is 1048577 bytes"),
    (
        "unknown type",
        {"instance_type": "gpu_9x_nothing"},
        "parameter instance_type: unknown instance type 'gpu_9x_nothing'",
    ),
    ("malformed region", {"region": "mars-1"}, "parameter region: 'mars-1' is not valid: a region code looks like"),
    ("unknown image", {"image": {"id": "no-such-image"}}, "parameter image: unknown image id 'no-such-image'"),
    ("unknown family", {"image": {"family": "windows-95"}}, "parameter image: unknown image family 'windows-95'"),
    ("unknown key", {"ssh_key_name": "nobody"}, "parameter ssh_key_name: unknown SSH key 'nobody'"),
    ("unknown fs", {"file_system_names": ["nope"]}, "parameter file_system_names: unknown file system 'nope'"),
    ("fs elsewhere", {"file_system_names": ["west"]}, "parameter region: file system west is in us-west-1"),
    ("no type", {"instance_type": None}, "parameter instance_type: is required to launch"),
]


def test_bad_input_fails_clearly_and_launches_nothing(ansible, account):
    account.api("POST", "/filesystems", {"name": "west", "region": "us-west-1"})
    account.seed(
        instances=[
            {"name": "twin", "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"},
            {"name": "twin", "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"},
        ]
    )
    tasks = [launch(title, **args) for title, args, _expected in BAD_INPUT]
    tasks.append(launch("ambiguous", name="twin"))
    tasks.append(instance("wrong type", name="x", wait_timeout="soon"))
    run = ansible.playbook(tasks)
    for title, _args, expected in BAD_INPUT:
        run.failure(title, expected)
    twins = [i["id"] for i in live(account, "twin")]
    ambiguous = run.task("ambiguous")["msg"]
    assert "parameter name: 2 instances are named 'twin'" in ambiguous and all(i in ambiguous for i in twins)
    run.failure("wrong type", "wait_timeout")
    assert account.requests("POST", LAUNCH) == []


def test_empty_or_stale_identity_never_acts_on_another_instance(ansible, account):
    account.seed(instances=[{"status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"}])
    launched(account)
    account.clear_requests()
    run = ansible.playbook(
        [
            instance("empty id", id="", state="absent"),
            instance("empty name", name="  ", state="absent"),
            launch("stale id", id="f" * 32),
            instance("stale id absent", id="f" * 32, state="absent"),
        ]
    )
    run.failure("empty id", "parameter id: must not be empty")
    run.failure("empty name", "parameter name: must not be empty")
    run.failure("stale id", "parameter id: no existing instance has id " + "f" * 32)
    assert run.task("stale id absent")["_status"] == "ok"
    assert {r["method"] for r in account.requests()} == {"GET"}
    assert len(live(account)) == 2


def test_forks_launching_one_name_make_one_instance(ansible, account):
    plays = [
        {
            "hosts": "nodes",
            "gather_facts": False,
            "tasks": [launch("shared", name="shared", wait=False) | {"ignore_errors": False}],
        }
    ]
    inventory = ansible.tmp_path / "hosts.ini"
    inventory.write_text("[nodes]\n" + "\n".join(f"n{i} ansible_connection=local" for i in range(3)) + "\n")
    run = ansible.playbook(plays=plays, inventory=str(inventory), args=["--forks", "3"])
    run.assert_ok()
    assert len(live(account, "shared")) == 1
    assert len({r["result"]["instance"]["id"] for r in run.results}) == 1


def test_results_never_carry_the_jupyter_token(ansible, account):
    run = ansible.playbook(
        [
            launch(),
            launch("again"),
            {"name": "info", "lambdalabs.cloud.lambda_instance_info": {}, "register": "out"},
            {"name": "info with jupyter", "lambdalabs.cloud.lambda_instance_info": {"include_jupyter": True}},
            instance("remove", name="trainer", state="absent"),
        ],
        diff=True,
    )
    run.assert_ok()
    token = run.task("info with jupyter")["instances"][0]["jupyter_token"]
    assert token and token not in run.output
    for entry in run.results:
        if entry["task"] != "info with jupyter":
            assert token not in str(entry["result"]), entry["task"]


def test_boolean_tags_are_stored_as_true_and_compared_alike(ansible, account):
    run = ansible.playbook([launch(tags={"spot": True}, wait=False), launch("again", tags={"spot": True})])
    run.assert_ok()
    launched = run.task("launch")["instance"]["tags"]
    assert launched == {"spot": "true", "launch-id": launched["launch-id"], "launched-at": launched["launched-at"]}
    assert run.task("again")["_status"] == "ok" and not run.task("again").get("warnings")


def test_safe_calls_are_retried_and_creating_calls_are_not(ansible, account):
    account.wait_for_status(launched(account), "active")
    account.fault(method="POST", path="/api/v1/instance-operations/terminate", status=503, count=1)
    account.fault(method="POST", path="/api/v1/instance-operations/restart", status=500, count=1)
    run = ansible.playbook(
        [
            instance("restart", name="trainer", state="restarted", wait=False),
            instance("absent", name="trainer", state="absent", wait=False),
        ]
    )
    run.failure("restart", "Lambda Cloud API error 500")
    assert len(account.requests("POST", "/instance-operations/restart")) == 1
    assert run.task("absent")["_status"] == "changed"
    assert [r["status"] for r in account.requests("POST", "/instance-operations/terminate")] == [503, 200]


def test_a_node_turned_unhealthy_mid_wait_ends_the_wait_within_one_poll_and_says_what_to_do(ansible, simulator_factory):
    sim = simulator_factory("--boot-seconds", "600")
    add_deploy_key(sim)
    ids = [
        sim.api(
            "POST",
            "/instance-operations/launch",
            {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["deploy"], "name": name},
        )[1]["data"]["instance_ids"][0]
        for name in ("node-1", "node-2")
    ]
    turned = {}

    def unhealthy_after_a_few_polls():
        while len(sim.requests("GET", "/instances")) < 3:
            time.sleep(0.05)
        sim.set_instance(ids[1], status="unhealthy")
        turned["at"] = time.monotonic()

    failing = threading.Thread(target=unhealthy_after_a_few_polls)
    failing.start()
    try:
        result = ansible.module("lambda_instance_wait", {"ids": ids, "timeout": 1800, "api_url": sim.url})
    finally:
        failing.join()
    ended = time.monotonic()
    assert result["_rc"] != 0 and ended - turned["at"] < 3 + 2, result["msg"]  # one poll (3 s at most), not 1800 s
    assert f"node-2 ({ids[1]}) is unhealthy, which waiting cannot mend: restart it" in result["msg"]
    assert f"terminate it (id={ids[1]} state=absent) and provision again" in result["msg"]
    assert "1 other instance(s) were not waited for" in result["msg"] and "\n" not in result["msg"]
    assert {n["name"]: n["outcome"] for n in result["nodes"]} == {"node-1": "waiting", "node-2": "lost"}


def test_a_long_wait_shows_its_progress_and_counts_from_its_start(ansible, simulator_factory):
    sim = simulator_factory("--boot-seconds", "8")
    add_deploy_key(sim)
    launched = sim.api(
        "POST",
        "/instance-operations/launch",
        {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["deploy"], "name": "slow"},
    )[1]["data"]["instance_ids"]
    run = ansible.playbook(
        [
            {
                "name": "wait",
                "lambdalabs.cloud.lambda_instance_wait": {
                    "ids": launched,
                    "timeout": 60,
                    "progress_seconds": 1,
                    "api_url": sim.url,
                },
            }
        ]
    )
    run.assert_ok()
    lines = re.findall(r"lambda_instance_wait: (.*)", run.stdout)
    assert lines and all(re.fullmatch(r"0/1 active, 1 booting, \d s of 1 min", line) for line in lines), lines
    result = run.task("wait")
    # One result for the whole wait: its seconds from the start of the wait, past the first step of 1 s (the boot began
    # before the playbook), every poll counted.
    assert result["done"] is True and 1 < result["nodes"][0]["seconds"] <= 8 + 3, result["nodes"]
    assert result["polls"] == len(sim.requests("GET", "/instances")) and result["msg"].startswith(
        "1 instance(s) active in "
    )
    launching = ansible.playbook(
        [
            {
                "name": "launch and wait",
                "lambdalabs.cloud.lambda_instance": {
                    "name": "slow-2",
                    "instance_type": "gpu_1x_a10",
                    "region": "us-east-1",
                    "ssh_key_name": "deploy",
                    "launch_interval": 0,
                    "progress_seconds": 1,
                    "api_url": sim.url,
                },
            },
        ]
    )
    launching.assert_ok()
    # lambda_instance's own wait (a launch, then a boot of 8 s) shows the same: the status the API lists, the time.
    own = re.findall(r"lambda_instance: (.*)", launching.stdout)
    shape = r"slow-2: (booting|active|not listed), waiting until active, \d+ s so far \(wait_timeout 30 min\)"
    assert len(own) >= 4 and all(re.fullmatch(shape, line) for line in own), own
    assert launching.task("launch and wait")["instance"]["status"] == "active"
