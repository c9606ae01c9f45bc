# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile input, table-driven: every module, the inventory configuration and the roles' variables.

Each bad value must give one line that names the parameter, no traceback, and change nothing in the account.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.integration.support import PUBLIC_KEY, refused_sources

LAUNCH = {"name": "bad", "instance_type": ["gpu_1x_a10"], "region": ["us-east-1"], "ssh_key_name": ["deploy"]}
LONG = "n" * 65

# (module, title, arguments, the parameter the message must name)
INSTANCE = [
    ("newline in name", {"name": "a\n"}, "name"),
    ("NUL in name", {"name": "a\x00b"}, "name"),
    ("bell in name", {"name": "ring\x07"}, "name"),
    ("carriage return in name", {"name": "a\rb"}, "name"),
    ("escape in name", {"name": "\x1b[31mred"}, "name"),
    ("list as name", {"name": ["a", "b"]}, "name"),
    ("dict as name", {"name": {"a": 1}}, "name"),
    ("boolean as name", {"name": True}, "name"),
    ("long name", {"name": LONG}, "name"),
    ("empty name", {"name": ""}, "name"),
    ("blank name", {"name": "   "}, "name"),
    ("line separator in name", {"name": "a\u2028b"}, "name"),
    ("trailing space in name", {"name": "trainer "}, "name"),
    ("leading space in name", {"name": " trainer"}, "name"),
    ("no-break space in name", {"name": "train\u00a0er"}, "name"),
    ("zero-width space in name", {"name": "train\u200ber"}, "name"),
    ("right-to-left override in name", {"name": "train\u202eer"}, "name"),
    ("byte order mark in name", {"name": "\ufefftrainer"}, "name"),
    ("paragraph separator in name", {"name": "a\u2029b"}, "name"),
    ("left-to-right mark in name", {"name": "train\u200eer"}, "name"),
    ("tab in name", {"name": "a\tb"}, "name"),
    ("ideographic space in name", {"name": "a\u3000b"}, "name"),
    ("soft hyphen in name", {"name": "train\u00ader"}, "name"),
    ("word joiner in name", {"name": "a\u2060b"}, "name"),
    ("NaN tag value", {"tags": {"team": float("nan")}}, "tags"),
    ("infinite tag value", {"tags": {"team": float("inf")}}, "tags"),
    ("boolean as request_timeout", {"request_timeout": True}, "request_timeout"),
    ("NaN wait_timeout", {"wait_timeout": "nan"}, "wait_timeout"),
    ("NaN capacity_timeout", {"capacity_timeout": "nan"}, "capacity_timeout"),
    ("negative price limit", {"max_price_cents_per_hour": -1}, "max_price_cents_per_hour"),
    ("a million GPUs", {"min_gpus": 10**6}, "min_gpus"),
    ("path in id", {"id": "../ssh-keys", "state": "absent"}, "id"),
    ("slash in id", {"id": "a/b"}, "id"),
    ("empty id", {"id": ""}, "id"),
    ("query in id", {"id": "x?y=1"}, "id"),
    ("list as id", {"id": ["a"]}, "id"),
    ("uppercase hostname", {"hostname": "Bad_Host"}, "hostname"),
    ("newline after hostname", {"hostname": "node-1\n"}, "hostname"),
    ("hostname starting with a dash", {"hostname": "-node"}, "hostname"),
    ("long hostname", {"hostname": "h" * 64}, "hostname"),
    ("uppercase tag key", {"tags": {"Team": "x"}}, "tags"),
    ("newline in tag key", {"tags": {"team\n": "x"}}, "tags"),
    ("dict as tag value", {"tags": {"team": {"a": 1}}}, "tags"),
    ("list as tag value", {"tags": {"team": ["a"]}}, "tags"),
    ("long tag value", {"tags": {"team": "x" * 129}}, "tags"),
    ("newline in tag value", {"tags": {"team": "a\nb"}}, "tags"),
    ("string as tags", {"tags": "not a dict"}, "tags"),
    ("one-letter tag key", {"tags": {"t": "x"}}, "tags"),
    ("big user data", {"user_data": "x" * (1024 * 1024 + 1)}, "user_data"),
    ("NUL in user data", {"user_data": "#!/bin/sh\x00"}, "user_data"),
    ("two SSH keys", {"ssh_key_name": ["deploy", "other"]}, "ssh_key_name"),
    ("newline in SSH key name", {"ssh_key_name": ["deploy\n"]}, "ssh_key_name"),
    ("unknown SSH key", {"ssh_key_name": ["nobody"]}, "ssh_key_name"),
    ("dict in SSH key list", {"ssh_key_name": [{"a": 1}]}, "ssh_key_name"),
    ("unknown instance type", {"instance_type": ["gpu_9x_nothing"]}, "instance_type"),
    ("instance type with a space", {"instance_type": ["gpu 1x"]}, "instance_type"),
    ("nested list as instance type", {"instance_type": [["gpu_1x_a10"]]}, "instance_type"),
    ("no instance type", {"instance_type": None}, "instance_type"),
    ("malformed region", {"region": ["mars-1"]}, "region"),
    ("newline after region", {"region": ["us-east-1\n"]}, "region"),
    ("dict as region", {"region": [{"name": "us-east-1"}]}, "region"),
    ("infinite launch interval", {"launch_interval": "inf"}, "launch_interval"),
    ("NaN launch interval", {"launch_interval": "nan"}, "launch_interval"),
    ("huge launch interval", {"launch_interval": 1e308}, "launch_interval"),
    ("negative launch interval", {"launch_interval": -1}, "launch_interval"),
    ("word as wait_timeout", {"wait_timeout": "soon"}, "wait_timeout"),
    ("negative wait_timeout", {"wait_timeout": -5}, "wait_timeout"),
    ("huge wait_timeout", {"wait_timeout": 10**12}, "wait_timeout"),
    ("NaN progress_seconds", {"progress_seconds": "nan"}, "progress_seconds"),
    ("negative progress_seconds", {"progress_seconds": -1}, "progress_seconds"),
    ("word as progress_seconds", {"progress_seconds": "often"}, "progress_seconds"),
    ("negative capacity_timeout", {"capacity_timeout": -1}, "capacity_timeout"),
    ("negative confirm timeout", {"launch_confirm_timeout": -1}, "launch_confirm_timeout"),
    ("no confirm window", {"launch_confirm_timeout": 0}, "launch_confirm_timeout"),
    (
        "confirm window under 4 request timeouts",
        {"launch_confirm_timeout": 10, "request_timeout": 5},
        "launch_confirm_timeout",
    ),
    ("negative min_gpus", {"min_gpus": -1}, "min_gpus"),
    ("negative price limit", {"max_price_cents_per_hour": -1}, "max_price_cents_per_hour"),
    ("limits that exclude every type", {"min_gpus": 100}, "instance_type"),
    ("unknown state", {"state": "gone"}, "state"),
    ("unknown on_mismatch", {"on_mismatch": "maybe"}, "on_mismatch"),
    ("word as wait", {"wait": "perhaps"}, "wait"),
    ("malformed file system name", {"file_system_names": ["1bad"]}, "file_system_names"),
    ("unknown file system", {"file_system_names": ["nope"]}, "file_system_names"),
    (
        "mount point outside the allowed roots",
        {"file_system_mounts": [{"name": "fs", "mount_point": "/etc"}]},
        "file_system_mounts[0].mount_point",
    ),
    ("mount without a file system", {"file_system_mounts": [{"mount_point": "/data"}]}, "file_system_mounts"),
    ("path in image id", {"image": {"id": "../images"}}, "image.id"),
    ("image id and family", {"image": {"id": "a", "family": "b"}}, "image"),
    ("unknown image family", {"image": {"family": "windows-95"}}, "image"),
    ("path in ruleset id", {"firewall_ruleset_ids": ["../x"]}, "firewall_ruleset_ids"),
    ("unknown ruleset name", {"firewall_ruleset_names": ["nope"]}, "firewall_ruleset_names"),
    ("unknown option", {"colour": "blue"}, "colour"),
    ("NaN request timeout", {"request_timeout": "nan"}, "request_timeout"),
    ("infinite request timeout", {"request_timeout": "inf"}, "request_timeout"),
    ("zero request timeout", {"request_timeout": 0}, "request_timeout"),
    ("URL without a scheme", {"api_url": "cloud.lambda.ai/api/v1"}, "api_url"),
    ("rename to a taken name", {"id": "@taken", "name": "other"}, "name"),
    ("rename to a taken name, in check mode", {"id": "@taken", "name": "other", "_ansible_check_mode": True}, "name"),
    ("changes that cannot happen in place", {"name": "taken", "region": ["us-west-2"]}, "region"),
    ("neither id nor name", {"name": None}, "id, name"),
]

