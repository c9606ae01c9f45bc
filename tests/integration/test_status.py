# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status playbook and lambda_cluster_info: what runs, by cluster, with uptime and cost so far."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any

from tests.integration.support import add_deploy_key, import_playbook, task

TYPES = "/instance-types"
AUDIT = "/api/v1/audit-events"


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prices(account) -> dict[str, int]:
    """Each instance type's price in cents per hour, as the simulator's API gives it."""
    status, answer = account.api("GET", TYPES)
    assert status == 200, answer
    return {name: entry["instance_type"]["price_cents_per_hour"] for name, entry in answer["data"].items()}


def tags(**values: str) -> list[dict[str, str]]:
    return [{"key": key.replace("_", "-"), "value": value} for key, value in values.items()]


def seed_account(account, now: float) -> dict[str, float]:
    """Two clusters and a stray, launched at known times: by launched-at tag, and one only by the audit trail.
    Returns each instance's launch time."""
    launched = {
        "training-1": now - 2 * 3600,
        "training-2": now - 3600,
        "eval-1": now - 1800,  # no launched-at tag: the audit trail's launch event tells
        "forgotten": now - 3 * 3600,
    }
    account.seed(
        instances=[
            {
                "name": "training-1",
                "instance_type": "gpu_1x_a100_sxm4",
                "region": "us-east-1",
                "tags": tags(cluster="training", launched_at=utc(launched["training-1"]), expires_at=utc(now + 7200)),
            },
            {
                "name": "training-2",
                "instance_type": "gpu_1x_a100_sxm4",
                "region": "us-east-1",
                "tags": tags(cluster="training", launched_at=utc(launched["training-2"]), expires_at=utc(now + 7200)),
            },
            {
                "name": "eval-1",
                "instance_type": "gpu_1x_a10",
                "region": "us-west-1",
                "tags": tags(cluster="eval"),
                "launched_at": utc(launched["eval-1"]),
            },
            {
                "name": "forgotten",
                "instance_type": "gpu_8x_h100_sxm5",
                "region": "us-south-1",
                "tags": tags(launched_at=utc(launched["forgotten"])),
            },
            {"name": "ended", "status": "terminated", "tags": tags(cluster="training")},
        ]
    )
    return launched


def instance_types(account) -> dict[str, str]:
    return {i["name"]: i["instance_type"]["name"] for i in account.state()["instances"]}


def status_json(ansible, tmp_path, **extra_vars: Any) -> tuple[Any, dict[str, Any]]:
    """The status playbook with status_format=json: what it prints, and the file it writes for scripts."""
    written = tmp_path / "status.json"
    run = ansible.playbook(
        plays=import_playbook("status"), extra_vars={"status_format": "json", "status_file": str(written), **extra_vars}
    )
    run.assert_ok()
    figures = json.loads(written.read_text())
    assert run.task("Show the clusters as JSON")["msg"] == figures
    return run, figures


# ------------------------------------------------------------------ failure paths first
def test_a_bad_format_or_cluster_name_fails_before_the_api_is_read(ansible, account):
    run = ansible.playbook(plays=import_playbook("status"), extra_vars={"status_format": "yaml"})
    assert run.rc != 0
    run.failure("Check the output format", "status_format must be table or json", '"yaml"')
    run = ansible.playbook(plays=import_playbook("status"), extra_vars={"status_file": "/tmp/never.json"})
    run.failure(
        "Check that a file is asked for only with JSON", "status_file is written only with -e status_format=json"
    )
    for bad in ("../training", "training\n", "tr aining"):
        run = ansible.playbook(plays=import_playbook("status"), extra_vars={"lambda_cluster_name": bad})
        assert run.rc != 0
        run.failure("Read the running instances and their launch times", "parameter name", repr(bad))
    assert account.requests() == []


def test_an_api_that_refuses_the_key_fails_the_status_and_does_not_say_nothing_runs(ansible, account):
    account.seed(instances=[{"name": "forgotten"}])
    account.fault(method="GET", path="/api/v1/instances", status=401, code="global/invalid-api-key", count=5)
    run = ansible.playbook(plays=import_playbook("status"))
    assert run.rc != 0
    result = run.failure("Read the running instances and their launch times", "global/invalid-api-key")
    assert "table" not in result and "0 running" not in run.output


def test_an_unreadable_audit_trail_leaves_only_the_untagged_launch_time_unknown(ansible, account):
    now = time.time()
    seed_account(account, now)
    account.fault(method="GET", path=AUDIT, status=500, code="global/internal-error", count=20)
    run = ansible.playbook([task("status", "lambda_cluster_info", register="status")])
    result = run.task("status")
    assert result["_status"] == "ok", run.output[-3000:]
    nodes = {node["name"]: node for entry in result["clusters"] for node in entry["nodes"]}
    assert nodes["eval-1"]["launched_at"] is None and nodes["eval-1"]["cost_cents"] is None
    assert nodes["training-1"]["launched_at_from"] == "tag"
    eval_cluster = next(entry for entry in result["clusters"] if entry["name"] == "eval")
    assert eval_cluster["cost_unknown"] == 1 and eval_cluster["cost_cents"] == 0
    eval_row = next(line for line in result["table"] if line.startswith("eval "))
    assert eval_row.split()[6:] == ["unknown", "0.75", "unknown"]
    assert "Cluster eval: 1 node(s), $0.75 per hour, $0.00 so far (not counting 1 whose launch time is unknown)" in (
        "\n".join(result["table"])
    )


