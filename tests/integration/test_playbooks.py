# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's playbooks and roles (provision, configure, teardown, reap) against the simulator.

Each test runs the real playbooks (``import_playbook: lambdalabs.cloud.<name>``) in ansible-playbook processes.
The gpu_node role runs with a local connection and a stand-in ``nvidia-smi`` (a small script put first on PATH)
that answers like the real one and remembers the persistence mode it was given.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support import add_deploy_key, import_playbook, live, role_task, role_tasks

LAUNCH = "/api/v1/instance-operations/launch"
TERMINATE = "/api/v1/instance-operations/terminate"
NO_CAPACITY = "gpu_8x_a100_80gb_sxm4"


def cluster_vars(**overrides: Any) -> dict[str, Any]:
    """Role variables for a 3-node cluster whose first-choice type has no capacity."""
    values = {
        "lambda_cluster_name": "demo",
        "lambda_cluster_nodes": {"count": 3},
        "lambda_cluster_defaults": {
            "instance_type": [NO_CAPACITY, "gpu_1x_a10"],
            "region": ["us-west-1", "us-east-1"],
            "ssh_key_name": "deploy",
            "tags": {"team": "research"},
        },
        "lambda_cluster_wait_for_ssh": False,
        "lambda_cluster_launch_interval": 0,
    }
    values.update(overrides)
    return values


def role_failure(run, name: str, *expected: str) -> dict[str, Any]:
    """The failed task ``name``: one line of our own that contains ``expected``."""
    failed = role_task(run, name)
    assert failed["_status"] == "failed", failed
    assert "\n" not in failed["msg"], failed["msg"]
    for text in expected:
        assert text in failed["msg"], (text, failed["msg"])
    return failed


def changed_tasks(run) -> list[str]:
    return [f"{e['host']}: {e['task']}" for e in run.results if e["status"] == "changed"]


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in instance.get("tags") or []}


def utc(delta_hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=delta_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ provision and teardown
def test_provision_twice_changes_nothing_the_second_time_then_teardown(ansible, account):
    before = datetime.now(timezone.utc)
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_ttl_hours=2))
    assert run.rc == 0, run.output
    nodes = live(account, prefix="demo-")
    assert [n["name"] for n in nodes] == ["demo-1", "demo-2", "demo-3"]
    assert all(n["status"] == "active" for n in nodes)
    # Capacity failover: the first choice has none, so every node is the second choice, in the first region.
    assert {(n["instance_type"]["name"], n["region"]["name"]) for n in nodes} == {("gpu_1x_a10", "us-west-1")}
    assert len(account.requests("POST", LAUNCH)) == 3

    # Cost tags: cluster and expires-at (UTC, TTL hours after the launch), plus the defaults' tags.
    for node in nodes:
        tags = tags_of(node)
        assert tags["cluster"] == "demo" and tags["team"] == "research"
        expires = datetime.strptime(tags["expires-at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert timedelta(hours=2) - timedelta(minutes=1) <= expires - before <= timedelta(hours=2, minutes=1)

    # The waits run together, after every launch: no node is polled on its own (one read of each after its
    # launch), and the instance list is read again only once the last launch is sent.
    log = account.requests()
    last_launch = max(i for i, r in enumerate(log) if r["method"] == "POST" and r["path"] == LAUNCH)
    for node in nodes:
        assert [r["method"] for r in log if r["path"] == f"/api/v1/instances/{node['id']}"] == ["GET"]
    assert any(r["method"] == "GET" and r["path"] == "/api/v1/instances" for r in log[last_launch + 1 :])

    # The summary: name, id, type, region, IP of each node, and the total price per hour.
    summary = "\n".join(role_task(run, "Show the cluster")["msg"])
    for node in nodes:
        assert re.search(
            rf"{node['name']}\s+{node['id']}\s+gpu_1x_a10\s+us-west-1\s+{re.escape(node['ip'])}\s+0\.75", summary
        )
    assert "3 node(s), $2.25 per hour, inventory group lambda_cluster_demo" in summary
    assert f"{NO_CAPACITY} in us-west-1 had no capacity; launched as gpu_1x_a10 in us-west-1" in summary
    result = role_task(run, "Record the cluster")["ansible_facts"]["lambda_cluster_result"]
    assert result["launched"] == ["demo-1", "demo-2", "demo-3"] and result["price_cents_per_hour"] == 225

    # Second run: nothing changes, nothing is launched, one read of the instance list.
    account.clear_requests()
    again = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_ttl_hours=2))
    assert again.rc == 0, again.output
    assert changed_tasks(again) == []
    assert re.search(r"localhost\s+:.* changed=0 ", again.output)
    assert [(r["method"], r["path"]) for r in account.requests()] == [("GET", "/api/v1/instances")]
    again_nodes = live(account, prefix="demo-")
    assert [tags_of(n)["expires-at"] for n in again_nodes] == [tags_of(n)["expires-at"] for n in nodes]

    # Teardown terminates every node of the cluster and nothing else; a second teardown changes nothing.
    account.seed(instances=[{"name": "other", "tags": [{"key": "cluster", "value": "other"}]}])
    down = ansible.playbook(plays=import_playbook("teardown"), extra_vars={"lambda_cluster_name": "demo"})
    assert down.rc == 0, down.output
    assert live(account, prefix="demo-") == [] and [i["name"] for i in live(account)] == ["other"]
    assert len(account.requests("POST", TERMINATE)) == 3
    # Launched moments ago, by their launched-at tags: they had cost a cent or two.
    assert re.fullmatch(
        r"Terminated 3 node\(s\) of cluster demo \(demo-1, demo-2, demo-3\), which cost \$2\.25 per hour "
        r"\(\$54\.00 per day\) and had cost \$0\.0\d so far\.",
        role_task(down, "Show what was removed")["msg"],
    ), role_task(down, "Show what was removed")["msg"]
    again = ansible.playbook(plays=import_playbook("teardown"), extra_vars={"lambda_cluster_name": "demo"})
    assert again.rc == 0 and changed_tasks(again) == [], again.output
    assert "has no nodes; nothing to terminate" in role_task(again, "Show what was removed")["msg"]