SSH_KEY = [
    ("empty key name", {"name": ""}, "name"),
    ("newline in key name", {"name": "k\n"}, "name"),
    ("trailing space in key name", {"name": "deploy "}, "name"),
    ("zero-width joiner in key name", {"name": "de\u200dploy"}, "name"),
    ("right-to-left override in key name", {"name": "de\u202eploy"}, "name"),
    ("leading space in key name", {"name": " deploy"}, "name"),
    ("NUL in key name", {"name": "k\x00"}, "name"),
    ("list as key name", {"name": ["a"]}, "name"),
    ("long key name", {"name": LONG}, "name"),
    ("not a public key", {"name": "k", "public_key": "not a key"}, "public_key"),
    ("two public keys", {"name": "k", "public_key": PUBLIC_KEY + " " + PUBLIC_KEY}, "public_key"),
    (
        "carriage return in public key",
        {"name": "k", "public_key": PUBLIC_KEY.replace(" deploy", "\r deploy")},
        "public_key",
    ),
    ("two lines of public keys", {"name": "k", "public_key": PUBLIC_KEY + "\n" + PUBLIC_KEY}, "public_key"),
    ("list as public key", {"name": "k", "public_key": [PUBLIC_KEY]}, "public_key"),
    ("existing private key file", {"name": "k", "private_key_path": "@existing"}, "private_key_path"),
    ("private key in a missing directory", {"name": "k", "private_key_path": "/no/such/dir/key"}, "private_key_path"),
    ("no private key path", {"name": "k"}, "private_key_path"),
    ("unknown key state", {"name": "k", "state": "gone"}, "state"),
    ("word as force", {"name": "k", "public_key": PUBLIC_KEY, "force": "perhaps"}, "force"),
]

