# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The offline Lambda Cloud API simulator, exercised over real HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import PUBLIC_KEY

KEY_NAME = "key"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
INSTANCE_REQUIRED = {"id", "status", "ssh_key_names", "file_system_names", "region", "instance_type", "actions"}


def launch_body(**overrides: Any) -> dict[str, Any]:
    body = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": [KEY_NAME]}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def error_of(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    return payload["error"]


def launch(sim, **overrides: Any) -> str:
    status, payload = sim.api("POST", "/instance-operations/launch", launch_body(**overrides))
    assert status == 200, payload
    (instance_id,) = payload["data"]["instance_ids"]
    return instance_id


@pytest.fixture
def sim(simulator):
    """A reset simulator whose account has the SSH key ``key`` and file systems in two regions."""
    simulator.seed(
        ssh_keys=[{"name": KEY_NAME, "public_key": PUBLIC_KEY}],
        file_systems=[{"name": "fs-east", "region": "us-east-1"}, {"name": "fs-west", "region": "us-west-1"}],
    )
    return simulator


def fs_id(sim, name: str) -> str:
    return next(fs["id"] for fs in sim.state()["file_systems"] if fs["name"] == name)


# ---------------------------------------------------------------------- startup, auth, routing


def test_startup_line_and_quiet(simulator):
    assert re.fullmatch(r"Lambda Cloud simulator listening on http://127\.0\.0\.1:\d+/api/v1", simulator.startup_line)
    port = int(simulator.url.rsplit(":", 1)[1].split("/")[0])
    assert port > 0
    assert simulator.api("GET", "/instances") == (200, {"data": []})
    assert simulator.stderr == ""


def test_auth_schemes(simulator):
    assert simulator.api("GET", "/ssh-keys", auth="bearer")[0] == 200
    assert simulator.api("GET", "/ssh-keys", auth="basic")[0] == 200
    assert simulator.api("GET", "/ssh-keys", auth="basic-raw")[0] == 200
    unauthorized = {
        "error": {
            "code": "global/invalid-api-key",
            "message": "API key was invalid, expired, or deleted.",
            "suggestion": "Check your API key or create a new one, then try again.",
        }
    }
    for auth in ("bearer", "basic", "basic-raw"):
        assert simulator.api("GET", "/ssh-keys", api_key="wrong", auth=auth) == (401, unauthorized)
    assert simulator.api("GET", "/instances", auth=None) == (401, unauthorized)
    assert simulator.api("GET", "/instances", auth=None, headers={"Authorization": "Token sim-api-key"})[0] == 401


def test_custom_api_key(simulator_factory):
    sim = simulator_factory(api_key="other-key")
    assert sim.api("GET", "/instances")[0] == 200
    assert sim.api("GET", "/instances", api_key="sim-api-key")[0] == 401


def test_unknown_endpoint_and_method(simulator):
    status, payload = simulator.api("GET", "/nothing-here")
    assert status == 404 and error_of(payload)["code"] == "global/not-found"
    status, payload = simulator.api("DELETE", "/instances")
    assert status == 405 and error_of(payload)["code"] == "global/method-not-allowed"


# ---------------------------------------------------------------------- catalogue


def test_instance_types(simulator):
    status, payload = simulator.api("GET", "/instance-types")
    assert status == 200
    types = payload["data"]
    for name in (
        "gpu_1x_a10",
        "gpu_1x_a6000",
        "gpu_1x_a100",
        "gpu_1x_a100_sxm4",
        "gpu_2x_a100",
        "gpu_4x_a100",
        "gpu_8x_a100",
        "gpu_8x_a100_80gb_sxm4",
        "gpu_8x_v100",
        "gpu_1x_h100_pcie",
        "gpu_1x_h100_sxm5",
        "gpu_2x_h100_sxm5",
        "gpu_4x_h100_sxm5",
        "gpu_8x_h100_sxm5",
        "gpu_1x_gh200",
        "gpu_8x_b200_sxm6",
    ):
        item = types[name]
        assert set(item) == {"instance_type", "regions_with_capacity_available"}
        instance_type = item["instance_type"]
        assert instance_type["name"] == name
        assert set(instance_type) == {"name", "description", "gpu_description", "price_cents_per_hour", "specs"}
        assert set(instance_type["specs"]) == {"vcpus", "memory_gib", "storage_gib", "gpus"}
        for region in item["regions_with_capacity_available"]:
            assert set(region) == {"name", "description"}

    def regions(name: str) -> set[str]:
        return {region["name"] for region in types[name]["regions_with_capacity_available"]}

    assert {"us-east-1", "us-west-1"} <= regions("gpu_1x_a10")
    assert {"us-west-2", "us-east-1"} <= regions("gpu_1x_a100_sxm4")
    assert "us-south-1" in regions("gpu_8x_h100_sxm5")
    assert "us-east-3" in regions("gpu_1x_gh200")
    assert regions("gpu_8x_a100_80gb_sxm4") == set()
    assert regions("gpu_1x_h100_pcie") == set()
    west = next(r for r in types["gpu_1x_a10"]["regions_with_capacity_available"] if r["name"] == "us-west-1")
    assert west["description"] == "California, USA"


