# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job on a cluster: the check before it starts, the scripts the nodes run, the watch that ends it, the report."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._job import (
    JobOptions,
    JobWatch,
    gone_reason,
    job_plan,
    job_report,
    parse_status,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import duration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc).timestamp()
LATER = "2026-06-01T14:00:00Z"  # two hours after NOW


def node(name, cluster="llm", status="active", expires=LATER, node_id=None):
    tags = [{"key": "cluster", "value": cluster}] if cluster else []
    if expires:
        tags.append({"key": "expires-at", "value": expires})
    return {"id": node_id or f"id-{name}", "name": name, "status": status, "tags": tags}


NODES = [node("llm-1"), node("llm-2"), node("llm-10"), node("web", cluster="site")]
INVENTORY = {"llm-10": "id-llm-10", "llm-2": "id-llm-2", "llm-1": "id-llm-1"}


def plan(instances=None, cluster="llm", inventory=None, **options):
    instances = NODES if instances is None else instances
    inventory = INVENTORY if inventory is None else inventory
    return job_plan(instances, cluster, inventory, JobOptions.checked(**options), now=NOW)


# ------------------------------------------------------------------ refusals: nothing runs, nothing is terminated
@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ("", "lambda_cluster_name: is required: give the cluster the job runs on. Clusters in the account: llm (3"),
        (None, "lambda_cluster_name: is required"),
        ("lmm", "No cluster named 'lmm': clusters in the account: llm (3 node(s)), site (1 node(s))."),
        ("llm\n", "lambda_cluster_name must be 1 to 48 letters"),
        ("site-2", "No cluster named 'site-2'"),
    ],
)
def test_a_missing_misspelt_or_malformed_name_is_refused_and_lists_the_clusters(cluster, expected):
    found = plan(cluster=cluster)
    assert expected in found["error"] and found["error"].endswith("Nothing was run or terminated.")
    assert found["targets"] == [] and "\n" not in found["error"]


def test_an_account_without_clusters_says_so():
    assert "the account has no cluster" in plan(instances=[node("x", cluster=None)])["error"]


def test_a_cluster_without_an_active_node_is_refused():
    found = plan(instances=[node("llm-1", status="booting"), node("llm-2", status="unhealthy")])
    assert found["error"].startswith("Cluster llm has no active node (1 booting, 1 unhealthy)")


def test_terminated_nodes_are_no_cluster():
    assert "No cluster named 'llm'" in plan(instances=[node("llm-1", status="terminated")])["error"]


def test_an_empty_inventory_means_it_could_not_be_read_and_is_refused():
    found = plan(inventory={})
    assert found["error"].startswith(
        "The inventory has no host in group lambda_cluster_llm, but the API lists 3 active node(s) of cluster llm"
    )


def test_an_inventory_that_differs_from_the_api_is_refused():
    stale = plan(inventory={**INVENTORY, "llm-old": "id-gone"})
    assert "holds llm-old, which the API does not list" in stale["error"]
    partial = plan(inventory={"llm-1": "id-llm-1"})
    assert "misses active node(s) llm-2, llm-10" in partial["error"]


def test_more_nodes_than_forks_is_refused_for_a_job_on_every_node_only():
    assert "3 nodes but Ansible has 2 forks: run with -f 3" in plan(run_on="all", forks=2)["error"]
    assert plan(run_on="head", forks=1)["error"] is None


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"run_on": "every"}, "run_on"),
        ({"timeout": "soon"}, "run_timeout"),
        ({"timeout": float("nan")}, "run_timeout"),
        ({"require_expiry": "maybe"}, "run_require_expiry"),
        ({"margin": -1}, "run_expiry_margin"),
        ({"log_dir": "logs\n"}, "run_log_dir"),
    ],
)
def test_bad_variables_are_refused_naming_them(options, param):
    with pytest.raises(InvalidParameter) as error:
        JobOptions.checked(**options)
    assert error.value.param == param


def test_variables_from_the_command_line_are_read_as_given():
    options = JobOptions.checked(timeout="3600", require_expiry="false", margin="5", forks="8")
    assert (options.timeout, options.require_expiry, options.margin, options.forks) == (3600, False, 5, 8)