FILE_SYSTEM = [
    ("name starting with a digit", {"name": "1bad", "region": "us-west-1"}, "name"),
    ("newline after name", {"name": "data\n", "region": "us-west-1"}, "name"),
    ("empty file system name", {"name": "", "region": "us-west-1"}, "name"),
    ("slash in file system name", {"name": "a/b", "region": "us-west-1"}, "name"),
    ("long file system name", {"name": "d" * 61, "region": "us-west-1"}, "name"),
    ("list as file system name", {"name": ["a"], "region": "us-west-1"}, "name"),
    ("leading space in file system name", {"name": " data", "region": "us-west-1"}, "name"),
    ("NUL in file system name", {"name": "da\x00ta", "region": "us-west-1"}, "name"),
    ("malformed file system region", {"name": "data", "region": "mars-1"}, "region"),
    ("newline after file system region", {"name": "data", "region": "us-west-1\n"}, "region"),
    ("list as file system region", {"name": "data", "region": ["us-west-1"]}, "region"),
    ("no region to create", {"name": "data"}, "region"),
    ("unknown file system state", {"name": "data", "state": "gone"}, "state"),
]

INFO = [
    ("lambda_instance_info", "path in info id", {"id": "../ssh-keys"}, "id"),
    ("lambda_instance_info", "newline in info name", {"name": "a\n"}, "name"),
    ("lambda_instance_info", "malformed info region", {"region": "x"}, "region"),
    ("lambda_instance_info", "malformed info type", {"instance_type": "bad type"}, "instance_type"),
    ("lambda_instance_info", "unknown info status", {"status": ["sleeping"]}, "status"),
    ("lambda_instance_info", "word as include_jupyter", {"include_jupyter": "perhaps"}, "include_jupyter"),
    ("lambda_instance_info", "list as info name", {"name": ["a"]}, "name"),
    ("lambda_instance_type_info", "unknown type name", {"name": "gpu_99x_z9000"}, "name"),
    ("lambda_instance_type_info", "malformed type region", {"region": "mars"}, "region"),
    ("lambda_instance_type_info", "word as min_gpus", {"min_gpus": "eight"}, "min_gpus"),
    ("lambda_instance_type_info", "negative min_gpus filter", {"min_gpus": -1}, "min_gpus"),
    (
        "lambda_instance_type_info",
        "negative price filter",
        {"max_price_cents_per_hour": -5},
        "max_price_cents_per_hour",
    ),
    ("lambda_instance_type_info", "newline in gpu filter", {"gpu": "a\n"}, "gpu"),
    ("lambda_instance_type_info", "word as available", {"available": "perhaps"}, "available"),
    ("lambda_image_info", "unknown image family filter", {"family": "windows-95"}, "family"),
    ("lambda_image_info", "unknown architecture", {"architecture": "sparc"}, "architecture"),
    ("lambda_image_info", "malformed image region", {"region": "x"}, "region"),
    ("lambda_image_info", "newline in image name", {"name": "a\n"}, "name"),
    ("lambda_file_system_info", "malformed file system filter", {"name": "1bad"}, "name"),
    ("lambda_file_system_info", "malformed file system region filter", {"region": "x"}, "region"),
    ("lambda_ssh_key_info", "newline in key filter", {"name": "a\n"}, "name"),
    ("lambda_ssh_key_info", "list as key filter", {"name": ["a"]}, "name"),
    ("lambda_ssh_key_info", "unknown info option", {"colour": "blue"}, "colour"),
    ("lambda_instance_wait", "path in wait ids", {"ids": ["../x"]}, "ids"),
    ("lambda_instance_wait", "nested list of ids", {"ids": [["a"]]}, "ids"),
    ("lambda_instance_wait", "negative wait timeout", {"ids": ["a"], "timeout": -1}, "timeout"),
    ("lambda_instance_wait", "word as wait timeout", {"ids": ["a"], "timeout": "soon"}, "timeout"),
    ("lambda_instance_wait", "unknown wait state", {"ids": ["a"], "state": "maybe"}, "state"),
    ("lambda_instance_wait", "unknown connect address", {"ids": ["a"], "connect_with": "ipv6"}, "connect_with"),
    ("lambda_instance_wait", "no ids", {}, "ids"),
]

