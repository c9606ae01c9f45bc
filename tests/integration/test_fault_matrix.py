# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every write operation against every kind of fault: no duplicate, no wrong deletion, and a re-run converges.

Each cell seeds the account (with a bystander that must stay untouched), queues one fault on the operation's
endpoint, runs the module, then runs it again once the simulator has finished whatever the fault left in flight,
and once more to show it is idempotent. The modules run as Ansible runs them (a process that reads its
arguments from a file) against the simulator over real HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from tests.integration.support import OTHER_KEY, PUBLIC_KEY, live

TIMEOUT = 1.5  # request_timeout of every module run; the slow faults answer after DELAY
DELAY = 3.0

FAULTS = {
    "429-retry-after": {"status": 429, "retry_after": 1},
    "429": {"status": 429},
    "500-before": {"status": 500},
    "500-after": {"status": 500, "after_processing": True},
    "html-502": {"status": 502, "body": "<html><body>502 Bad Gateway</body></html>", "after_processing": True},
    "503": {"status": 503},
    "dropped-before": {"drop_connection": True},
    "dropped-after": {"drop_connection": True, "after_processing": True},
    "slow-before": {"delay_seconds": DELAY},
    "slow-after": {"delay_seconds": DELAY, "after_processing": True},
    # Carried out, then answered 200 with a body that is not the answer: as unclear as a lost answer.
    "garbled-200": {"status": 200, "body": '{"data": {"id": "', "after_processing": True},
    "html-200": {"status": 200, "body": "<html><body>OK</body></html>", "after_processing": True},
}


@dataclass
class Operation:
    module: str
    method: str
    path: str
    setup: Callable[[Any], dict[str, Any]]  # seeds the account, returns what the args and the check need
    args: Callable[[dict[str, Any], Any], dict[str, Any]]
    check: Callable[[Any, dict[str, Any], Any], None]
    idempotent: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def seed_instances(sim, *names):
    answer = sim.seed(
        ssh_keys=[{"name": "deploy", "public_key": PUBLIC_KEY}],
        instances=[
            {"name": name, "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"} for name in names
        ],
    )
    return dict(zip(names, answer["instance_ids"]))


def check_launch(sim, seeded, tmp_path):
    assert len(live(sim, "cell")) == 1, live(sim, "cell")
    assert [i["id"] for i in live(sim, "bystander")] == [seeded["bystander"]]


def check_terminate(sim, seeded, tmp_path):
    assert live(sim, "victim") == []
    assert [i["id"] for i in live(sim, "bystander")] == [seeded["bystander"]]


def check_restart(sim, seeded, tmp_path):
    [node] = live(sim, "victim")
    assert node["id"] == seeded["victim"]
    assert [i["id"] for i in live(sim, "bystander")] == [seeded["bystander"]]


def check_rename(sim, seeded, tmp_path):
    names = {i["id"]: i["name"] for i in live(sim)}
    assert names == {seeded["victim"]: "renamed", seeded["bystander"]: "bystander"}


def keys(sim, name):
    return [k for k in sim.state()["ssh_keys"] if k["name"] == name]


def check_add_key(sim, seeded, tmp_path):
    [key] = keys(sim, "cell")
    assert key["public_key"].split()[:2] == PUBLIC_KEY.split()[:2]
    assert len(keys(sim, "bystander")) == 1


def check_generate_key(sim, seeded, tmp_path):
    [key] = keys(sim, "cell")
    path = tmp_path / "cell-key"
    assert path.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in path.read_text()
    assert not (tmp_path / "cell-key.pending").exists()
    assert len(keys(sim, "bystander")) == 1 and key["id"] != seeded.get("lost")


def check_delete_key(sim, seeded, tmp_path):
    assert keys(sim, "cell") == [] and len(keys(sim, "bystander")) == 1


def systems(sim, name):
    return [f for f in sim.state()["file_systems"] if f["name"] == name]


def check_create_fs(sim, seeded, tmp_path):
    assert len(systems(sim, "cell")) == 1 and len(systems(sim, "bystander")) == 1