# ------------------------------------------------------------------ where and how long
def test_the_head_is_the_first_node_in_natural_order_and_alone_unless_all():
    head = plan()
    assert head["error"] is None and head["head"] == "llm-1" and head["targets"] == ["llm-1"]
    assert head["env_nodes"] == 0 and head["watch_ids"] == {"llm-1": ["id-llm-1"]}
    every = plan(run_on="all")
    assert every["targets"] == ["llm-1", "llm-2", "llm-10"] and every["env_nodes"] == 3
    # One node reads the API for all of them.
    assert every["watch_ids"] == {"llm-1": ["id-llm-1", "id-llm-2", "id-llm-10"], "llm-2": [], "llm-10": []}


def test_the_run_has_an_id_and_a_log_directory_of_its_own():
    first, second = plan(log_dir="/var/log/jobs"), plan(log_dir="/var/log/jobs")
    assert first["run_id"].startswith("20260601T120000Z-") and first["run_id"] != second["run_id"]
    assert first["log_dir"] == f"/var/log/jobs/llm-{first['run_id']}"
    assert first["summary"] == (
        f"The job {first['run_id']} runs on llm-1; the logs come to /var/log/jobs/llm-{first['run_id']}. {first['msg']}"
    )


def test_the_time_limit_ends_before_the_clusters_expiry_and_says_so():
    found = plan(timeout=86400, margin=600)
    assert found["timeout"] == 2 * 3600 - 600 and found["expires_at"] == LATER
    assert found["msg"] == (
        f"Cluster llm expires at {LATER}: if this controller stops, reap terminates it then. "
        "The job may run 1 h 50 min."
    )
    assert plan(timeout=60)["timeout"] == 60


def test_the_earliest_expiry_of_the_nodes_counts():
    nodes = [node("llm-1"), node("llm-2", expires="2026-06-01T12:30:00Z")]
    found = plan(instances=nodes, inventory={"llm-1": "id-llm-1", "llm-2": "id-llm-2"}, margin=0)
    assert found["timeout"] == 1800 and found["expires_at"] == "2026-06-01T12:30:00Z"


def test_a_cluster_that_expires_too_soon_is_refused():
    soon = [node("llm-1", expires="2026-06-01T12:05:00Z")]
    found = plan(instances=soon, inventory={"llm-1": "id-llm-1"}, margin=600)
    assert found["error"].startswith("Cluster llm expires at 2026-06-01T12:05:00Z, in 5 min: too soon for a job")


def test_a_cluster_without_expiry_is_refused_unless_allowed():
    bare = [node("llm-1", expires=None)]
    refused = plan(instances=bare, inventory={"llm-1": "id-llm-1"})
    assert "without an expires-at tag" in refused["error"] and "lambda_cluster_ttl_hours" in refused["error"]
    allowed = plan(instances=bare, inventory={"llm-1": "id-llm-1"}, require_expiry=False)
    assert allowed["error"] is None and "has no expiry" in allowed["msg"] and allowed["timeout"] == 86400


def test_an_answer_without_a_status_is_refused():
    with pytest.raises(ValueError, match="no job status"):
        parse_status("Welcome to Ubuntu\n")


def test_a_status_is_read_from_the_answer():
    assert parse_status("motd\n@@lambda-job exit=\nstep 1\n") == (None, ["step 1"])
    assert parse_status("@@lambda-job exit=143\n") == (143, [])


# ------------------------------------------------------------------ the watch
def watch():
    return JobWatch("llm-1", start=100.0, timeout=600, heartbeat=60, progress=30)


def test_the_watch_ends_with_the_jobs_exit_status():
    w = watch()
    w.answered(105, None, ["step 1"])
    assert w.verdict(105) is None
    w.answered(110, 0, ["done"])
    assert w.verdict(110) == ("succeeded", "llm-1: the job ended with exit status 0")
    w.answered(111, 2, [])
    assert w.verdict(111)[0] == "failed" and w.tail == ["done"]