SSH_RULE = {"protocol": "tcp", "port": 22, "source_network": "0.0.0.0/0"}
FIREWALL = [
    (
        "lambda_firewall_ruleset",
        "newline in ruleset name",
        {"name": "fw\n", "region": "us-east-1", "rules": []},
        "name",
    ),
    ("lambda_firewall_ruleset", "malformed ruleset region", {"name": "fw", "region": "east", "rules": []}, "region"),
    ("lambda_firewall_ruleset", "no region to create", {"name": "fw", "rules": [SSH_RULE]}, "region"),
    ("lambda_firewall_ruleset", "no rules", {"name": "fw", "region": "us-east-1"}, "rules"),
    (
        "lambda_firewall_ruleset",
        "unknown protocol",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"protocol": "sctp"}]},
        "protocol",
    ),
    (
        "lambda_firewall_ruleset",
        "port out of range",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"port": 70000}]},
        "rules[0].port_range",
    ),
    (
        "lambda_firewall_ruleset",
        "reversed port range",
        {
            "name": "fw",
            "region": "us-east-1",
            "rules": [{"protocol": "udp", "port_range": [10, 5], "source_network": "0.0.0.0/0"}],
        },
        "rules[0].port_range",
    ),
    (
        "lambda_firewall_ruleset",
        "three ports in a range",
        {
            "name": "fw",
            "region": "us-east-1",
            "rules": [{"protocol": "udp", "port_range": [1, 2, 3], "source_network": "0.0.0.0/0"}],
        },
        "rules[0].port_range",
    ),
    (
        "lambda_firewall_ruleset",
        "host bits in a network",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"source_network": "1.2.3.4/24"}]},
        "rules[0].source_network",
    ),
    (
        "lambda_firewall_ruleset",
        "IPv6 source",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"source_network": "::1"}]},
        "rules[0].source_network",
    ),
    (
        "lambda_firewall_ruleset",
        "newline in a source",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"source_network": "0.0.0.0/0\n"}]},
        "rules[0].source_network",
    ),
    (
        "lambda_firewall_ruleset",
        "long rule description",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"description": "d" * 129}]},
        "rules[0].description",
    ),
    (
        "lambda_firewall_ruleset",
        "ports on icmp",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"protocol": "icmp"}]},
        "rules[0].port_range",
    ),
    (
        "lambda_firewall_ruleset",
        "tcp without a port",
        {"name": "fw", "region": "us-east-1", "rules": [{"protocol": "tcp", "source_network": "0.0.0.0/0"}]},
        "rules[0].port_range",
    ),
    (
        "lambda_firewall_ruleset",
        "port and port range",
        {"name": "fw", "region": "us-east-1", "rules": [SSH_RULE | {"port_range": [1, 2]}]},
        "port|port_range",
    ),
    ("lambda_firewall_ruleset_info", "path in ruleset id filter", {"id": "../x"}, "id"),
    ("lambda_global_firewall_rules", "no global rules", {}, "rules"),
    (
        "lambda_global_firewall_rules",
        "word as a source",
        {"rules": [SSH_RULE | {"source_network": "anywhere"}]},
        "rules[0].source_network",
    ),
    ("lambda_audit_event_info", "word as start", {"start": "yesterday"}, "start"),
    ("lambda_audit_event_info", "newline in end", {"end": "2026-01-01\n"}, "end"),
    ("lambda_audit_event_info", "zero max_events", {"max_events": 0}, "max_events"),
    ("lambda_audit_event_info", "newline in resource type", {"resource_type": "instance\n"}, "resource_type"),
    ("lambda_cluster_info", "path in cluster name", {"name": "../training"}, "name"),
    ("lambda_cluster_info", "newline in cluster name", {"name": "training\n"}, "name"),
    ("lambda_cluster_info", "list as cluster name", {"name": ["training"]}, "name"),
]