def test_images(simulator):
    status, payload = simulator.api("GET", "/images")
    assert status == 200
    images = payload["data"]
    families = {image["family"] for image in images}
    assert {"lambda-stack-22-04", "lambda-stack-24-04", "ubuntu-22-04", "ubuntu-24-04"} <= families
    assert {image["architecture"] for image in images} == {"x86_64", "arm64"}
    required = {"id", "created_time", "updated_time", "name", "description", "family", "version", "architecture"}
    for image in images:
        assert required | {"region"} == set(image)
        assert set(image["region"]) == {"name", "description"}
    assert len({image["id"] for image in images}) == len(images)


# ---------------------------------------------------------------------- instances and lifecycle


def test_lifecycle(sim):
    sim.configure(boot_seconds=0.3, terminate_seconds=0.3)
    instance_id = launch(sim, name="worker", hostname="node-1", tags=[{"key": "env", "value": "test"}])
    assert HEX32.match(instance_id)

    status, payload = sim.api("GET", f"/instances/{instance_id}")
    booting = payload["data"]
    assert status == 200 and booting["status"] == "booting"
    assert INSTANCE_REQUIRED <= set(booting)
    assert "ip" not in booting and "hostname" not in booting
    assert booting["actions"]["terminate"] == {"available": True}
    assert booting["actions"]["restart"]["reason_code"] == "vm-has-not-launched"
    assert booting["region"] == {"name": "us-east-1", "description": "Virginia, USA"}
    assert booting["instance_type"]["name"] == "gpu_1x_a10"
    assert booting["instance_type"]["specs"]["gpus"] == 1
    assert booting["tags"] == [{"key": "env", "value": "test"}]
    assert booting["ssh_key_names"] == [KEY_NAME] and booting["file_system_names"] == []
    assert booting["firewall_rulesets"] == []

    active = sim.wait_for_status(instance_id, "active", timeout=5)
    assert active["hostname"] == "node-1"
    assert re.fullmatch(r"127\.18\.\d+\.\d+", active["ip"])
    assert active["private_ip"] == "127.10." + active["ip"].split(".", 2)[2]
    assert active["jupyter_token"] in active["jupyter_url"]
    assert all(action == {"available": True} for action in active["actions"].values())

    status, payload = sim.api("POST", f"/instances/{instance_id}", {"name": "renamed"})
    assert status == 200 and payload["data"]["name"] == "renamed"

    status, payload = sim.api("POST", "/instance-operations/restart", {"instance_ids": [instance_id]})
    assert status == 200
    assert [item["status"] for item in payload["data"]["restarted_instances"]] == ["booting"]
    sim.wait_for_status(instance_id, "active", timeout=5)

    status, payload = sim.api("POST", "/instance-operations/terminate", {"instance_ids": [instance_id]})
    assert status == 200
    (terminating,) = payload["data"]["terminated_instances"]
    assert terminating["status"] == "terminating"
    assert terminating["actions"]["terminate"]["reason_code"] == "vm-is-terminating"
    sim.wait_for_status(instance_id, "terminated", timeout=5)
    assert sim.api("GET", f"/instances/{instance_id}")[0] == 200
    deadline = time.monotonic() + 6
    while sim.api("GET", f"/instances/{instance_id}")[0] == 200:
        assert time.monotonic() < deadline, "terminated instance never disappeared"
        time.sleep(0.1)
    status, payload = sim.api("GET", f"/instances/{instance_id}")
    assert status == 404 and error_of(payload)["code"] == "global/object-does-not-exist"
    assert sim.api("GET", "/instances") == (200, {"data": []})


def test_default_hostname_and_duplicate_names(sim):
    sim.configure(boot_seconds=0)
    first = launch(sim, name="same")
    second = launch(sim, name="same")
    assert first != second
    status, payload = sim.api("GET", "/instances")
    assert status == 200 and [item["name"] for item in payload["data"]] == ["same", "same"]
    instance = sim.api("GET", f"/instances/{first}")[1]["data"]
    assert instance["status"] == "active"
    assert instance["hostname"] == instance["ip"].replace(".", "-")
    other = sim.api("GET", f"/instances/{second}")[1]["data"]
    assert instance["ip"].startswith("127.18.") and other["ip"].startswith("127.18.")
    assert len({instance["ip"], other["ip"], instance["private_ip"], other["private_ip"]}) == 4


