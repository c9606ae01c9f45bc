# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rulesets, global rules, audit events, waiting for capacity, failover limits, removing extra nodes.

Every test runs real ansible-playbook processes against the simulator and counts the API requests they make.
"""

from __future__ import annotations

import re
import threading
import time

from tests.integration.support import PUBLIC_KEY, import_playbook, live, role_task, task

RULES = [
    {"protocol": "tcp", "port": 22, "source_network": "0.0.0.0/0", "description": "SSH"},
    {"protocol": "tcp", "port": 8888, "source_network": "203.0.113.0/24", "description": "JupyterLab"},
]


def writes(sim):
    return [(r["method"], r["path"]) for r in sim.requests() if r["method"] != "GET"]


# ------------------------------------------------------------------ rulesets
def test_a_ruleset_is_created_changed_with_one_patch_left_alone_and_deleted(ansible, account):
    ruleset = {"name": "notebooks", "region": "us-east-1", "rules": RULES}
    created = ansible.playbook([task("create", "lambda_firewall_ruleset", **ruleset)], diff=True).task("create")
    assert created["_status"] == "changed" and created["diff"]["before"] == {}
    assert created["firewall_ruleset"]["rules"][0]["port_range"] == [22, 22]
    assert writes(account) == [("POST", "/api/v1/firewall-rulesets")]

    # Same rules in another order, a port range for the port, a /32 spelled out: nothing to do.
    account.clear_requests()
    ssh = {key: value for key, value in RULES[0].items() if key != "port"} | {"port_range": [22, 22]}
    same = [RULES[1] | {"source_network": "203.0.113.0/24"}, ssh]
    again = ansible.playbook([task("again", "lambda_firewall_ruleset", **ruleset | {"rules": same})]).task("again")
    assert again["_status"] == "ok" and writes(account) == [], again.get("msg")

    wider = [*RULES, {"protocol": "tcp", "port_range": [29500, 29510], "source_network": "10.0.0.0/8"}]
    checked = ansible.playbook([task("change", "lambda_firewall_ruleset", **ruleset | {"rules": wider})], check=True)
    assert checked.task("change")["_status"] == "changed" and writes(account) == []
    changed = ansible.playbook([task("change", "lambda_firewall_ruleset", **ruleset | {"rules": wider})], diff=True)
    result = changed.task("change")
    assert result["_status"] == "changed" and "Changed the rules of firewall ruleset notebooks" in result["msg"]
    assert len(result["diff"]["after"]["rules"]) == 3 and len(result["diff"]["before"]["rules"]) == 2
    assert writes(account) == [("PATCH", f"/api/v1/firewall-rulesets/{created['firewall_ruleset']['id']}")]

    account.clear_requests()
    info = ansible.playbook([task("info", "lambda_firewall_ruleset_info", region="us-east-1")]).task("info")
    assert [r["name"] for r in info["firewall_rulesets"]] == ["notebooks"] and len(account.requests()) == 1
    run = ansible.playbook(
        [
            task("delete", "lambda_firewall_ruleset", name="notebooks", state="absent"),
            task("delete again", "lambda_firewall_ruleset", name="notebooks", state="absent"),
        ]
    )
    assert run.task("delete")["_status"] == "changed" and run.task("delete again")["_status"] == "ok"
    assert account.state()["firewall_rulesets"] == []


def test_a_ruleset_in_use_is_not_deleted_and_launches_attach_rulesets_by_name(ansible, account):
    ansible.playbook(
        [
            task("east", "lambda_firewall_ruleset", name="jupyter", region="us-east-1", rules=RULES),
            task("west", "lambda_firewall_ruleset", name="jupyter", region="us-west-1", rules=RULES),
        ]
    ).assert_ok()
    rulesets = {r["region"]["name"]: r["id"] for r in account.state()["firewall_rulesets"]}
    launched = ansible.playbook(
        [
            task(
                "launch",
                "lambda_instance",
                name="nb",
                instance_type=["gpu_1x_a10"],
                region=["us-west-1"],
                ssh_key_name="deploy",
                firewall_ruleset_names=["jupyter"],
                launch_interval=0,
            )
        ]
    ).task("launch")
    assert launched["_status"] == "changed", launched["msg"]
    # The ruleset of the region it launched in, given by name.
    assert launched["instance"]["firewall_rulesets"] == [{"id": rulesets["us-west-1"]}]

    account.clear_requests()
    checked = ansible.playbook(
        [task("delete", "lambda_firewall_ruleset", name="jupyter", region="us-west-1", state="absent")], check=True
    )
    checked.failure("delete", "firewall-rulesets/firewall-ruleset-in-use", launched["instance"]["id"])
    run = ansible.playbook(
        [task("delete", "lambda_firewall_ruleset", name="jupyter", region="us-west-1", state="absent")]
    )
    failed = run.failure("delete", "firewall-rulesets/firewall-ruleset-in-use", launched["instance"]["id"])
    assert failed["error"]["code"] == "firewall-rulesets/firewall-ruleset-in-use"
    assert len(account.state()["firewall_rulesets"]) == 2
    ambiguous = ansible.playbook([task("ambiguous", "lambda_firewall_ruleset", name="jupyter", rules=RULES)])
    ambiguous.failure("ambiguous", "2 firewall rulesets are named 'jupyter'", rulesets["us-east-1"], "give region")


def test_global_rules_are_set_once_and_a_rule_list_without_ssh_warns(ansible, account):
    first = ansible.playbook([task("set", "lambda_global_firewall_rules", rules=RULES)]).task("set")
    assert first["_status"] == "changed" and writes(account) == [("PATCH", "/api/v1/firewall-rulesets/global")]
    account.clear_requests()
    again = ansible.playbook([task("set", "lambda_global_firewall_rules", rules=list(reversed(RULES)))]).task("set")
    assert again["_status"] == "ok" and writes(account) == [] and len(account.requests()) == 1
    locked = ansible.playbook([task("set", "lambda_global_firewall_rules", rules=RULES[1:])], check=True).task("set")
    assert locked["_status"] == "changed" and "no TCP traffic in on port 22" in " ".join(locked["warnings"])
    assert writes(account) == []


# ------------------------------------------------------------------ audit events
def test_audit_events_are_read_page_by_page_with_one_request_each(ansible, account):
    for index in range(120):  # each accepted write is an event; 50 events a page
        account.api("POST", "/ssh-keys", {"name": f"k{index}", "public_key": PUBLIC_KEY.replace("deploy", str(index))})
    account.clear_requests()
    run = ansible.playbook(
        [
            task("all", "lambda_audit_event_info", register="all", resource_type="ssh_key"),
            task("some", "lambda_audit_event_info", register="some", max_events=60),
            task("none", "lambda_audit_event_info", register="nothing", start="2999-01-01T00:00:00Z"),
        ]
    )
    run.assert_ok()
    everything = run.task("all")
    assert len(everything["audit_events"]) == 120 and everything["pages"] == 3 and not everything["truncated"]
    assert {e["action"] for e in everything["audit_events"]} == {"created"}
    some = run.task("some")
    assert len(some["audit_events"]) == 60 and some["pages"] == 2 and some["truncated"]
    assert run.task("none")["audit_events"] == [] and run.task("none")["pages"] == 1
    assert len(account.requests("GET", "/audit-events")) == 3 + 2 + 1


# ------------------------------------------------------------------ capacity
LAUNCH = {"ssh_key_name": "deploy", "wait": False, "launch_interval": 0}


def test_a_launch_waits_for_capacity_that_appears(ansible, account):
    account.seed(capacity={"gpu_8x_h100_sxm5": []})

    def add_capacity():
        # Once the launch has found no capacity (however long ansible-playbook took to start), and a while after.
        deadline = time.monotonic() + 120
        while not account.requests("GET", "/instance-types") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        account.seed(capacity={"gpu_8x_h100_sxm5": ["us-east-1"]})

    helper = threading.Thread(target=add_capacity)
    helper.start()
    try:
        result = ansible.playbook(
            [
                task(
                    "launch",
                    "lambda_instance",
                    name="h100",
                    instance_type=["gpu_8x_h100_sxm5"],
                    region=["us-east-1"],
                    capacity_timeout=60,
                    **LAUNCH,
                )
            ]
        ).task("launch")
    finally:
        helper.join()
    assert result["_status"] == "changed", result["msg"]
    assert result["placement"] == {"instance_type": "gpu_8x_h100_sxm5", "region": "us-east-1"}
    assert len(account.requests("GET", "/instance-types")) >= 2  # it looked again, at a gentle pace
    assert [r["status"] for r in account.requests("POST", "/instance-operations/launch")] == [200]


def test_waiting_for_capacity_times_out_naming_every_pair_tried(ansible, account):
    account.seed(capacity={"gpu_8x_h100_sxm5": [], "gpu_8x_a100": []})
    result = ansible.playbook(
        [
            task(
                "launch",
                "lambda_instance",
                name="big",
                instance_type=["gpu_8x_h100_sxm5", "gpu_8x_a100"],
                region=["us-east-1", "us-west-2"],
                capacity_timeout=5,
                **LAUNCH,
            )
        ]
    ).failure("launch", "No capacity for big after")
    for pair in (
        "gpu_8x_h100_sxm5 in us-east-1",
        "gpu_8x_h100_sxm5 in us-west-2",
        "gpu_8x_a100 in us-east-1",
        "gpu_8x_a100 in us-west-2",
    ):
        assert f"{pair}: no-capacity" in result["msg"]
    assert len(result["attempts"]) == 4 and all(a["tries"] >= 2 for a in result["attempts"])
    assert account.requests("POST", "/instance-operations/launch") == []


def test_failover_limits_prevent_a_downgrade(ansible, account):
    # The 8x H100 has no capacity in us-east-1; the cheaper 1x types there do.
    wanted = {"instance_type": ["gpu_8x_h100_sxm5", "gpu_1x_a100_sxm4", "gpu_1x_a10"], "region": ["us-east-1"]}
    run = ansible.playbook(
        [
            task("at least 8 GPUs", "lambda_instance", name="n1", min_gpus=8, **wanted, **LAUNCH),
            task("at most 1 dollar", "lambda_instance", name="n2", max_price_cents_per_hour=100, **wanted, **LAUNCH),
        ]
    )
    refused = run.failure("at least 8 GPUs", "No capacity for n1", "gpu_8x_h100_sxm5 in us-east-1: no-capacity")
    assert "gpu_1x" not in refused["msg"].split("Capacity right now")[0]
    cheap = run.task("at most 1 dollar")
    assert cheap["_status"] == "changed" and cheap["placement"]["instance_type"] == "gpu_1x_a10"
    assert [i["name"] for i in live(account)] == ["n2"]


# ------------------------------------------------------------------ cluster: extra nodes and its own firewall
def cluster(**overrides):
    values = {
        "lambda_cluster_name": "llm-ft",
        "lambda_cluster_nodes": {"count": 3},
        "lambda_cluster_defaults": {"instance_type": ["gpu_1x_a10"], "region": ["us-east-1"], "ssh_key_name": "deploy"},
        "lambda_cluster_wait_for_ssh": False,
        "lambda_cluster_launch_interval": 0,
    }
    return values | overrides


def provision(ansible, check=False, **overrides):
    return ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars=cluster(**overrides),
        check=check,
    )


def test_remove_extra_terminates_exactly_the_extra_nodes_highest_first(ansible, account):
    provision(ansible).assert_ok()
    assert [n["name"] for n in live(account)] == ["llm-ft-1", "llm-ft-2", "llm-ft-3"]
    kept = provision(ansible, lambda_cluster_nodes={"count": 1})
    kept.assert_ok()
    assert len(live(account)) == 3
    summary = "\n".join(role_task(kept, "Show the cluster")["msg"])
    assert "Cluster llm-ft: 1 node(s), $0.75 per hour" in summary  # the extra nodes left the cluster's summary
    assert re.search(r"left running outside the cluster's group and this summary: llm-ft-3 \(\w+\), llm-ft-2", summary)
    assert (
        "inventory group lambda_cluster_llm_ft (characters other than"
        in role_task(kept, "Say which inventory group the nodes are in")["msg"]
    )

    checked = provision(ansible, check=True, lambda_cluster_nodes={"count": 1}, lambda_cluster_remove_extra=True)
    checked.assert_ok()
    assert "Would have terminated (beyond the wanted nodes): llm-ft-3, llm-ft-2" in "\n".join(
        role_task(checked, "Show the cluster")["msg"]
    )
    assert len(live(account)) == 3

    account.clear_requests()
    removed = provision(ansible, lambda_cluster_nodes={"count": 1}, lambda_cluster_remove_extra=True)
    removed.assert_ok()
    assert [n["name"] for n in live(account)] == ["llm-ft-1"]
    step = "Terminate the nodes beyond the wanted ones, the highest-numbered first"
    [removal] = [e["result"] for e in removed.results if e["task"].endswith(step)]
    terminated = [r["item"]["name"] for r in removal["results"]]
    assert terminated == ["llm-ft-3", "llm-ft-2"]
    assert len(account.requests("POST", "/instance-operations/terminate")) == 2
    assert "$1.50 per hour" in "\n".join(role_task(removed, "Show the cluster")["msg"])


def test_a_cluster_keeps_its_own_firewall_ruleset(ansible, account):
    rules = [
        {"protocol": "tcp", "port": 22, "source_network": "0.0.0.0/0"},
        {"protocol": "all", "source_network": "127.10.0.0/16", "description": "torchrun and NCCL"},
    ]
    provision(ansible, lambda_cluster_nodes={"count": 2}, lambda_cluster_firewall_rules=rules).assert_ok()
    [ruleset] = account.state()["firewall_rulesets"]
    assert ruleset["name"] == "cluster-llm-ft" and ruleset["region"]["name"] == "us-east-1"
    assert all(n["firewall_rulesets"] == [{"id": ruleset["id"]}] for n in live(account))
    down = ansible.playbook(
        plays=import_playbook("teardown"),
        extra_vars={"lambda_cluster_name": "llm-ft", "lambda_cluster_firewall_rules": rules},
    )
    down.assert_ok()
    assert live(account) == [] and account.state()["firewall_rulesets"] == []