MODULE_CASES = (
    [("lambda_instance", title, LAUNCH | args, param) for title, args, param in INSTANCE]
    + [("lambda_ssh_key", title, args, param) for title, args, param in SSH_KEY]
    + [("lambda_file_system", title, args, param) for title, args, param in FILE_SYSTEM]
    + INFO
    + FIREWALL
)

INVENTORY = [
    ("empty prefix", {"hostvars_prefix": ""}, "hostvars_prefix"),
    ("number as prefix", {"hostvars_prefix": 5}, "hostvars_prefix"),
    ("prefix with a space", {"hostvars_prefix": "bad prefix-"}, "hostvars_prefix"),
    ("newline in prefix", {"hostvars_prefix": "lambda_\n"}, "hostvars_prefix"),
    ("word as include_jupyter", {"include_jupyter": "perhaps"}, "include_jupyter"),
    ("word as default_groups", {"default_groups": "maybe"}, "default_groups"),
    ("word as validate_certs", {"validate_certs": "sometimes"}, "validate_certs"),
    ("word as strict", {"strict": "rather"}, "strict"),
    ("unknown status", {"statuses": ["sleeping"]}, "statuses"),
    ("unknown hostnames entry", {"hostnames": ["address"]}, "hostnames"),
    ("unknown connect_with", {"connect_with": "ipv6"}, "connect_with"),
    ("NaN request timeout", {"request_timeout": "nan"}, "request_timeout"),
    ("infinite request timeout", {"request_timeout": "inf"}, "request_timeout"),
    ("zero request timeout", {"request_timeout": 0}, "request_timeout"),
    ("list as tag filter value", {"tags": {"team": ["a"]}}, "tags"),
    ("empty region filter", {"regions": [""]}, "regions"),
    ("number as name filter", {"names": [5]}, "names"),
    ("URL without a scheme", {"api_url": "cloud.lambda.ai/api/v1"}, "api_url"),
    ("newline in the API key", {"api_key": "sim-api-key\nX-Injected: 1"}, "api_key"),
    ("unknown option", {"colour": "blue"}, "colour"),
]

