# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An instance as host variables, the same for the inventory plugin and the cluster role."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._hostvars import (
    HOSTVAR_NAMES,
    gpu_memory_gib,
    gpu_model,
    instance_addresses,
    instance_hostvars,
)

INSTANCE = {
    "id": "0920582c7ff041399e34823a0be62549",
    "name": "train-1",
    "status": "active",
    "ip": "127.18.0.2",
    "private_ip": "127.10.0.2",
    "hostname": "train-1",
    "region": {"name": "us-east-1", "description": "Virginia, USA"},
    "instance_type": {
        "name": "gpu_8x_h100_sxm5",
        "description": "8x H100 (80 GB SXM5)",
        "gpu_description": "H100 (80 GB SXM5)",
        "price_cents_per_hour": 2392,
        "specs": {"vcpus": 208, "memory_gib": 1800, "storage_gib": 22000, "gpus": 8},
    },
    "ssh_key_names": ["deploy"],
    "file_system_names": ["datasets"],
    "file_system_mounts": [{"mount_point": "/data", "file_system_id": "f1"}],
    "firewall_rulesets": [{"id": "r1"}, {"name": "no id"}],
    "tags": [{"key": "team", "value": "research"}],
    "jupyter_token": "secret-token",
    "jupyter_url": "https://jupyter.example/?token=secret-token",
}


@pytest.mark.parametrize(
    ("description", "model", "memory"),
    [
        ("H100 (80 GB SXM5)", "H100", 80),
        ("A100 (40 GB SXM4)", "A100", 40),
        ("A10 (24 GB PCIe)", "A10", 24),
        ("GH200 (96 GB)", "GH200", 96),
        ("RTX A6000 (48 GB)", "A6000", 48),
        ("Tesla V100 (16 GB)", "V100", 16),
        ("B200 (180 GB SXM6)", "B200", 180),
        ("NVIDIA H200", "H200", None),
        (None, None, None),
        ("", None, None),
    ],
)
def test_gpu_model_and_memory_from_the_description(description, model, memory):
    assert gpu_model(description) == model
    assert gpu_memory_gib(description) == memory


def test_every_variable_with_its_type():
    found = instance_hostvars(INSTANCE)
    assert set(found) == {f"lambda_{name}" for name in HOSTVAR_NAMES} | {"ansible_user", "ansible_host"} | {
        "ansible_ssh_common_args"
    }
    assert found["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=accept-new"
    assert found["lambda_gpus"] == 8 and found["lambda_price_cents_per_hour"] == 2392
    assert found["lambda_gpu_model"] == "H100" and found["lambda_gpu_memory_gib"] == 80
    assert found["lambda_tags"] == {"team": "research"}
    assert found["lambda_firewall_ruleset_ids"] == ["r1"]
    assert found["ansible_host"] == "127.18.0.2" and found["ansible_user"] == "ubuntu"
    assert "secret-token" not in str(found)


def test_prefix_address_user_and_jupyter_on_request():
    found = instance_hostvars(INSTANCE, prefix="lc_", include_jupyter=True, connect_with="private_ip", user="root")
    assert found["lc_name"] == "train-1" and found["lc_jupyter_token"] == "secret-token"
    assert found["ansible_host"] == "127.10.0.2" and found["ansible_user"] == "root"


def test_ssh_arguments_can_be_changed_or_left_out():
    assert instance_hostvars(INSTANCE, ssh_common_args="-o ProxyJump=bastion")["ansible_ssh_common_args"] == (
        "-o ProxyJump=bastion"
    )
    assert "ansible_ssh_common_args" not in instance_hostvars(INSTANCE, ssh_common_args="")


def test_the_addresses_of_instances_for_known_hosts_each_once():
    instances = [
        {"ip": "127.18.0.2", "private_ip": "127.10.0.2"},
        {"ip": "127.18.0.3"},
        {"ip": "127.18.0.2", "private_ip": None},
        {"status": "booting"},
    ]
    assert instance_addresses(instances) == ["127.18.0.2", "127.10.0.2", "127.18.0.3"]
    assert instance_addresses([]) == []


def test_a_booting_instance_has_no_address_and_names_may_be_plain_strings():
    found = instance_hostvars({"id": "i", "status": "booting", "region": "us-east-1", "instance_type": "gpu_1x_a10"})
    assert "ansible_host" not in found
    assert found["lambda_region"] == "us-east-1" and found["lambda_instance_type"] == "gpu_1x_a10"
    assert found["lambda_gpus"] is None and found["lambda_tags"] == {} and found["lambda_ssh_key_names"] == []