def test_provision_adds_the_nodes_to_the_inventory_and_launches_only_missing_ones(ansible, account):
    first = ansible.playbook(
        plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_nodes={"count": 1})
    )
    assert first.rc == 0, first.output
    account.clear_requests()
    plays = [
        *import_playbook("provision"),
        {
            "name": "use the group",
            "hosts": "lambda_cluster_my_demo",
            "gather_facts": False,
            "tasks": [{"name": "vars", "ansible.builtin.debug": {"msg": "{{ lambda_id }} {{ lambda_gpus }}"}}],
        },
    ]
    grow = cluster_vars(
        lambda_cluster_name="my-demo",
        lambda_cluster_nodes={"count": 2, "name_pattern": "{cluster}-gpu-{index}"},
    )
    run = ansible.playbook(plays=plays, extra_vars=grow)
    assert run.rc == 0, run.output
    names = [n["name"] for n in live(account, prefix="my-demo")]
    assert names == ["my-demo-gpu-1", "my-demo-gpu-2"]
    hosts = {e["_host"]: e["msg"] for e in role_tasks(run, "vars")}
    ids = {n["name"]: n["id"] for n in live(account, prefix="my-demo")}
    assert hosts == {name: f"{ids[name]} 1" for name in names}

    # A third node joins: only it is launched; the others are left as they are.
    account.clear_requests()
    grow["lambda_cluster_nodes"]["count"] = 3
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=grow)
    assert run.rc == 0, run.output
    assert len(account.requests("POST", LAUNCH)) == 1
    assert role_task(run, "Record the cluster")["ansible_facts"]["lambda_cluster_result"]["launched"] == [
        "my-demo-gpu-3"
    ]
    # The first cluster is untouched.
    assert [n["name"] for n in live(account, prefix="demo-")] == ["demo-1"]


def test_failover_keeps_one_type_per_cluster_and_new_nodes_take_its_expiry(ansible, account):
    a100 = "gpu_1x_a100_sxm4"
    account.seed(capacity={a100: ["us-west-1"]})
    mixable = cluster_vars(lambda_cluster_nodes={"count": 1}, lambda_cluster_ttl_hours=1)
    mixable["lambda_cluster_defaults"]["instance_type"] = [a100, "gpu_1x_a10"]
    ansible.playbook(plays=import_playbook("provision"), extra_vars=mixable).assert_ok()
    (first,) = live(account, prefix="demo-")
    assert first["instance_type"]["name"] == a100
    # The A100s run out. Growing the cluster does not fail over to A10s: it fails, and launches nothing else.
    account.seed(capacity={a100: []})
    account.clear_requests()
    grow = mixable | {"lambda_cluster_nodes": {"count": 3}, "lambda_cluster_ttl_hours": 8}
    refused = ansible.playbook(plays=import_playbook("provision"), extra_vars=grow)
    assert refused.rc != 0 and [n["name"] for n in live(account, prefix="demo-")] == ["demo-1"]
    assert account.requests("POST", LAUNCH) == []  # the A10s it could have had were never asked for
    assert "Launch failed for demo-2: No capacity for demo-2" in "\n".join(
        role_task(refused, "Show the cluster")["msg"]
    )
    # Mixing allowed: A10s join, with the cluster's expiry, not one 8 hours away.
    mixed = ansible.playbook(
        plays=import_playbook("provision"), extra_vars=grow | {"lambda_cluster_allow_mixed_types": True}
    )
    mixed.assert_ok()
    nodes = live(account, prefix="demo-")
    assert [n["instance_type"]["name"] for n in nodes] == [a100, "gpu_1x_a10", "gpu_1x_a10"]
    assert {tags_of(n)["expires-at"] for n in nodes} == {tags_of(first)["expires-at"]}
    summary = "\n".join(role_task(mixed, "Show the cluster")["msg"])
    assert (
        f"The cluster expires at {tags_of(first)['expires-at']}" in summary
        and "New nodes take the cluster's expiry" in summary
    )