def test_launch_with_file_systems_rulesets_and_image(sim):
    east = fs_id(sim, "fs-east")
    status, payload = sim.api(
        "POST",
        "/firewall-rulesets",
        {
            "name": "web",
            "region": "us-east-1",
            "rules": [
                {"protocol": "tcp", "port_range": [443, 443], "source_network": "0.0.0.0/0", "description": "https"}
            ],
        },
    )
    assert status == 200
    ruleset_id = payload["data"]["id"]
    image = next(
        image["id"]
        for image in sim.api("GET", "/images")[1]["data"]
        if image["region"]["name"] == "us-east-1"
        and image["architecture"] == "x86_64"
        and image["family"] == "ubuntu-22-04"
    )
    instance_id = launch(
        sim,
        file_system_names=["fs-east"],
        file_system_mounts=[{"mount_point": "/data/shared", "file_system_id": east}],
        firewall_rulesets=[{"id": ruleset_id}],
        image={"id": image},
        user_data="#cloud-config\n",
    )
    instance = sim.api("GET", f"/instances/{instance_id}")[1]["data"]
    assert instance["file_system_names"] == ["fs-east"]
    assert instance["file_system_mounts"] == [{"mount_point": "/data/shared", "file_system_id": east}]
    assert instance["firewall_rulesets"] == [{"id": ruleset_id}]
    assert launch(sim, image={"family": "lambda-stack-22-04"})
    gh200 = launch(sim, region_name="us-east-3", instance_type_name="gpu_1x_gh200", image={"family": "ubuntu-24-04"})
    assert sim.api("GET", f"/instances/{gh200}")[0] == 200
    ruleset = sim.api("GET", f"/firewall-rulesets/{ruleset_id}")[1]["data"]
    assert ruleset["instance_ids"] == [instance_id]
    status, payload = sim.api("DELETE", f"/firewall-rulesets/{ruleset_id}")
    assert status == 400 and error_of(payload)["code"] == "firewall-rulesets/firewall-ruleset-in-use"


LAUNCH_ERRORS = [
    ("unknown region", {"region_name": "mars-1"}, 400, "global/invalid-parameters", "region_name"),
    ("unknown type", {"instance_type_name": "gpu_9x_nothing"}, 404, "global/object-does-not-exist", "gpu_9x_nothing"),
    (
        "no capacity",
        {"instance_type_name": "gpu_8x_a100_80gb_sxm4"},
        400,
        "instance-operations/launch/insufficient-capacity",
        "capacity",
    ),
    (
        "no capacity pcie",
        {"instance_type_name": "gpu_1x_h100_pcie"},
        400,
        "instance-operations/launch/insufficient-capacity",
        "gpu_1x_h100_pcie",
    ),
    ("no ssh key", {"ssh_key_names": []}, 400, "global/invalid-parameters", "ssh_key_names"),
    ("two ssh keys", {"ssh_key_names": [KEY_NAME, KEY_NAME]}, 400, "global/invalid-parameters", "exactly one"),
    ("unknown ssh key", {"ssh_key_names": ["nope"]}, 404, "global/object-does-not-exist", "nope"),
    ("unknown file system", {"file_system_names": ["nope"]}, 404, "global/object-does-not-exist", "nope"),
    ("unknown image id", {"image": {"id": "nope"}}, 404, "global/object-does-not-exist", "nope"),
    ("unknown image family", {"image": {"family": "nope"}}, 404, "global/object-does-not-exist", "nope"),
    ("image id and family", {"image": {"id": "x", "family": "y"}}, 400, "global/invalid-parameters", "image"),
    ("unknown ruleset", {"firewall_rulesets": [{"id": "nope"}]}, 404, "global/object-does-not-exist", "nope"),
    ("long name", {"name": "n" * 65}, 400, "global/invalid-parameters", "name"),
    ("bad hostname", {"hostname": "Bad_Host"}, 400, "global/invalid-parameters", "hostname"),
    ("long hostname", {"hostname": "h" * 64}, 400, "global/invalid-parameters", "hostname"),
    ("bad tag key", {"tags": [{"key": "Env", "value": "x"}]}, 400, "global/invalid-parameters", "tags[0].key"),
    ("long tag key", {"tags": [{"key": "k" * 56, "value": "x"}]}, 400, "global/invalid-parameters", "tags[0].key"),
    (
        "long tag value",
        {"tags": [{"key": "k1", "value": "v" * 129}]},
        400,
        "global/invalid-parameters",
        "tags[0].value",
    ),
    ("big user data", {"user_data": "x" * (1024 * 1024 + 1)}, 400, "global/invalid-parameters", "user_data"),
    (
        "file system in other region",
        {"file_system_names": ["fs-west"]},
        400,
        "instance-operations/launch/file-system-in-wrong-region",
        "fs-west",
    ),
    ("unknown field", {"colour": "red"}, 400, "global/invalid-parameters", "colour"),
    ("wrong type", {"ssh_key_names": KEY_NAME}, 400, "global/invalid-parameters", "ssh_key_names"),
    ("wrong item type", {"file_system_names": [1]}, 400, "global/invalid-parameters", "file_system_names[0]"),
    ("missing field", {"region_name": None}, 400, "global/invalid-parameters", "region_name"),
    (
        "bad mount point",
        {"file_system_mounts": [{"mount_point": "/etc", "file_system_id": "x"}]},
        400,
        "global/invalid-parameters",
        "file_system_mounts[0].mount_point",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "status", "code", "mention"),
    [case[1:] for case in LAUNCH_ERRORS],
    ids=[case[0] for case in LAUNCH_ERRORS],
)
def test_launch_validation(sim, overrides, status, code, mention):
    body = launch_body()
    body.update(overrides)
    body = {key: value for key, value in body.items() if value is not None}
    got_status, payload = sim.api("POST", "/instance-operations/launch", body)
    error = error_of(payload)
    assert (got_status, error["code"]) == (status, code), payload
    assert mention in error["message"]
    assert sim.api("GET", "/instances") == (200, {"data": []})