def check_delete_fs(sim, seeded, tmp_path):
    assert systems(sim, "cell") == [] and len(systems(sim, "bystander")) == 1


# The rules every firewall cell asks for: SSH from anywhere, and torchrun's ports from the private network.
RULES = [
    {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"},
    {"protocol": "tcp", "port_range": [29500, 29510], "source_network": "10.0.0.0/8", "description": "torchrun"},
]
OLD_RULES = [RULES[0]]


def rulesets(sim, name):
    return [r for r in sim.state()["firewall_rulesets"] if r["name"] == name]


def seed_rulesets(sim, *names):
    sim.seed(firewall_rulesets=[{"name": name, "region": "us-east-1", "rules": OLD_RULES} for name in names])
    return {}


def rule_key(rule):
    return rule["protocol"], tuple(rule.get("port_range") or ()), rule["source_network"]


def same_rules(got, wanted):
    return sorted(map(rule_key, got)) == sorted(map(rule_key, wanted))


def check_create_ruleset(sim, seeded, tmp_path):
    [ruleset] = rulesets(sim, "cell")
    assert same_rules(ruleset["rules"], RULES), ruleset
    assert len(rulesets(sim, "bystander")) == 1


def check_delete_ruleset(sim, seeded, tmp_path):
    assert rulesets(sim, "cell") == [] and len(rulesets(sim, "bystander")) == 1


def check_global_rules(sim, seeded, tmp_path):
    assert same_rules(sim.state()["firewall_rules"], RULES), sim.state()["firewall_rules"]
    assert len(rulesets(sim, "bystander")) == 1


def seed_keys(sim, *names):
    sim.seed(ssh_keys=[{"name": name, "public_key": OTHER_KEY} for name in names])
    return {}


def seed_systems(sim, *names):
    sim.seed(file_systems=[{"name": name, "region": "us-west-1"} for name in names])
    return {}


LAUNCH = {
    "name": "cell",
    "instance_type": ["gpu_1x_a10"],
    "region": ["us-east-1"],
    "ssh_key_name": ["deploy"],
    "wait": False,
    "launch_interval": 0,
    "launch_confirm_timeout": 10,
}

OPERATIONS = {
    "launch": Operation(
        "lambda_instance",
        "POST",
        "/api/v1/instance-operations/launch",
        lambda sim: seed_instances(sim, "bystander"),
        lambda seeded, tmp: LAUNCH,
        check_launch,
    ),
    "terminate": Operation(
        "lambda_instance",
        "POST",
        "/api/v1/instance-operations/terminate",
        lambda sim: seed_instances(sim, "victim", "bystander"),
        lambda seeded, tmp: {"name": "victim", "state": "absent", "wait": False},
        check_terminate,
    ),
    "restart": Operation(
        "lambda_instance",
        "POST",
        "/api/v1/instance-operations/restart",
        lambda sim: seed_instances(sim, "victim", "bystander"),
        lambda seeded, tmp: {"name": "victim", "state": "restarted", "wait": False},
        check_restart,
        idempotent=False,
    ),
    "rename": Operation(
        "lambda_instance",
        "POST",
        "/api/v1/instances/*",
        lambda sim: seed_instances(sim, "victim", "bystander"),
        lambda seeded, tmp: {"id": seeded["victim"], "name": "renamed", "wait": False},
        check_rename,
    ),
    "add-key": Operation(
        "lambda_ssh_key",
        "POST",
        "/api/v1/ssh-keys",
        lambda sim: seed_keys(sim, "bystander"),
        lambda seeded, tmp: {"name": "cell", "public_key": PUBLIC_KEY},
        check_add_key,
    ),
    "generate-key": Operation(
        "lambda_ssh_key",
        "POST",
        "/api/v1/ssh-keys",
        lambda sim: seed_keys(sim, "bystander"),
        lambda seeded, tmp: {"name": "cell", "private_key_path": str(tmp / "cell-key")},
        check_generate_key,
    ),
    "delete-key": Operation(
        "lambda_ssh_key",
        "DELETE",
        "/api/v1/ssh-keys/*",
        lambda sim: seed_keys(sim, "cell", "bystander"),
        lambda seeded, tmp: {"name": "cell", "state": "absent"},
        check_delete_key,
    ),
    "create-fs": Operation(
        "lambda_file_system",
        "POST",
        "/api/v1/filesystems",
        lambda sim: seed_systems(sim, "bystander"),
        lambda seeded, tmp: {"name": "cell", "region": "us-west-1"},
        check_create_fs,
    ),
    "delete-fs": Operation(
        "lambda_file_system",
        "DELETE",
        "/api/v1/filesystems/*",
        lambda sim: seed_systems(sim, "cell", "bystander"),
        lambda seeded, tmp: {"name": "cell", "state": "absent"},
        check_delete_fs,
    ),
    "create-ruleset": Operation(
        "lambda_firewall_ruleset",
        "POST",
        "/api/v1/firewall-rulesets",
        lambda sim: seed_rulesets(sim, "bystander"),
        lambda seeded, tmp: {"name": "cell", "region": "us-east-1", "rules": RULES},
        check_create_ruleset,
    ),
    "update-ruleset": Operation(
        "lambda_firewall_ruleset",
        "PATCH",
        "/api/v1/firewall-rulesets/*",
        lambda sim: seed_rulesets(sim, "cell", "bystander"),
        lambda seeded, tmp: {"name": "cell", "region": "us-east-1", "rules": RULES},
        check_create_ruleset,
    ),
    "delete-ruleset": Operation(
        "lambda_firewall_ruleset",
        "DELETE",
        "/api/v1/firewall-rulesets/*",
        lambda sim: seed_rulesets(sim, "cell", "bystander"),
        lambda seeded, tmp: {"name": "cell", "state": "absent"},
        check_delete_ruleset,
    ),
    "global-rules": Operation(
        "lambda_global_firewall_rules",
        "PATCH",
        "/api/v1/firewall-rulesets/global",
        lambda sim: seed_rulesets(sim, "bystander"),
        lambda seeded, tmp: {"rules": RULES},
        check_global_rules,
    ),
}


def settle(sim, timeout=DELAY + 5):
    """Wait until no request is in flight in the simulator (a delayed one is processed by then)."""
    deadline = time.monotonic() + timeout
    while any(entry["status"] is None for entry in sim.requests()):
        assert time.monotonic() < deadline, "a request stayed in flight"
        time.sleep(0.1)


def assert_clean(result):
    """A result without a crash: a failure is one line of the module's own."""
    assert "module_stderr" not in result and "exception" not in result, result
    if result.get("failed"):
        assert result["msg"] and "\n" not in result["msg"] and "Traceback" not in result["msg"], result


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_fault_cell(ansible, simulator, tmp_path, operation, fault):
    op = OPERATIONS[operation]
    seeded = op.setup(simulator)
    args = op.args(seeded, tmp_path) | {"request_timeout": TIMEOUT}
    simulator.configure(idempotency=False)  # the real API does not document Idempotency-Key: nothing may rely on it
    simulator.fault(method=op.method, path=op.path, count=1, **FAULTS[fault])

    first = ansible.module(op.module, args)
    assert_clean(first)
    settle(simulator)
    simulator.clear_faults()
    # Nothing duplicated and nothing wrong removed, whatever the first run made of the fault.
    state = simulator.state()
    for names in (
        [i["name"] for i in live(simulator)],
        *([item["name"] for item in state[part]] for part in ("ssh_keys", "file_systems", "firewall_rulesets")),
    ):
        assert len(names) == len(set(names)), names
    assert [i["id"] for i in live(simulator, "bystander")] in ([seeded.get("bystander")], [])

    second = ansible.module(op.module, args)
    assert_clean(second)
    assert not second.get("failed"), (first.get("msg"), second.get("msg"))
    if op.idempotent:
        third = ansible.module(op.module, args)
        assert not third.get("failed") and third["changed"] is False, third.get("msg")
    op.check(simulator, seeded, tmp_path)