def test_node_list_with_per_node_settings(ansible, account):
    nodes = [
        "head",
        {"name": "worker-a100", "instance_type": ["gpu_1x_a100_sxm4"], "region": ["us-west-2"], "tags": {"role": "w"}},
    ]
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_nodes=nodes))
    assert run.rc == 0, run.output
    found = {n["name"]: n for n in live(account)}
    assert set(found) == {"head", "worker-a100"}
    assert found["head"]["instance_type"]["name"] == "gpu_1x_a10"
    assert found["worker-a100"]["instance_type"]["name"] == "gpu_1x_a100_sxm4"
    assert found["worker-a100"]["region"]["name"] == "us-west-2"
    tags = tags_of(found["worker-a100"])
    assert tags == {
        "team": "research",
        "role": "w",
        "cluster": "demo",
        "launch-id": tags["launch-id"],
        "launched-at": tags["launched-at"],
    }
    assert "expires-at" not in tags_of(found["head"])


def test_check_mode_launches_nothing(ansible, account):
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(), check=True)
    assert run.rc == 0, run.output
    assert account.requests("POST") == [] and live(account) == []
    summary = "\n".join(role_task(run, "Show the cluster")["msg"])
    assert "Would have launched: demo-1, demo-2, demo-3." in summary


def test_launch_rate_limit_is_respected_without_failing(ansible, account, simulator_factory):
    # Longer than the pause after each launch (a few seconds), so that the paced launches still meet 429 answers.
    limited = simulator_factory("--launch-interval", "6", "--boot-seconds", "1")
    add_deploy_key(limited)
    # The role paces more tightly than the API allows: the API answers 429, and the module waits and retries.
    run = ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster_vars(lambda_cluster_launch_interval=0.5),
        env=limited.env,
    )
    assert run.rc == 0, run.output
    assert len(live(limited, prefix="demo-")) == 3
    launches = limited.requests("POST", LAUNCH)
    assert [r["status"] for r in launches].count(200) == 3
    assert 429 in [r["status"] for r in launches]


def test_node_name_taken_by_an_instance_outside_the_cluster_fails_before_any_launch(ansible, account):
    account.seed(instances=[{"name": "demo-2", "tags": [{"key": "team", "value": "other"}]}])
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars())
    assert run.rc != 0
    role_failure(run, "Check the cluster's variables", "Instance demo-2 (", "is not tagged cluster=demo", "Nothing was")
    assert account.requests("POST", LAUNCH) == []


def test_wait_for_ssh_fails_on_unreachable_nodes_and_leaves_them(ansible, account):
    run = ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster_vars(
            lambda_cluster_nodes={"count": 1}, lambda_cluster_wait_for_ssh=True, lambda_cluster_wait_timeout=4
        ),
    )
    assert run.rc != 0
    [node] = live(account)
    # One line that names the node and its address, not a dump of the instance.
    role_failure(run, "Check that every node is up", f"demo-1 ({node['id']}) is active and did not answer SSH on")
    assert [n["name"] for n in live(account)] == ["demo-1"]


def test_user_data_stays_out_of_the_output_even_verbose_and_on_a_failed_launch(ansible, account):
    secret = "K7-not-for-logs"
    defaults = cluster_vars()["lambda_cluster_defaults"] | {"user_data": f"#cloud-config\n# {secret} (defaults)\n"}
    nodes = [
        {"name": "demo-1", "user_data": f"#cloud-config\n# {secret} (node)\n"},
        {"name": "demo-2", "ssh_key_name": "nobody"},  # unknown key: this launch fails
    ]
    run = ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster_vars(lambda_cluster_nodes=nodes, lambda_cluster_defaults=defaults),
        verbosity=1,
    )
    assert run.rc != 0
    assert "unknown SSH key 'nobody'" in run.output, run.output[-3000:]
    assert secret not in run.output
    # Nor in any result a callback sees (AWX keeps those as job events).
    assert secret not in json.dumps(run.results)
    # Both launches were given user_data; the module hides its value.
    launches = role_tasks(run, "Launch the node")
    assert [t["_status"] for t in launches] == ["changed", "failed"]
    # Where the result carries the invocation (ansible-core before 2.21, with -v), the module hid the value.
    hidden = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    shown = [t["invocation"]["module_args"]["user_data"] for t in launches if "invocation" in t]
    assert shown in ([hidden, hidden], [])