def test_a_misspelt_cluster_shows_no_cluster_and_names_those_that_run(ansible, account):
    seed_account(account, time.time())
    run = ansible.playbook(plays=import_playbook("status"), extra_vars={"lambda_cluster_name": "traning"})
    assert run.rc == 0, run.output[-3000:]
    table = run.task("Show the clusters")["msg"]
    assert table == ["No cluster named traning is running. Running clusters: eval, training."]


# ------------------------------------------------------------------ the status
def test_status_shows_two_clusters_and_a_stray_with_uptime_and_cost_so_far(ansible, account):
    now = time.time()
    launched = seed_account(account, now)
    price = prices(account)
    kinds = instance_types(account)
    run = ansible.playbook(plays=import_playbook("status"))
    run.assert_ok()
    table = run.task("Show the clusters")["msg"]
    assert table[0].split() == ["CLUSTER", "NODE", "STATUS", "TYPE", "REGION", "IP", "UPTIME", "$/H", "COST"]
    rows = {line.split()[1]: line.split() for line in table[1:5]}
    assert [line.split()[1] for line in table[1:5]] == ["eval-1", "training-1", "training-2", "forgotten"]
    assert rows["training-1"][:5] == ["training", "training-1", "active", "gpu_1x_a100_sxm4", "us-east-1"]
    assert rows["training-1"][5].startswith("127.")
    assert rows["forgotten"][0] == "-"  # the stray is listed, under no cluster
    for name, row in rows.items():
        hours = (time.time() - launched[name]) / 3600
        expected = price[kinds[name]] * hours
        shown = float(row[-1]) * 100
        assert abs(shown - expected) <= price[kinds[name]] / 60 + 1, (name, row, expected)  # within a minute's cost
        assert row[-2] == f"{price[kinds[name]] / 100:.2f}"
    assert rows["training-1"][6:8] == ["2", "h"] and rows["eval-1"][6:8] == ["30", "min"]
    summary = table[5:]
    # 30 minutes at $0.75 per hour when seeded, and the seconds the run takes: $0.38, or $0.39 on a slow machine.
    assert re.match(r"Cluster eval: 1 node\(s\), \$0\.75 per hour, \$0\.3[89] so far, no expiry", summary[0]), summary[
        0
    ]
    training = price["gpu_1x_a100_sxm4"]
    shown = re.fullmatch(
        rf"Cluster training: 2 node\(s\), \${2 * training / 100:.2f} per hour, \$(\d+\.\d\d) so far, "
        rf"expires {utc(now + 7200)} \(in 1 h 5\d min\)\.",
        summary[1],
    )
    assert shown, summary[1]
    assert abs(float(shown[1]) * 100 - 3 * training) <= 2 * training / 60 + 1  # 3 node-hours, within a minute each
    assert summary[2].startswith("In no cluster: 1 instance(s)")
    assert summary[3].startswith("Account: 4 running instance(s)")
    assert len(account.requests("GET", AUDIT)) == 1  # read once, for the one instance without a launched-at tag


def test_status_as_json_holds_the_same_figures(ansible, account, tmp_path):
    now = time.time()
    launched = seed_account(account, now)
    price = prices(account)
    kinds = instance_types(account)
    _run, figures = status_json(ansible, tmp_path)
    assert [entry["name"] for entry in figures["clusters"]] == ["eval", "training"]
    nodes = {node["name"]: node for entry in figures["clusters"] for node in entry["nodes"]}
    nodes |= {node["name"]: node for node in figures["unclustered"]["nodes"]}
    assert set(nodes) == {"eval-1", "training-1", "training-2", "forgotten"}
    at = datetime.fromisoformat(figures["now"].replace("Z", "+00:00")).timestamp()
    for name, node in nodes.items():
        assert abs(node["uptime_seconds"] - (at - launched[name])) <= 60, (name, node)
        expected = price[kinds[name]] * (at - launched[name]) / 3600
        assert abs(node["cost_cents"] - expected) <= price[kinds[name]] / 60, (name, node, expected)
        assert node["price_cents_per_hour"] == price[kinds[name]]
    assert nodes["eval-1"]["launched_at_from"] == "audit" and nodes["forgotten"]["launched_at_from"] == "tag"
    training = figures["clusters"][1]
    assert training["expires_at"] == utc(now + 7200) and training["count"] == 2
    assert training["cost_cents"] == round(nodes["training-1"]["cost_cents"] + nodes["training-2"]["cost_cents"])
    total = figures["total"]
    assert total["count"] == 4 and total["cost_unknown"] == 0
    assert total["price_cents_per_hour"] == sum(price[kinds[name]] for name in nodes)
    assert "table" not in figures


def test_one_named_cluster_is_shown_without_the_others(ansible, account, tmp_path):
    seed_account(account, time.time())
    _run, figures = status_json(ansible, tmp_path, lambda_cluster_name="training")
    assert [entry["name"] for entry in figures["clusters"]] == ["training"]
    assert figures["unclustered"]["nodes"] == [] and figures["total"]["count"] == 2
    assert figures["known_clusters"] == ["eval", "training"]


def test_an_instance_launched_by_the_collection_counts_from_its_launched_at_tag(ansible, account):
    add_deploy_key(account)
    run = ansible.playbook(
        [
            task(
                "launch",
                "lambda_instance",
                name="fresh",
                instance_type="gpu_1x_a10",
                region="us-east-1",
                ssh_key_name="deploy",
                launch_interval=0,
            ),
            task("status", "lambda_cluster_info", register="status"),
        ]
    )
    run.assert_ok()
    node = run.task("status")["unclustered"]["nodes"][0]
    assert node["name"] == "fresh" and node["launched_at_from"] == "tag"
    assert 0 <= node["uptime_seconds"] < 120
    assert account.requests("GET", AUDIT) == []  # every launch time came from a tag