def test_launch_size_limits_accepted(sim):
    launch(sim, name="n" * 64, hostname="h" * 63, user_data="x" * (1024 * 1024), tags=[{"key": "k" * 55, "value": ""}])


def test_malformed_requests(sim):
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        status, payload = sim.api("POST", "/instance-operations/launch", raw)
        assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters"
    status, payload = sim.api("POST", "/instance-operations/launch")
    assert status == 400 and "missing" in error_of(payload)["message"]
    status, payload = sim.api("POST", "/ssh-keys", {"name": 5})
    assert status == 400 and "'name'" in error_of(payload)["message"]


def test_unknown_instance_ids(sim):
    missing = "0" * 32
    for method, path, body in (
        ("GET", f"/instances/{missing}", None),
        ("POST", f"/instances/{missing}", {"name": "x"}),
        ("POST", "/instance-operations/restart", {"instance_ids": [missing]}),
        ("POST", "/instance-operations/terminate", {"instance_ids": [missing]}),
    ):
        status, payload = sim.api(method, path, body)
        assert status == 404, (method, path, payload)
        assert error_of(payload)["code"] == "global/object-does-not-exist"


def test_rename_validation(sim):
    instance_id = launch(sim)
    for body, mention in (({"name": "n" * 65}, "name"), ({"label": "x"}, "label"), ({"name": 3}, "name")):
        status, payload = sim.api("POST", f"/instances/{instance_id}", body)
        assert status == 400 and mention in error_of(payload)["message"]


# ---------------------------------------------------------------------- SSH keys


def test_ssh_keys(simulator):
    status, payload = simulator.api("POST", "/ssh-keys", {"name": "mine", "public_key": PUBLIC_KEY})
    assert status == 200
    key = payload["data"]
    assert set(key) == {"id", "name", "public_key"} and HEX32.match(key["id"])
    assert simulator.api("GET", "/ssh-keys") == (200, {"data": [key]})

    status, payload = simulator.api("POST", "/ssh-keys", {"name": "mine", "public_key": PUBLIC_KEY})
    assert status == 400 and error_of(payload)["code"] == "global/duplicate"
    status, payload = simulator.api("POST", "/ssh-keys", {"name": "bad", "public_key": "not a key"})
    assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters"
    status, payload = simulator.api("POST", "/ssh-keys", {"name": "k" * 65})
    assert status == 400 and "name" in error_of(payload)["message"]
    status, payload = simulator.api("POST", "/ssh-keys", {"public_key": PUBLIC_KEY})
    assert status == 400 and "name" in error_of(payload)["message"]

    assert simulator.api("DELETE", f"/ssh-keys/{key['id']}") == (200, {"data": {}})
    assert simulator.api("GET", "/ssh-keys") == (200, {"data": []})
    status, payload = simulator.api("DELETE", f"/ssh-keys/{key['id']}")
    assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
def test_generated_key_pair_works(simulator, tmp_path: Path):
    status, payload = simulator.api("POST", "/ssh-keys", {"name": "generated"})
    assert status == 200
    key = payload["data"]
    assert set(key) == {"id", "name", "public_key", "private_key"}
    private = tmp_path / "id_test"
    private.write_text(key["private_key"])
    private.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == key["public_key"].split()[:2]
    # The pair really matches: sign with the private key, verify with the public key from the API.
    message = tmp_path / "message"
    message.write_text("hello")
    signed = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(private), "-n", "file", str(message)], capture_output=True, check=False
    )
    if signed.returncode == 0:
        public = tmp_path / "id_test.pub"
        public.write_text(key["public_key"] + "\n")
        with message.open("rb") as stdin:
            checked = subprocess.run(
                ["ssh-keygen", "-Y", "check-novalidate", "-n", "file", "-f", str(public), "-s", f"{message}.sig"],
                stdin=stdin,
                capture_output=True,
                check=False,
            )
        assert checked.returncode == 0, checked.stderr
    listed = simulator.api("GET", "/ssh-keys")[1]["data"]
    assert listed == [{"id": key["id"], "name": "generated", "public_key": key["public_key"]}]