def test_a_failed_launch_stops_the_launches_and_is_reported(ansible, account):
    nodes = ["demo-1", {"name": "demo-2", "instance_type": [NO_CAPACITY]}, "demo-3"]
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_nodes=nodes))
    assert run.rc != 0
    # demo-1 was launched, demo-2 found no capacity, and demo-3 was not tried.
    assert len(account.requests("POST", LAUNCH)) == 1
    assert [n["name"] for n in live(account)] == ["demo-1"]
    assert [t["_status"] for t in role_tasks(run, "Launch the node")] == ["changed", "failed", "skipped"]
    # A summary first, then one line that says what happened and what to do.
    summary = "\n".join(role_task(run, "Show the cluster")["msg"])
    assert "Launched: demo-1." in summary
    assert "Launch failed for demo-2: No capacity for demo-2" in summary
    assert "Not launched, as the role stops at the first failed launch: demo-3." in summary
    result = role_task(run, "Record the cluster")["ansible_facts"]["lambda_cluster_result"]
    assert result["launched"] == ["demo-1"] and result["not_launched"] == ["demo-3"]
    assert result["failed_launch"]["name"] == "demo-2"
    role_failure(
        run,
        "Check that every missing node was launched",
        "Launching node demo-2 of cluster demo failed: No capacity for demo-2",
        "No further node was launched (demo-3).",
        "Launched before the failure, and left running: demo-1.",
        "run the role again",
    )


def test_a_launch_answered_with_a_garbled_success_is_found_in_the_same_run_and_counted(ansible, account):
    # The API launches demo-2, then answers 200 with half a body: no instance id. Nothing may rely on the simulator's
    # Idempotency-Key support, which the real API does not document.
    account.configure(idempotency=False)
    account.fault(method="POST", path=LAUNCH, status=200, body='{"data": {"instance_ids": ["', after_processing=True)
    account.seed(instances=[{"name": "demo-1", "tags": [{"key": "cluster", "value": "demo"}]}])
    run = ansible.playbook(
        plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_nodes={"count": 2})
    )
    assert run.rc == 0, run.output[-3000:]
    assert sorted(n["name"] for n in live(account)) == ["demo-1", "demo-2"]
    assert len(account.requests("POST", LAUNCH)) == 1  # found by name, never launched twice
    summary = role_task(run, "Show the cluster")["msg"]
    assert summary[0].startswith("Cluster demo: 2 node(s)") and "Launched: demo-2." in summary
    assert (
        "Of these, launched though the API's answer was unclear, and found by name (not launched twice): demo-2."
        in (summary)
    )
    assert role_task(run, "Record the cluster")["ansible_facts"]["lambda_cluster_result"]["recovered"] == ["demo-2"]


def test_unhealthy_node_is_reported_and_not_waited_for(ansible, account):
    account.seed(
        instances=[
            {
                "name": "demo-1",
                "status": "unhealthy",
                "region": "us-east-1",
                "instance_type": "gpu_1x_a10",
                "tags": [{"key": "cluster", "value": "demo"}],
            }
        ]
    )
    wanted = cluster_vars(lambda_cluster_nodes={"count": 2}, lambda_cluster_wait_timeout=120)
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=wanted)
    # Waiting on demo-1 would have ended in "Not every node ... became active" after the timeout.
    assert run.rc == 0, run.output
    assert len(account.requests("POST", LAUNCH)) == 1
    assert {n["name"]: n["status"] for n in live(account)} == {"demo-1": "unhealthy", "demo-2": "active"}
    assert "Warning: unhealthy, not waited for: demo-1." in role_task(run, "Show the cluster")["msg"]
    warning = role_task(run, "Warn about unhealthy nodes")["msg"]
    assert "demo-1 of cluster demo is unhealthy" in warning and "state=restarted" in warning

    # Again: nothing changes, one read of the instance list, no wait, and the same warning.
    account.clear_requests()
    again = ansible.playbook(plays=import_playbook("provision"), extra_vars=wanted)
    assert again.rc == 0, again.output
    assert changed_tasks(again) == []
    assert re.search(r"localhost\s+:.* changed=0 ", again.output)
    assert [(r["method"], r["path"]) for r in account.requests()] == [("GET", "/api/v1/instances")]
    assert "demo-1 of cluster demo is unhealthy" in role_task(again, "Warn about unhealthy nodes")["msg"]