DEFAULTS = {"instance_type": ["gpu_1x_a10"], "ssh_key_name": "deploy"}
# (title, variables, the variable the message names, a piece of the message that says what is wrong)
ROLE = [
    (
        "space in cluster name",
        {"lambda_cluster_name": "no spaces"},
        "lambda_cluster_name",
        "lambda_cluster_name must be",
    ),
    (
        "newline in cluster name",
        {"lambda_cluster_name": "demo\n"},
        "lambda_cluster_name",
        "lambda_cluster_name must be",
    ),
    ("long cluster name", {"lambda_cluster_name": "c" * 49}, "lambda_cluster_name", "lambda_cluster_name must be"),
    (
        "word as node count",
        {"lambda_cluster_nodes": {"count": "three"}},
        "lambda_cluster_nodes",
        "lambda_cluster_nodes must be a count plus a name pattern",
    ),
    (
        "ten million nodes",
        {"lambda_cluster_nodes": {"count": 10_000_000}},
        "lambda_cluster_nodes.count",
        "lambda_cluster_nodes.count: must be at most 256",
    ),
    (
        "negative node count",
        {"lambda_cluster_nodes": {"count": -1}},
        "lambda_cluster_nodes.count",
        "must be at least 0, got -1",
    ),
    (
        "pattern without index",
        {"lambda_cluster_nodes": {"count": 2, "name_pattern": "same"}},
        "lambda_cluster_nodes.name_pattern",
        "must contain {index}",
    ),
    ("duplicate node names", {"lambda_cluster_nodes": ["a", "a"]}, "lambda_cluster_nodes", "unique name"),
    (
        "newline in node name",
        {"lambda_cluster_nodes": ["a\nb"]},
        "lambda_cluster_nodes",
        "must not contain control characters",
    ),
    (
        "unknown node key",
        {"lambda_cluster_nodes": [{"name": "a", "flavour": "x"}]},
        "lambda_cluster_nodes",
        "only the keys",
    ),
    (
        "bad tag key",
        {"lambda_cluster_defaults": DEFAULTS | {"tags": {"Team": "x"}}},
        "lambda_cluster_nodes",
        "tag keys must match",
    ),
    (
        "reserved tag",
        {"lambda_cluster_defaults": DEFAULTS | {"tags": {"cluster": "x"}}},
        "lambda_cluster_nodes",
        "sets the tags cluster and expires-at itself",
    ),
    (
        "defaults without instance_type",
        {"lambda_cluster_defaults": {"ssh_key_name": "deploy"}},
        "lambda_cluster_defaults",
        "needs instance_type and ssh_key_name",
    ),
    (
        "misspelt key in defaults",
        {"lambda_cluster_defaults": {"instance_typ": "gpu_1x_a10", "ssh_key_name": "deploy"}},
        "lambda_cluster_defaults",
        "lambda_cluster_defaults.instance_typ.",
    ),
    ("negative TTL", {"lambda_cluster_ttl_hours": -1}, "lambda_cluster_ttl_hours", "must be greater than 0"),
    ("zero TTL", {"lambda_cluster_ttl_hours": 0}, "lambda_cluster_ttl_hours", "must be greater than 0"),
    (
        "TTL past any readable date",
        {"lambda_cluster_ttl_hours": 1e12},
        "lambda_cluster_ttl_hours",
        "lambda_cluster_ttl_hours: must be at most 8784",
    ),
    ("list as defaults", {"lambda_cluster_defaults": ["a"]}, "lambda_cluster_defaults", "must be of type dict"),
    ("unknown state", {"lambda_cluster_state": "gone"}, "lambda_cluster_state", "gone"),
    (
        "word as remove_extra",
        {"lambda_cluster_remove_extra": "perhaps"},
        "lambda_cluster_remove_extra",
        "'perhaps' is not a valid boolean",
    ),
    ("empty ansible user", {"lambda_cluster_ansible_user": ""}, "lambda_cluster_ansible_user", "must be a login name"),
    (
        "newline in ansible user",
        {"lambda_cluster_ansible_user": "ubuntu\nroot"},
        "lambda_cluster_ansible_user",
        "must be a login name",
    ),
    (
        "list as a tag value",
        {"lambda_cluster_defaults": DEFAULTS | {"tags": {"team": ["a"]}}},
        "lambda_cluster_nodes",
        "the value of tag 'team' must be a string, number or boolean, not a list",
    ),
    (
        "firewall rule as a string",
        {"lambda_cluster_firewall_rules": ["tcp/22"]},
        "lambda_cluster_firewall_rules",
        "lambda_cluster_firewall_rules",
    ),
    (
        "port 0 in a firewall rule",
        {
            "lambda_cluster_defaults": DEFAULTS | {"region": ["us-east-1"]},
            "lambda_cluster_firewall_rules": [{"protocol": "tcp", "port": 0, "source_network": "0.0.0.0/0"}],
        },
        "lambda_cluster_firewall_rules",
        "lambda_cluster_firewall_rules[0].port_range: must be at least 1, got 0",
    ),
    ("word as wait timeout", {"lambda_cluster_wait_timeout": "soon"}, "lambda_cluster_wait_timeout", "convert to int"),
    ("negative wait timeout", {"lambda_cluster_wait_timeout": -5}, "lambda_cluster_wait_timeout", "at least 0"),
    (
        "negative launch interval",
        {"lambda_cluster_launch_interval": -1},
        "lambda_cluster_launch_interval",
        "at least 0",
    ),
    ("NaN TTL", {"lambda_cluster_ttl_hours": "nan"}, "lambda_cluster_ttl_hours", "must be a finite number"),
    ("unknown connect_with", {"lambda_cluster_connect_with": "telepathy"}, "lambda_cluster_connect_with", "telepathy"),
    (
        "word as allow_mixed_types",
        {"lambda_cluster_allow_mixed_types": "maybe"},
        "lambda_cluster_allow_mixed_types",
        "'maybe' is not a valid boolean",
    ),
    ("yes as capacity timeout", {"lambda_cluster_capacity_timeout": "yes"}, "lambda_cluster_capacity_timeout", "int"),
]