# ---------------------------------------------------------------------- file systems


def test_file_systems(sim):
    sim.configure(terminate_seconds=0.2)
    status, payload = sim.api("POST", "/filesystems", {"name": "data-1", "region": "us-east-1"})
    assert status == 200
    fs = payload["data"]
    assert {"id", "name", "mount_point", "created", "created_by", "is_in_use", "region"} <= set(fs)
    assert fs["mount_point"] == "/lambda/nfs/data-1" and fs["is_in_use"] is False
    assert fs["region"] == {"name": "us-east-1", "description": "Virginia, USA"}

    for body, code in (
        ({"name": "data-1", "region": "us-east-1"}, "global/duplicate"),
        ({"name": "1bad", "region": "us-east-1"}, "global/invalid-parameters"),
        ({"name": "a" * 61, "region": "us-east-1"}, "global/invalid-parameters"),
        ({"name": "ok", "region": "mars-1"}, "global/invalid-parameters"),
        ({"name": "ok"}, "global/invalid-parameters"),
    ):
        status, payload = sim.api("POST", "/filesystems", body)
        assert status == 400 and error_of(payload)["code"] == code, body

    instance_id = launch(sim, file_system_names=["data-1"])
    listed = {item["name"]: item for item in sim.api("GET", "/file-systems")[1]["data"]}
    assert listed["data-1"]["is_in_use"] is True and listed["fs-east"]["is_in_use"] is False
    status, payload = sim.api("DELETE", f"/filesystems/{fs['id']}")
    assert status == 400 and error_of(payload)["code"] == "filesystems/filesystem-in-use"

    sim.api("POST", "/instance-operations/terminate", {"instance_ids": [instance_id]})
    status, payload = sim.api("DELETE", f"/filesystems/{fs['id']}")
    assert status == 400, "a terminating instance still uses the file system"
    sim.wait_for_status(instance_id, "terminated", timeout=5)
    assert sim.api("DELETE", f"/filesystems/{fs['id']}") == (200, {"data": {"deleted_ids": [fs["id"]]}})
    status, payload = sim.api("DELETE", f"/filesystems/{fs['id']}")
    assert status == 404 and error_of(payload)["code"] == "global/object-does-not-exist"


# ---------------------------------------------------------------------- firewalls


def test_firewall_rules_and_global_ruleset(simulator):
    status, payload = simulator.api("GET", "/firewall-rules")
    assert status == 200 and any(rule.get("port_range") == [22, 22] for rule in payload["data"])
    rules = [
        {"protocol": "tcp", "port_range": [22, 22], "source_network": "203.0.113.4", "description": "ssh"},
        {"protocol": "icmp", "source_network": "0.0.0.0/0", "description": "ping"},
    ]
    status, payload = simulator.api("PUT", "/firewall-rules", {"data": rules})
    assert status == 200 and payload["data"][0]["source_network"] == "203.0.113.4/32"
    assert simulator.api("GET", "/firewall-rules")[1]["data"] == payload["data"]
    status, payload = simulator.api("GET", "/firewall-rulesets/global")
    assert payload["data"]["id"] == "global" and payload["data"]["name"] == "Global Firewall Rules"
    assert len(payload["data"]["rules"]) == 2
    status, payload = simulator.api("PATCH", "/firewall-rulesets/global", {"rules": rules[1:]})
    assert status == 200 and len(payload["data"]["rules"]) == 1
    assert len(simulator.api("GET", "/firewall-rules")[1]["data"]) == 1

    for bad in (
        {"protocol": "icmp", "port_range": [1, 1], "source_network": "0.0.0.0/0", "description": "x"},
        {"protocol": "tcp", "source_network": "0.0.0.0/0", "description": "x"},
        {"protocol": "tcp", "port_range": [0, 70000], "source_network": "0.0.0.0/0", "description": "x"},
        {"protocol": "sctp", "port_range": [1, 2], "source_network": "0.0.0.0/0", "description": "x"},
        {"protocol": "tcp", "port_range": [1, 2], "source_network": "not-an-ip", "description": "x"},
        {"protocol": "tcp", "port_range": [1, 2], "source_network": "0.0.0.0/0", "description": "d" * 129},
        {"protocol": "tcp", "port_range": [1, 2], "source_network": "0.0.0.0/0"},
    ):
        status, payload = simulator.api("PUT", "/firewall-rules", {"data": [bad]})
        assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters", bad