def test_provision_and_teardown_refuse_another_state_from_extra_vars(ansible, account):
    account.seed(instances=[{"name": "demo-1", "tags": [{"key": "cluster", "value": "demo"}]}])
    account.clear_requests()
    # A file passed with -e that says absent would have turned provision into a teardown.
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars(lambda_cluster_state="absent"))
    assert run.rc != 0
    run.failure(
        "Check that the variables ask to provision", "only provisions", "lambda_cluster_state is 'absent'", "teardown"
    )
    # And -e lambda_cluster_state=present would have turned teardown into a launch.
    run = ansible.playbook(plays=import_playbook("teardown"), extra_vars=cluster_vars(lambda_cluster_state="present"))
    assert run.rc != 0
    run.failure(
        "Check that the variables ask to tear down", "only removes", "lambda_cluster_state is 'present'", "provision"
    )
    assert account.requests() == []
    assert [n["name"] for n in live(account)] == ["demo-1"]


# ------------------------------------------------------------------ reap
def test_reap_dry_run_lists_and_confirm_terminates_only_expired(ansible, account):
    account.seed(
        instances=[
            {
                "name": "old",
                "instance_type": "gpu_1x_a100_sxm4",
                "region": "us-west-2",
                "tags": [{"key": "expires-at", "value": utc(-1)}, {"key": "launched-at", "value": utc(-3)}],
            },
            {"name": "old-date", "tags": [{"key": "expires-at", "value": "2020-01-31"}]},
            {"name": "fresh", "tags": [{"key": "expires-at", "value": utc(+1)}]},
            {"name": "unreadable", "tags": [{"key": "expires-at", "value": "next tuesday"}]},
            {"name": "untagged"},
            {"name": "gone", "status": "terminated", "tags": [{"key": "expires-at", "value": utc(-5)}]},
        ]
    )
    ids = {i["name"]: i["id"] for i in account.state()["instances"]}
    account.clear_requests()

    # A confirmation that is neither yes nor no is refused, before the API is read: never taken for a dry run.
    unsure = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": "maybe"})
    unsure.failure("Check the variables", "Invalid value for reap_confirm: must be true or false, got 'maybe'.")
    assert account.requests() == []

    dry = ansible.playbook(plays=import_playbook("reap"))
    assert dry.rc == 0, dry.output
    assert changed_tasks(dry) == []
    assert account.requests("POST") == []
    listing = "\n".join(role_task(dry, "List what is expired")["msg"])
    assert "Dry run: would have terminated 2 expired instance(s), saving $2.04 per hour" in listing
    assert f"old ({ids['old']}): gpu_1x_a100_sxm4 in us-west-2" in listing and "$1.29 per hour" in listing
    assert f"old-date ({ids['old-date']})" in listing
    assert "Left alone: unreadable" in listing
    for name in ("fresh", "untagged", "gone"):
        assert f"{name} (" not in listing

    confirmed = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": True})
    assert confirmed.rc == 0, confirmed.output
    assert [t["item"]["name"] for t in role_task(confirmed, "Terminate the expired instances")["results"]] == [
        "old",
        "old-date",
    ]
    assert [i["name"] for i in live(account)] == ["fresh", "unreadable", "untagged"]
    # old ran 3 hours at $1.29 (within a minute's cost); old-date has no launched-at tag.
    said = re.fullmatch(
        r"Terminated 2 instance\(s\), saving \$2\.04 per hour \(\$48\.96 per day\); they had cost \$(\S+) so "
        r"far \(not counting 1 whose launch time is unknown\)\.",
        role_task(confirmed, "Show what was terminated")["msg"],
    )
    assert said and abs(float(said[1]) - 3.87) <= 0.03, role_task(confirmed, "Show what was terminated")["msg"]

    # Nothing left to reap: a scheduled run reports no change.
    again = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": "true"})
    assert again.rc == 0 and changed_tasks(again) == [], again.output
    assert "Nothing to reap" in role_task(again, "List what is expired")["msg"][0]


def test_reap_terminates_a_cluster_whose_ttl_has_passed(ansible, account):
    run = ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster_vars(lambda_cluster_nodes={"count": 2}, lambda_cluster_ttl_hours=0.0003),
    )
    assert run.rc == 0, run.output
    time.sleep(1.5)  # the TTL (about one second) passes
    reaped = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": True})
    assert reaped.rc == 0, reaped.output
    assert live(account) == []