def test_there_are_at_least_250_cases():
    assert len(MODULE_CASES) + len(INVENTORY) + len(ROLE) + len(NODE_READ) >= 250


@pytest.fixture
def seeded(account, tmp_path):
    """Besides the key "deploy": the instances "taken" and "other", and the file system "fs"; the seed's answer."""
    answer = account.seed(
        instances=[
            {"name": "taken", "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"},
            {"name": "other", "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"},
        ],
        file_systems=[{"name": "fs", "region": "us-east-1"}],
    )
    (tmp_path / "existing-key").write_text("already here\n")
    account.clear_requests()
    return answer


def resolve(args, seeded, tmp_path):
    """Fill in the placeholders that name things only the fixture knows."""
    resolved = dict(args)
    if resolved.get("id") == "@taken":
        resolved["id"] = seeded["instance_ids"][0]
    if resolved.get("private_key_path") == "@existing":
        resolved["private_key_path"] = str(tmp_path / "existing-key")
    return {key: value for key, value in resolved.items() if value is not None}


def assert_one_line_naming(message, param, where):
    assert message and "\n" not in message, (where, message)
    assert "Traceback" not in message and not message.startswith("Module failed"), (where, message)
    assert param in message, (where, param, message)


def test_every_module_refuses_bad_input_and_changes_nothing(ansible, simulator, seeded, tmp_path):
    before = simulator.state()
    cases = [(module, title, resolve(args, seeded, tmp_path), param) for module, title, args, param in MODULE_CASES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda case: ansible.module(
                    case[0], case[2] | {"request_timeout": 5} if "request_timeout" not in case[2] else case[2]
                ),
                cases,
            )
        )
    for (module, title, _args, param), result in zip(cases, results):
        assert result.get("failed"), (title, result)
        assert "exception" not in result and "module_stderr" not in result, (title, result)
        assert_one_line_naming(result["msg"], param, f"{module}: {title}")
    assert simulator.state() == before
    assert {entry["method"] for entry in simulator.requests()} <= {"GET"}


def test_the_inventory_refuses_bad_configuration(ansible, simulator, tmp_path):
    # Every configuration is a source of one ansible-inventory run, which reports each refused source in order: its
    # message, then "Unable to parse <source> as an inventory source".
    sources = []
    for number, (_title, config, _param) in enumerate(INVENTORY):
        # Named by number: a name that holds the option would put it in every message about the file.
        path = tmp_path / f"{number:02d}.lambda_cloud.yml"
        path.write_text(yaml.safe_dump({"plugin": "lambdalabs.cloud.lambda_cloud"} | config))
        sources += ["-i", str(path)]
    # Only this plugin is enabled, as docs/inventory.md recommends: otherwise Ansible's own fallback parsers (ini,
    # yaml) read the files too and quote their lines, the API key among them, in their errors.
    result = ansible.command(
        ["ansible-inventory", *sources, "--list"],
        env={
            "ANSIBLE_INVENTORY_ENABLED": "lambdalabs.cloud.lambda_cloud",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "false",
        },
    )
    assert "Traceback" not in result.output and "sim-api-key" not in result.output, result.output[-3000:]
    assert json.loads(result.stdout or "{}").get("_meta", {}).get("hostvars", {}) == {}, result.stdout
    said = refused_sources(result.output, sources[1::2])
    for (title, _config, param), text in zip(INVENTORY, said.values()):
        assert param in text, (title, text)
    assert {entry["method"] for entry in simulator.requests()} <= {"GET"}