def test_firewall_rulesets_crud(simulator):
    rule = {"protocol": "udp", "port_range": [5000, 5010], "source_network": "10.0.0.0/8", "description": "app"}
    status, payload = simulator.api(
        "POST", "/firewall-rulesets", {"name": "app", "region": "us-west-1", "rules": [rule]}
    )
    assert status == 200
    ruleset = payload["data"]
    assert set(ruleset) == {"id", "name", "region", "rules", "created", "instance_ids"}
    assert ruleset["region"]["name"] == "us-west-1" and ruleset["instance_ids"] == []
    assert simulator.api("GET", "/firewall-rulesets")[1]["data"] == [ruleset]
    assert simulator.api("GET", f"/firewall-rulesets/{ruleset['id']}")[1]["data"] == ruleset

    status, payload = simulator.api("PATCH", f"/firewall-rulesets/{ruleset['id']}", {"name": "renamed"})
    assert status == 200 and payload["data"]["name"] == "renamed" and payload["data"]["rules"] == [rule]
    status, payload = simulator.api("PATCH", f"/firewall-rulesets/{ruleset['id']}", {"rules": []})
    assert status == 200 and payload["data"]["rules"] == []
    status, payload = simulator.api("PATCH", f"/firewall-rulesets/{ruleset['id']}", {"region": "us-east-1"})
    assert status == 400 and "region" in error_of(payload)["message"]
    status, payload = simulator.api("POST", "/firewall-rulesets", {"name": "x", "region": "us-west-1"})
    assert status == 400 and "rules" in error_of(payload)["message"]

    assert simulator.api("DELETE", f"/firewall-rulesets/{ruleset['id']}") == (200, {"data": {}})
    for method in ("GET", "PATCH", "DELETE"):
        status, payload = simulator.api(
            method, f"/firewall-rulesets/{ruleset['id']}", {} if method == "PATCH" else None
        )
        assert status == 404 and error_of(payload)["code"] == "global/object-does-not-exist"


# ---------------------------------------------------------------------- audit events


def test_audit_events_pagination(simulator):
    for index in range(60):
        assert simulator.api("POST", "/ssh-keys", {"name": f"k{index}", "public_key": PUBLIC_KEY})[0] == 200
    key_id = simulator.api("GET", "/ssh-keys")[1]["data"][0]["id"]
    simulator.api("DELETE", f"/ssh-keys/{key_id}")
    events: list[dict[str, Any]] = []
    token = None
    pages = 0
    while True:
        path = "/audit-events" + (f"?page_token={urllib.request.quote(token)}" if token else "")
        status, payload = simulator.api("GET", path)
        assert status == 200 and set(payload["data"]) == {"events", "page_token"}
        events.extend(payload["data"]["events"])
        pages += 1
        token = payload["data"]["page_token"]
        if token is None:
            break
    assert pages == 2 and len(events) == 61
    assert len({event["event_id"] for event in events}) == 61
    assert events[-1]["action"] == "deleted" and events[0]["resource_name"] == "ssh_key"
    assert {
        "service_name",
        "resource_name",
        "action",
        "catalog_version",
        "event_id",
        "event_time",
        "actor_lrn",
        "resource_lrns",
        "resource_owner_lrn",
        "request_api_key_lrn",
        "additional_details",
    } == set(events[0])
    status, payload = simulator.api("GET", "/audit-events?resource_type=cloud.instance")
    assert status == 200 and payload["data"] == {"events": [], "page_token": None}
    status, payload = simulator.api("GET", "/audit-events?start=2999-01-01T00:00:00Z")
    assert payload["data"]["events"] == []
    for query in ("page_token=garbage!", "start=yesterday"):
        status, payload = simulator.api("GET", f"/audit-events?{query}")
        assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters"


# ---------------------------------------------------------------------- faults


def test_fault_status_count_and_matching(sim):
    faults = sim.fault(method="GET", path="/api/v1/ssh-*", status=503, count=2, retry_after=7)
    assert len(faults) == 1 and faults[0]["count"] == 2
    assert sim.api("GET", "/instances")[0] == 200
    assert sim.api("POST", "/ssh-keys", {"name": "a", "public_key": PUBLIC_KEY})[0] == 200
    status, payload, headers = sim.api_full("GET", "/ssh-keys")
    assert status == 503 and error_of(payload)["code"] == "provider/internal-unavailable"
    assert headers["Retry-After"] == "7"
    assert sim.api("GET", "/ssh-keys")[0] == 503
    assert sim.api("GET", "/ssh-keys")[0] == 200
    assert sim.faults() == []

    sim.fault(path="/api/v1/instances", status=500, code="global/internal-error", message="boom")
    sim.fault(path="/api/v1/instances", status=429)
    status, payload = sim.api("GET", "/instances")
    assert status == 500 and error_of(payload)["code"] == "global/internal-error"
    assert payload["error"]["message"] == "boom" and payload["error"]["suggestion"]
    status, payload = sim.api("GET", "/instances")
    assert status == 429 and error_of(payload)["code"] == "global/rate-limited"
    sim.fault(path="*", status=500)
    sim.clear_faults()
    assert sim.faults() == [] and sim.api("GET", "/instances")[0] == 200