def test_reap_leaves_times_that_are_not_real_dates_alone(ansible, account):
    not_dates = {
        "no-such-month": "2030-13-01",
        "no-such-anything": "2020-99-99T99:99",
        "not-a-leap-year": "2021-02-29",
        "hour-24": "2020-01-01T24:00:00Z",
        "year-zero": "0000-01-01",
    }
    account.seed(
        instances=[{"name": name, "tags": [{"key": "expires-at", "value": value}]} for name, value in not_dates.items()]
        + [{"name": "leap-day", "tags": [{"key": "expires-at", "value": "2024-02-29T23:59:59+00:00"}]}]
    )
    account.clear_requests()

    # Check mode says what it would do, and does nothing.
    checked = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": True}, check=True)
    assert checked.rc == 0, checked.output
    listing = role_task(checked, "List what is expired")["msg"]
    assert listing[0].startswith("Check mode: would have terminated 1 expired instance(s)")
    assert account.requests("POST") == []

    confirmed = ansible.playbook(plays=import_playbook("reap"), extra_vars={"reap_confirm": True})
    assert confirmed.rc == 0, confirmed.output
    listing = "\n".join(role_task(confirmed, "List what is expired")["msg"])
    assert listing.startswith("Terminating 1 expired instance(s)")
    for name, value in not_dates.items():
        assert f"Left alone: {name} (" in listing and f"expires-at={value}, which is not a valid UTC time" in listing
    assert [t["item"]["name"] for t in role_task(confirmed, "Terminate the expired instances")["results"]] == [
        "leap-day"
    ]
    assert [n["name"] for n in live(account)] == sorted(not_dates)


# ------------------------------------------------------------------ configure (gpu_node)
FAKE_NVIDIA_SMI = textwrap.dedent(
    """\
    #!{python}
    # Answers like nvidia-smi, from the JSON state file named by FAKE_NVIDIA_SMI_STATE. Hosts run it at once: one
    # at a time reads and rewrites the file.
    import fcntl, json, os, sys

    path = os.environ["FAKE_NVIDIA_SMI_STATE"]
    lock = open(path + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(path) as handle:
        state = json.load(handle)
    args = sys.argv[1:]
    state.setdefault("calls", []).append(args)
    if not state["gpus"]:
        print("No devices were found")
        code = 6
    elif args and args[0].startswith("--query-gpu="):
        for index, gpu in enumerate(state["gpus"]):
            mode = "Enabled" if gpu["persistence"] else "Disabled"
            fields = [str(index), gpu["name"], str(gpu["memory"]), "535.129.03", mode]
            print(", ".join(fields + [f"GPU-{{index:08d}}-4e1f", f"00000000:{{index:02X}}:00.0"]))
        code = 0
    elif args and args[0].startswith("--persistence-mode="):
        for index, gpu in enumerate(state["gpus"]):
            gpu["persistence"] = args[0].endswith("=1")
            print(f"Enabled persistence mode for GPU 00000000:{{index:02X}}:00.0.")
        code = 0
    else:
        print("Thu Nov 28 10:00:00 2024")
        print("+---------------------------------------------------------------------------------------+")
        print("| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |")
        print("|-----------------------------------------+----------------------+----------------------+")
        code = 0
    with open(path, "w") as handle:
        json.dump(state, handle)
    sys.exit(code)
    """
)


class FakeGpus:
    """A stand-in nvidia-smi first on PATH, with its GPUs in a JSON file."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "fakebin"
        self.bin.mkdir()
        self.state = tmp_path / "gpus.json"
        script = self.bin / "nvidia-smi"
        script.write_text(FAKE_NVIDIA_SMI.format(python=sys.executable))
        script.chmod(0o755)
        self.set(count=1)

    def set(self, count: int, name: str = "NVIDIA A10", memory: int = 23028, persistence: bool = False) -> None:
        gpus = [{"name": name, "memory": memory, "persistence": persistence} for _index in range(count)]
        self.state.write_text(json.dumps({"gpus": gpus}))

    def read(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "FAKE_NVIDIA_SMI_STATE": str(self.state)}


@pytest.fixture
def gpus(tmp_path) -> FakeGpus:
    return FakeGpus(tmp_path)


EVERY_NODE = {"configure_hosts": "lambda"}  # the configure playbook runs on no default hosts


def inventory(tmp_path: Path, **host_vars: Any) -> str:
    """An inventory directory: the plugin's file plus group_vars that run everything locally."""
    directory = tmp_path / "inventory"
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    (directory / "test.lambda_cloud.yml").write_text(yaml.safe_dump({"plugin": "lambdalabs.cloud.lambda_cloud"}))
    variables = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **host_vars}
    (directory / "group_vars" / "lambda.yml").write_text(yaml.safe_dump(variables))
    return str(directory)