def test_the_cluster_role_refuses_bad_variables_before_any_launch(ansible, simulator, seeded):
    base = {
        "lambda_cluster_name": "demo",
        "lambda_cluster_nodes": {"count": 1},
        "lambda_cluster_defaults": DEFAULTS,
        "lambda_cluster_wait_for_ssh": False,
        "lambda_cluster_launch_interval": 0,
    }
    tasks = []
    for title, overrides, _param, _text in ROLE:
        tasks.append(
            {
                "name": title,
                "block": [
                    {
                        "name": f"provision: {title}",
                        "ansible.builtin.include_role": {"name": "lambdalabs.cloud.cluster"},
                        "vars": base | overrides,
                    }
                ],
                "rescue": [
                    {"name": f"failed: {title}", "ansible.builtin.debug": {"msg": "{{ ansible_failed_result.msg }}"}}
                ],
            }
        )
    before = simulator.state()
    run = ansible.playbook(tasks)
    assert run.rc == 0, run.output[-3000:]
    for title, _overrides, param, text in ROLE:
        message = run.task(f"failed: {title}")["msg"]
        assert text in message, (title, text, message)
        if message.startswith("Validation of arguments failed"):
            # Ansible's own check of the role's argument_specs: one line per error it found, each naming the variable.
            assert all(param in line for line in message.splitlines()[1:] if "must be" in line), (title, message)
            assert param in message and "Traceback" not in message, (title, message)
        else:
            assert_one_line_naming(message, param, title)
    assert simulator.state() == before
    assert {entry["method"] for entry in simulator.requests()} <= {"GET"}


# gpu_node_info's action plugin validates on the controller, before anything runs on the node.
NODE_READ = [
    ("NaN connect timeout", {"connect_timeout": "nan"}, "connect_timeout"),
    ("infinite connect timeout", {"connect_timeout": "inf"}, "connect_timeout"),
    ("negative connect timeout", {"connect_timeout": -1}, "connect_timeout"),
    ("connect timeout past a day", {"connect_timeout": 1e9}, "connect_timeout"),
    ("word as connect timeout", {"connect_timeout": "soon"}, "connect_timeout"),
    ("newline in nvidia_smi", {"nvidia_smi": "nvidia-smi\nreboot"}, "nvidia_smi"),
    ("NUL in nvidia_smi", {"nvidia_smi": "nvidia-smi\x00"}, "nvidia_smi"),
    ("newline in mount_root", {"mount_root": "/lambda/nfs\n/etc"}, "mount_root"),
    ("word as require_gpu", {"require_gpu": "perhaps"}, "require_gpu"),
    ("word as expected_gpus", {"expected_gpus": "eight"}, "expected_gpus"),
    ("string as file_system_mounts", {"file_system_mounts": "/data"}, "file_system_mounts"),
    ("unknown option", {"colour": "blue"}, "colour"),
    ("NaN progress seconds", {"progress_seconds": "nan"}, "progress_seconds"),
    ("negative progress seconds", {"progress_seconds": -30}, "progress_seconds"),
    ("a thousand and one samples", {"utilization_samples": 1001}, "utilization_samples"),
    ("negative sample interval", {"utilization_interval": -1, "utilization_samples": 3}, "utilization_interval"),
]


def test_gpu_node_info_refuses_bad_input_before_reading_the_node(ansible, tmp_path):
    marker = tmp_path / "nvidia-smi-ran"
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ntouch {marker}\n")
    smi.chmod(0o755)
    tasks = [
        {
            "name": title,
            "lambdalabs.cloud.gpu_node_info": {"nvidia_smi": str(smi)} | args,
            "ignore_errors": True,
        }
        for title, args, _param in NODE_READ
    ]
    # An option that renders to null takes its default.
    tasks.append({"name": "nulls", "lambdalabs.cloud.gpu_node_info": {"nvidia_smi": None, "mount_root": None}})
    run = ansible.playbook(tasks)
    nulls = run.task("nulls")
    assert nulls["_status"] == "ok" and "nvidia-smi was not found" in nulls["msg"], nulls
    for title, _args, param in NODE_READ:
        result = run.task(title)
        assert result["_status"] == "failed", (title, result)
        assert_one_line_naming(result["msg"], param, title)
    assert not marker.exists()