def test_a_node_that_stops_answering_is_lost_at_the_heartbeat_not_before():
    w = watch()
    w.answered(110, None, [])
    w.silent("ssh: connect to host 127.18.0.2 port 22: Connection refused")
    assert w.verdict(169.9) is None
    state, reason = w.verdict(170)
    assert state == "lost" and reason == (
        "llm-1 did not answer for 1 min (run_heartbeat_seconds 60): ssh: connect to host 127.18.0.2 port 22: "
        "Connection refused"
    )


def test_a_node_the_api_no_longer_calls_active_is_lost_at_once():
    assert watch().verdict(101, gone="the node's instance is now unhealthy") == (
        "lost",
        "llm-1: the node's instance is now unhealthy",
    )


def test_another_nodes_failure_stops_the_job_and_the_time_limit_too():
    assert watch().verdict(101, peer="llm-2: the job ended with exit status 1") == (
        "stopped",
        "llm-1: stopped because llm-2: the job ended with exit status 1",
    )
    w = watch()
    w.answered(699, None, [])
    assert w.verdict(700) == ("timed_out", "llm-1: the job ran out of its 10 min")


def test_progress_lines_come_at_most_every_progress_seconds():
    w = watch()
    assert w.progress_line(120) is None
    w.answered(125, None, ["epoch 1", "epoch 2"])
    assert w.progress_line(130) == "llm-1: running for 30 s; log: epoch 2"
    assert w.progress_line(150) is None
    w.silent("Connection refused")
    assert w.progress_line(200) == "llm-1: running for 1 min 40 s; no answer for 1 min 15 s; log: epoch 2"


def test_the_api_view_of_a_node():
    assert gone_reason({"status": "active"}) is None
    assert gone_reason({"status": "terminating"}) == "the node's instance is now terminating"
    assert gone_reason(None) == "the API no longer lists the node's instance"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (130, "2 min 10 s"), (1800, "30 min"), (3900, "1 h 5 min"), (7200, "2 h")],
)
def test_durations(seconds, text):
    assert duration(seconds) == text


# ------------------------------------------------------------------ the report
def test_the_report_has_a_line_a_node_and_blames_the_node_that_failed_by_itself():
    head_plan = {"targets": ["llm-1", "llm-2", "llm-3"]}
    results = {
        "llm-1": {"state": "stopped", "rc": None, "msg": "llm-1: stopped because llm-2 did not answer", "log": "/l/1"},
        "llm-2": {"state": "lost", "rc": None, "msg": "llm-2 did not answer for 1 min", "log": None},
        "llm-3": {"unreachable": True, "msg": "ssh: unreachable"},
    }
    report = job_report(results, head_plan)
    assert report["lines"] == [
        "llm-1: stopped; log: /l/1",
        "llm-2: lost; no log (the node could not give it)",
        "llm-3: unreachable; no log (the node could not give it)",
    ]
    assert not report["ok"] and report["failure"] == "llm-2 did not answer for 1 min"


def test_a_job_that_succeeded_everywhere_is_ok():
    results = {"a": {"state": "succeeded", "rc": 0, "log": "/l/a", "tail": ["done"]}}
    report = job_report(results, {"targets": ["a"]})
    assert report == {
        "ok": True,
        "teardown": True,
        "lines": ["a: succeeded, exit status 0; log: /l/a"],
        "tails": {"a": ["done"]},
        "failure": "",
        "message": "",
    }


def test_a_failed_job_says_whether_its_cluster_goes_and_a_bad_switch_is_refused():
    failed = {"a": {"state": "failed", "rc": 2, "msg": "a: the job ended with exit status 2", "log": "/l/a"}}
    plan = {"targets": ["a"], "cluster": "llm", "log_dir": "/l"}
    down = job_report(failed, plan)
    assert down["teardown"] is True and down["message"] == (
        "The job on cluster llm failed: a: the job ended with exit status 2. The cluster was torn down. "
        "The logs are in /l."
    )
    kept = job_report(failed, plan, "false")
    assert kept["teardown"] is False and "The cluster was left running for a look." in kept["message"]
    for result in (failed, {"a": {"state": "succeeded", "rc": 0}}):
        with pytest.raises(InvalidParameter, match="teardown_on_failure"):
            job_report(result, plan, "maybe")
    assert job_report({"a": {"state": "succeeded", "rc": 0}}, plan, False)["teardown"] is True