@pytest.mark.parametrize(
    ("playbook", "variable"),
    [("configure", "configure_hosts"), ("train", "train_hosts"), ("reap_idle", "reap_idle_hosts")],
)
def test_a_playbook_on_nodes_needs_hosts_that_exist_and_does_nothing_otherwise(
    ansible, account, tmp_path, playbook, variable
):
    account.seed(instances=[{"name": "trial-1", "tags": [{"key": "cluster", "value": "trial"}]}])
    source = inventory(tmp_path)
    with_groups = Path(source) / "test.lambda_cloud.yml"
    with_groups.write_text(
        yaml.safe_dump(
            {
                "plugin": "lambdalabs.cloud.lambda_cloud",
                "keyed_groups": [{"key": "lambda_tags.cluster", "prefix": "lambda_cluster"}],
            }
        )
    )
    step = "Refuse a missing host pattern, or one that matches no host"
    unnamed = ansible.playbook(plays=import_playbook(playbook), inventory=source)
    assert unnamed.rc != 0
    unnamed.failure(
        step,
        f"Give the hosts: -e {variable}=PATTERN",
        "Cluster groups in the inventory: lambda_cluster_trial (1 host(s)).",
    )
    if playbook != "reap_idle":  # the one that terminates is also tried with a misspelt and an unreadable inventory
        return
    misspelt = ansible.playbook(
        plays=import_playbook(playbook), inventory=source, extra_vars={"lambda_cluster_name": "trail"}
    )
    misspelt.failure(
        step, f"{variable} 'lambda_cluster_trail' matches no host of the inventory.", "lambda_cluster_trial"
    )
    # An inventory source that cannot be read (a wrong key) gives no host at all.
    with_groups.write_text(with_groups.read_text() + "api_key: not-the-key\n")
    blind = ansible.playbook(
        plays=import_playbook(playbook), inventory=source, extra_vars={variable: "lambda_cluster_trial"}
    )
    blind.failure(step, "matches no host", "The inventory has no cluster group: was it given with -i")
    # Nothing ran on any node, nothing was terminated.
    assert [e["task"] for e in blind.results] == ["Check the variables, before any node is sampled", step]
    assert not account.requests("POST", "/instance-operations/terminate")


def test_configure_gathers_gpu_facts_and_sets_persistence_mode(ansible, account, gpus, tmp_path):
    account.seed(
        instances=[
            {"name": "eight", "instance_type": "gpu_8x_a100_80gb_sxm4"},
            {"name": "pending", "status": "booting"},
        ]
    )
    gpus.set(count=8, name="NVIDIA A100-SXM4-80GB", memory=81920)
    run = ansible.playbook(
        plays=import_playbook("configure"),
        inventory=inventory(tmp_path),
        extra_vars={"configure_hosts": "lambda", "gpu_node_persistence_mode": True, "gpu_node_become": False},
        env=gpus.env,
    )
    assert run.rc == 0, run.output
    facts = role_task(run, "Record the new persistence mode")["ansible_facts"]["lambda_gpu_facts"]
    assert role_task(run, "Record the new persistence mode")["_host"] == "eight"  # booting hosts are not listed
    assert facts["present"] is True and facts["count"] == 8 and facts["expected_count"] == 8
    assert facts["model"] == "NVIDIA A100-SXM4-80GB" and facts["models"] == ["NVIDIA A100-SXM4-80GB"]
    assert facts["memory_mib"] == 81920 and facts["memory_total_mib"] == 8 * 81920
    assert facts["driver_version"] == "535.129.03" and facts["cuda_version"] == "12.2"
    assert facts["persistence_mode"] is True
    assert facts["gpus"][7] == {
        "index": 7,
        "name": "NVIDIA A100-SXM4-80GB",
        "memory_mib": 81920,
        "driver_version": "535.129.03",
        "persistence_mode": True,
        "uuid": "GPU-00000007-4e1f",
        "pci_bus_id": "00000000:07:00.0",
    }
    assert ["--persistence-mode=1"] in gpus.read()["calls"]
    assert (
        "eight: 8x NVIDIA A100-SXM4-80GB, 81920 MiB each, driver 535.129.03, CUDA 12.2"
        in (role_task(run, "Read and check the node's GPUs, hostname and mounts")["msg"])
    )

    # Second run: the mode is already on, so nothing changes.
    again = ansible.playbook(
        plays=import_playbook("configure"),
        inventory=inventory(tmp_path),
        extra_vars={"configure_hosts": "lambda", "gpu_node_persistence_mode": True, "gpu_node_become": False},
        env=gpus.env,
    )
    assert again.rc == 0 and changed_tasks(again) == [], again.output
    assert sum(call[:1] == ["--persistence-mode=1"] for call in gpus.read()["calls"]) == 1