def test_fault_after_processing_and_drop(sim):
    sim.fault(method="POST", path="/api/v1/instance-operations/launch", status=502, after_processing=True)
    status, payload = sim.api("POST", "/instance-operations/launch", launch_body())
    assert status == 502 and error_of(payload)["code"] == "provider/internal-unavailable"
    assert len(sim.api("GET", "/instances")[1]["data"]) == 1, "the launch was performed"

    sim.fault(method="POST", path="/api/v1/ssh-keys", drop_connection=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        sim.api("POST", "/ssh-keys", {"name": "dropped", "public_key": PUBLIC_KEY})
    assert [key["name"] for key in sim.api("GET", "/ssh-keys")[1]["data"]] == [KEY_NAME]

    sim.fault(method="POST", path="/api/v1/ssh-keys", drop_connection=True, after_processing=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        sim.api("POST", "/ssh-keys", {"name": "lost", "public_key": PUBLIC_KEY})
    assert "lost" in {key["name"] for key in sim.api("GET", "/ssh-keys")[1]["data"]}
    statuses = [(entry["path"], entry["status"]) for entry in sim.requests(method="POST")]
    assert statuses[-2:] == [("/api/v1/ssh-keys", 0), ("/api/v1/ssh-keys", 0)]


def test_fault_delay_and_body(simulator):
    simulator.fault(path="/api/v1/instances", delay_seconds=0.3)
    started = time.monotonic()
    assert simulator.api("GET", "/instances") == (200, {"data": []})
    assert time.monotonic() - started >= 0.3

    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    simulator.fault(path="/api/v1/instances", status=502, body=html)
    status, payload, headers = simulator.http(
        "GET", simulator.url + "/instances", headers={"Authorization": "Bearer x"}
    )
    assert status == 502 and payload == html and headers["Content-Type"].startswith("text/html")

    status, payload, _headers = simulator.http("POST", simulator.root + "/_simulator/faults", {"status": 500})
    assert status == 400 and "path" in error_of(payload)["message"]


# ---------------------------------------------------------------------- rate limits


def test_launch_interval(simulator_factory):
    sim = simulator_factory("--launch-interval", "2", "--boot-seconds", "0")
    sim.seed(ssh_keys=[{"name": KEY_NAME}])
    assert sim.api("POST", "/instance-operations/launch", launch_body())[0] == 200
    status, payload, headers = sim.api_full("POST", "/instance-operations/launch", launch_body())
    assert status == 429 and error_of(payload)["code"] == "global/rate-limited"
    assert headers["Retry-After"] == "2"
    assert len(sim.api("GET", "/instances")[1]["data"]) == 1, "the rejected launch did nothing"
    assert [entry["status"] for entry in sim.requests(path="/instance-operations/launch")] == [200, 429]


def test_rate_limit(simulator_factory):
    sim = simulator_factory("--rate-limit", "3")
    statuses = []
    for _attempt in range(5):
        status, _payload, headers = sim.api_full("POST", "/ssh-keys", {"name": f"k{len(statuses)}"})
        statuses.append((status, headers.get("Retry-After")))
    assert statuses[:3] == [(200, None)] * 3
    assert statuses[3:] == [(429, "1")] * 2
    assert len(sim.state()["ssh_keys"]) == 3, "rejected requests did nothing; the control API is not limited"
    time.sleep(1.05)
    assert sim.api("GET", "/ssh-keys")[0] == 200


# ---------------------------------------------------------------------- control API


def test_request_log(simulator):
    simulator.api("GET", "/instances?cluster_id=abc")
    simulator.api("GET", "/ssh-keys", api_key="wrong")
    simulator.state()
    log = simulator.requests()
    assert [(entry["method"], entry["path"], entry["query"], entry["status"]) for entry in log] == [
        ("GET", "/api/v1/instances", "cluster_id=abc", 200),
        ("GET", "/api/v1/ssh-keys", "", 401),
    ]
    assert log[0]["at"] <= log[1]["at"] <= time.time()
    assert simulator.requests(method="POST") == []
    simulator.clear_requests()
    assert simulator.requests() == []


def test_seed_and_list_many(simulator):
    instances = [
        {"name": f"node-{index}", "instance_type": "gpu_8x_h100_sxm5", "region": {"name": "us-south-1"}}
        for index in range(5000)
    ]
    instances.append({"id": "f" * 32, "status": "booting", "instance_type": {"name": "gpu_1x_a10"}})
    result = simulator.seed(instances=instances, capacity={"gpu_8x_a100_80gb_sxm4": ["us-west-1"]})
    status, payload = simulator.api("GET", "/instances")
    assert status == 200 and len(payload["data"]) == 5001 and len(result["instance_ids"]) == 5001
    first = payload["data"][0]
    assert HEX32.match(first["id"]) and first["status"] == "active" and first["ip"]
    assert first["instance_type"]["specs"]["gpus"] == 8
    assert first["region"] == {"name": "us-south-1", "description": "Texas, USA"}
    assert INSTANCE_REQUIRED <= set(first)
    booting = simulator.api("GET", "/instances/" + "f" * 32)[1]["data"]
    assert booting["status"] == "booting" and booting["region"]["name"] == "us-west-1"
    time.sleep(1.1)
    assert simulator.api("GET", "/instances/" + "f" * 32)[1]["data"]["status"] == "booting", "seeded stay put"
    assert simulator.state()["capacity"]["gpu_8x_a100_80gb_sxm4"] == ["us-west-1"]
    simulator.reset()
    state = simulator.state()
    assert state["instances"] == [] and state["capacity"]["gpu_8x_a100_80gb_sxm4"] == []


def test_seeded_capacity_allows_launch(sim):
    sim.seed(capacity={"gpu_8x_a100_80gb_sxm4": ["us-east-1"], "gpu_1x_a10": []})
    assert launch(sim, instance_type_name="gpu_8x_a100_80gb_sxm4")
    status, payload = sim.api("POST", "/instance-operations/launch", launch_body())
    assert status == 400 and error_of(payload)["code"] == "instance-operations/launch/insufficient-capacity"


def test_concurrent_requests(simulator):
    def add(index: int) -> int:
        return simulator.api("POST", "/ssh-keys", {"name": f"key-{index}", "public_key": PUBLIC_KEY})[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(add, range(64))) == {200}
    assert len(simulator.api("GET", "/ssh-keys")[1]["data"]) == 64


def test_state_file_persistence(simulator_factory, tmp_path: Path):
    state_file = tmp_path / "state.json"
    sim = simulator_factory("--state", str(state_file), "--boot-seconds", "0.2")
    sim.seed(ssh_keys=[{"name": KEY_NAME}])
    instance_id = launch(sim, name="persisted")
    assert json.loads(state_file.read_text())["instances"][0]["id"] == instance_id
    assert sim.stop() == 0

    again = simulator_factory("--state", str(state_file))
    names = [key["name"] for key in again.api("GET", "/ssh-keys")[1]["data"]]
    assert names == [KEY_NAME]
    instance = again.wait_for_status(instance_id, "active", timeout=5)
    assert instance["name"] == "persisted"
    again.api("POST", "/instance-operations/terminate", {"instance_ids": [instance_id]})
    assert again.stop() == 0
    saved = json.loads(state_file.read_text())
    assert saved["instances"][0]["status"] == "terminating"


def test_basic_auth_header_format(simulator):
    token = base64.b64encode(b"sim-api-key:").decode()
    status, _payload, _headers = simulator.http(
        "GET", simulator.url + "/images", headers={"Authorization": f"Basic {token}"}
    )
    assert status == 200


def test_restart_of_terminated_instance_refused(sim):
    instance_id = sim.seed(instances=[{"status": "terminated"}])["instance_ids"][0]
    status, payload = sim.api("POST", "/instance-operations/restart", {"instance_ids": [instance_id]})
    assert status == 400 and error_of(payload)["code"] == "global/invalid-parameters"
    status, payload = sim.api("POST", "/instance-operations/terminate", {"instance_ids": [instance_id]})
    assert status == 200 and payload["data"]["terminated_instances"][0]["status"] == "terminated"
    status, payload = sim.api("POST", "/instance-operations/terminate", {"instance_ids": []})
    assert status == 400 and "instance_ids" in error_of(payload)["message"]


def test_runtime_config_is_reset(sim):
    assert sim.configure(launch_interval=30)["launch_interval"] == 30
    assert sim.api("POST", "/instance-operations/launch", launch_body())[0] == 200
    assert sim.api("POST", "/instance-operations/launch", launch_body())[0] == 429
    assert sim.configure(idempotency=False)["idempotency"] is False
    sim.reset()
    assert sim.control("GET", "/config") == {
        "boot_seconds": 1.0,
        "terminate_seconds": 1.0,
        "launch_interval": 0.0,
        "rate_limit": 0,
        "idempotency": True,
    }


def test_no_idempotency_flag_launches_a_repeat_again(simulator_factory):
    sim = simulator_factory("--no-idempotency")
    sim.seed(ssh_keys=[{"name": KEY_NAME, "public_key": PUBLIC_KEY}])
    assert sim.control("GET", "/config")["idempotency"] is False
    headers = {"Authorization": f"Bearer {sim.api_key}", "Idempotency-Key": "same"}
    answers = [
        sim.http("POST", sim.url + "/instance-operations/launch", launch_body(), headers) for _repeat in range(2)
    ]
    assert [status for status, _body, _headers in answers] == [200, 200]
    assert answers[0][1]["data"] != answers[1][1]["data"]  # two instances, as an API without the header gives


def test_sigint_exits_cleanly(simulator_factory):
    sim = simulator_factory("--boot-seconds", "0.5")
    assert sim.process is not None
    sim.process.send_signal(signal.SIGINT)
    assert sim.process.wait(10) == 0
    assert sim.stderr == ""