def test_configure_fails_when_a_gpu_is_missing(ansible, account, gpus, tmp_path):
    account.seed(instances=[{"name": "eight", "instance_type": "gpu_8x_a100_80gb_sxm4"}])
    gpus.set(count=7)
    run = ansible.playbook(
        plays=import_playbook("configure"), inventory=inventory(tmp_path), env=gpus.env, extra_vars=EVERY_NODE
    )
    assert run.rc != 0
    role_failure(
        run,
        "Read and check the node's GPUs, hostname and mounts",
        "eight shows 7 GPU(s) but its instance type gpu_8x_a100_80gb_sxm4 has 8",
    )


def test_configure_without_gpu_fails_unless_not_required(ansible, account, gpus, tmp_path):
    account.seed(instances=[{"name": "cpu-only"}])
    gpus.set(count=0)
    run = ansible.playbook(
        plays=import_playbook("configure"), inventory=inventory(tmp_path), env=gpus.env, extra_vars=EVERY_NODE
    )
    assert run.rc != 0
    role_failure(
        run, "Read and check the node's GPUs, hostname and mounts", "cpu-only has no working GPU: No devices were found"
    )

    reported = ansible.playbook(
        plays=import_playbook("configure"),
        inventory=inventory(tmp_path, gpu_node_require_gpu=False),
        env=gpus.env,
        extra_vars=EVERY_NODE,
    )
    assert reported.rc == 0, reported.output
    assert (
        "cpu-only: no working GPU (No devices were found)"
        in role_task(reported, "Read and check the node's GPUs, hostname and mounts")["msg"]
    )
    assert role_task(reported, "Record the GPU facts")["ansible_facts"]["lambda_gpu_facts"]["present"] is False
    assert role_task(reported, "Read and check the node's GPUs, hostname and mounts")["_status"] == "ok"

    # Without any nvidia-smi at all.
    missing = ansible.playbook(
        plays=import_playbook("configure"),
        inventory=inventory(tmp_path, gpu_node_require_gpu=False),
        extra_vars={"configure_hosts": "lambda", "gpu_node_nvidia_smi": "no-such-nvidia-smi"},
    )
    assert missing.rc == 0, missing.output
    assert (
        "no-such-nvidia-smi was not found"
        in role_task(missing, "Read and check the node's GPUs, hostname and mounts")["msg"]
    )


def test_configure_checks_that_file_systems_are_mounted(ansible, account, gpus, tmp_path):
    fs_id = "f" * 32
    account.seed(
        instances=[
            {
                "name": "mounted",
                "file_system_names": ["root"],
                "file_system_mounts": [{"mount_point": "/", "file_system_id": fs_id}],
            },
            {
                "name": "unmounted",
                "file_system_names": ["datasets"],
                "file_system_mounts": [{"mount_point": "/lambda/nfs/no-such-datasets", "file_system_id": fs_id}],
            },
            # Two file systems, one reported mount: the other one is expected at <root>/<its name>. With the root
            # "" below, that is /proc (mounted on any Linux host) for mixed-ok, and nothing mounted for mixed-bad.
            {
                "name": "mixed-ok",
                "file_system_names": ["proc", "datasets"],
                "file_system_mounts": [{"mount_point": "/", "file_system_id": fs_id}],
            },
            {
                "name": "mixed-bad",
                "file_system_names": ["no-such-fs", "datasets"],
                "file_system_mounts": [{"mount_point": "/", "file_system_id": fs_id}],
            },
        ]
    )
    run = ansible.playbook(
        plays=import_playbook("configure"),
        inventory=inventory(tmp_path, gpu_node_default_mount_root=""),
        env=gpus.env,
        extra_vars=EVERY_NODE,
    )
    assert run.rc != 0
    checks = {t["_host"]: t for t in role_tasks(run, "Read and check the node's GPUs, hostname and mounts")}
    assert checks["mounted"]["_status"] == "ok" and checks["mixed-ok"]["_status"] == "ok"
    assert checks["unmounted"]["_status"] == "failed"
    assert "/lambda/nfs/no-such-datasets" in checks["unmounted"]["msg"] and "\n" not in checks["unmounted"]["msg"]
    assert checks["mixed-bad"]["_status"] == "failed"
    assert "1 of /no-such-fs, /datasets should be mounted, but none is" in checks["mixed-bad"]["msg"]


def test_provision_can_configure_the_new_nodes(ansible, account, gpus):
    run = ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster_vars(lambda_cluster_nodes={"count": 2}, provision_configure=True),
        env=gpus.env,
    )
    assert run.rc == 0, run.output
    shown = {t["_host"]: t["msg"] for t in role_tasks(run, "Read and check the node's GPUs, hostname and mounts")}
    assert sorted(shown) == ["demo-1", "demo-2"]
    assert all("1x NVIDIA A10" in msg for msg in shown.values())
    counted = role_tasks(run, "Read and check the node's GPUs, hostname and mounts")
    assert [t["_status"] for t in counted] == ["ok", "ok"]
