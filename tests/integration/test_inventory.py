# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lambdalabs.cloud.lambda_cloud inventory plugin, through real ansible-inventory and ansible-playbook runs.

Several checks share one run where they can: one ansible-inventory process may
read several inventory files, each labelling its hosts with a group
(``groups: {label: "true"}``), so that the membership of that group shows what
each file selected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.integration.support import free_port, plain, refused_sources

SIM_KEY = "sim-api-key"
ID = {name: f"{index:02x}" * 16 for index, name in enumerate(["train1", "train2", "infer", "anon", "boot", "gone"], 10)}
IP = {"train1": "127.18.100.11", "train2": "127.18.100.12", "infer": "127.18.100.13", "anon": "127.18.100.14"}

FLEET = [
    {
        "id": ID["train1"],
        "name": "train-1",
        "status": "active",
        "region": "us-east-1",
        "instance_type": "gpu_8x_h100_sxm5",
        "ip": IP["train1"],
        "private_ip": "127.10.100.11",
        "hostname": "h-train-1",
        "ssh_key_names": ["deploy"],
        "file_system_names": ["datasets"],
        "file_system_mounts": [{"mount_point": "/lambda/nfs/datasets", "file_system_id": "f" * 32}],
        "tags": [{"key": "team", "value": "research"}, {"key": "role", "value": "trainer"}],
        "firewall_rulesets": [{"id": "r" * 32}],
    },
    {
        "id": ID["train2"],
        "name": "train-2",
        "status": "active",
        "region": "us-east-1",
        "instance_type": "gpu_8x_h100_sxm5",
        "ip": IP["train2"],
        "private_ip": "127.10.100.12",
        "hostname": "h-train-2",
        "tags": [
            {"key": "team", "value": "research"},
            {"key": "role", "value": "trainer"},
            {"key": "drain", "value": "true"},
        ],
    },
    {
        "id": ID["infer"],
        "name": "infer-1",
        "status": "active",
        "region": "us-west-1",
        "instance_type": "gpu_1x_a10",
        "ip": IP["infer"],
        "private_ip": "127.10.100.13",
        "hostname": "h-infer-1",
        "tags": [{"key": "team", "value": "serving"}],
    },
    {
        "id": ID["anon"],
        "status": "active",
        "region": "europe-central-1",
        "instance_type": "gpu_1x_gh200",
        "ip": IP["anon"],
        "private_ip": "127.10.100.14",
        "hostname": "h-anon",
    },
    {"id": ID["boot"], "name": "boot-1", "status": "booting", "region": "us-west-2", "instance_type": "gpu_8x_a100"},
    {"id": ID["gone"], "name": "gone-1", "status": "terminated", "region": "us-west-1", "instance_type": "gpu_1x_a10"},
]
ACTIVE = {"train-1", "train-2", "infer-1", ID["anon"]}


class Unwrapped(str):
    """Ansible's output, searched as if its warnings were not wrapped (before 2.19 they are, at 80 columns)."""

    def __contains__(self, text: object) -> bool:
        return "".join(str(text).split()) in "".join(self.split())


class Inventory:
    """Writes inventory files into tmp_path and runs ansible-inventory on them."""

    def __init__(self, ansible, tmp_path: Path) -> None:
        self.ansible = ansible
        self.tmp_path = tmp_path

    def write(self, name: str, config: dict[str, Any] | str) -> Path:
        path = self.tmp_path / f"{name}.lambda_cloud.yml"
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        path.write_text("plugin: lambdalabs.cloud.lambda_cloud\n" + text)
        return path

    def run(self, *paths: Path, args: list[str] | None = None, env: dict[str, str] | None = None, graph=False):
        argv = ["ansible-inventory"]
        for path in paths:
            argv += ["-i", str(path)]
        argv += ["--graph"] if graph else ["--list"]
        env = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", **(env or {})}
        return self.ansible.command(argv + (args or []), env=env)

    def list(self, *paths: Path, **kwargs: Any) -> dict[str, Any]:
        result = self.run(*paths, **kwargs)
        assert result.rc == 0, result.output
        return plain(json.loads(result.stdout))

    def verbose(self, *paths: Path, args: list[str] | None = None, **kwargs: Any):
        """A -vvvv run: (Run, listing); the listing goes to a file as the log fills stdout."""
        output = self.tmp_path / "verbose-listing.json"
        result = self.run(*paths, args=[*(args or []), "-vvvv", "--output", str(output)], **kwargs)
        assert result.rc == 0, result.output
        return result, plain(json.loads(output.read_text()))

    def fail(self, path: Path, **kwargs: Any) -> str:
        result = self.run(path, **kwargs)
        assert result.rc != 0, result.output
        assert "Traceback" not in result.output, result.output
        return Unwrapped(result.output)


def hosts_of(listing: dict[str, Any], group: str) -> set[str]:
    return set(listing.get(group, {}).get("hosts", []))


def instances_get(simulator) -> list[dict[str, Any]]:
    return simulator.requests("GET", "/instances")


@pytest.fixture
def inventory(ansible, tmp_path, simulator) -> Inventory:
    simulator.seed(instances=FLEET)
    simulator.clear_requests()
    return Inventory(ansible, tmp_path)


def test_default_groups_and_hostvars(inventory, simulator):
    path = inventory.write("default", "")
    listing = inventory.list(path)
    assert len(simulator.requests()) == 1 and len(instances_get(simulator)) == 1

    hostvars = listing["_meta"]["hostvars"]
    assert set(hostvars) == ACTIVE  # active only; the nameless instance is named by its id
    assert hosts_of(listing, "lambda") == ACTIVE
    assert hosts_of(listing, "lambda_region_us_east_1") == {"train-1", "train-2"}
    assert hosts_of(listing, "lambda_region_europe_central_1") == {ID["anon"]}
    assert hosts_of(listing, "lambda_type_gpu_8x_h100_sxm5") == {"train-1", "train-2"}
    assert hosts_of(listing, "lambda_type_gpu_1x_a10") == {"infer-1"}
    assert set(listing["all"]["children"]) >= {"lambda", "lambda_region_us_west_1", "lambda_type_gpu_1x_gh200"}
    assert hostvars["train-1"] == {
        "ansible_host": IP["train1"],
        "ansible_user": "ubuntu",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new",
        "lambda_id": ID["train1"],
        "lambda_name": "train-1",
        "lambda_status": "active",
        "lambda_region": "us-east-1",
        "lambda_region_description": "Virginia, USA",
        "lambda_instance_type": "gpu_8x_h100_sxm5",
        "lambda_instance_type_description": "8x H100 (80 GB SXM5)",
        "lambda_gpu_description": "H100 (80 GB SXM5)",
        "lambda_gpu_model": "H100",
        "lambda_gpu_memory_gib": 80,
        "lambda_price_cents_per_hour": 2392,
        "lambda_gpus": 8,
        "lambda_vcpus": 208,
        "lambda_memory_gib": 1800,
        "lambda_storage_gib": 22000,
        "lambda_hostname": "h-train-1",
        "lambda_ip": IP["train1"],
        "lambda_private_ip": "127.10.100.11",
        "lambda_ssh_key_names": ["deploy"],
        "lambda_file_system_names": ["datasets"],
        "lambda_file_system_mounts": [{"mount_point": "/lambda/nfs/datasets", "file_system_id": "f" * 32}],
        "lambda_firewall_ruleset_ids": ["r" * 32],
        "lambda_tags": {"team": "research", "role": "trainer"},
    }
    assert hostvars[ID["anon"]]["lambda_name"] is None
    assert hostvars[ID["anon"]]["lambda_tags"] == {}
    # The Jupyter credentials stay out unless asked for.
    tokens = [item["jupyter_token"] for item in simulator.state()["instances"] if "jupyter_token" in item]
    assert tokens
    run = inventory.run(path)
    assert "jupyter" not in run.stdout and not any(token in run.output for token in tokens)

    graph = inventory.run(path, graph=True)
    assert graph.rc == 0, graph.output
    assert "@lambda_type_gpu_8x_h100_sxm5:" in graph.stdout and "|--train-2" in graph.stdout
    assert len(instances_get(simulator)) == 3  # one request per uncached run


def test_filters(inventory, simulator):
    cases = {
        "f_statuses": ({"statuses": ["active", "booting"]}, ACTIVE | {"boot-1"}),
        "f_all_statuses": ({"statuses": []}, ACTIVE | {"boot-1", "gone-1"}),
        "f_regions": ({"regions": ["us-east-1", "us-west-2"]}, {"train-1", "train-2"}),
        "f_types": ({"instance_types": ["gpu_1x_a10", "gpu_1x_gh200"]}, {"infer-1", ID["anon"]}),
        "f_names": ({"names": ["train-*", "infer-?"]}, {"train-1", "train-2", "infer-1"}),
        "f_tags": ({"tags": {"team": "research", "drain": True}}, {"train-2"}),
        "f_tag_key": ({"tags": {"role": None}}, {"train-1", "train-2"}),
        "f_include": (
            {"include_filters": ["lambda_gpus >= 8", "lambda_region == 'us-west-1'"]},
            {"train-1", "train-2", "infer-1"},
        ),
        "f_exclude": (
            {"exclude_filters": ["lambda_tags.get('drain') == 'true'", "lambda_name is none"]},
            {"train-1", "infer-1"},
        ),
        "f_both": (
            {
                "statuses": ["active", "booting"],
                "include_filters": ["lambda_gpus == 8"],
                "exclude_filters": ["'drain' in lambda_tags"],
            },
            {"train-1", "boot-1"},
        ),
    }
    paths = [
        inventory.write(label, {"default_groups": False, **config, "groups": {label: "true"}})
        for label, (config, _expected) in cases.items()
    ]
    listing = inventory.list(*paths)
    for label, (_config, expected) in cases.items():
        assert hosts_of(listing, label) == expected, label
    assert "lambda" not in listing and not any(
        group.startswith("lambda_") for group in listing
    )  # default_groups: false
    assert len(instances_get(simulator)) == len(cases)


def test_hostnames(inventory):
    cases = {
        "h_hostname": ({"hostnames": ["hostname"]}, {"h-train-1", "h-train-2", "h-infer-1", "h-anon"}),
        "h_ip": ({"hostnames": ["ip", "id"], "statuses": ["active", "booting"]}, set(IP.values()) | {ID["boot"]}),
        "h_private": ({"hostnames": ["private_ip"], "regions": ["us-west-1"]}, {"127.10.100.13"}),
        "h_id": ({"hostnames": ["id"], "regions": ["us-west-1"]}, {ID["infer"]}),
        "h_template": (
            {
                "hostnames": [
                    "{{ (lambda_name ~ '.' ~ lambda_region) if lambda_name else '' }}",
                    "anon-{{ lambda_id[:4] }}",
                ]
            },
            {"train-1.us-east-1", "train-2.us-east-1", "infer-1.us-west-1", "anon-" + ID["anon"][:4]},
        ),
        # train-1 and train-2 share a role: they are both kept, under names with their short ids.
        # infer-1 has no role: the template fails and the next preference is used.
        "h_shared": (
            {"hostnames": ["{{ lambda_tags.role }}", "name", "id"], "names": ["train-*", "infer-*"]},
            {"trainer_" + ID["train1"][:8], "trainer_" + ID["train2"][:8], "infer-1"},
        ),
    }
    paths = [
        inventory.write(label, {"default_groups": False, **config, "groups": {label: "true"}})
        for label, (config, _expected) in cases.items()
    ]
    run = inventory.run(*paths)
    assert run.rc == 0, run.output
    listing = plain(json.loads(run.stdout))
    for label, (_config, expected) in cases.items():
        assert hosts_of(listing, label) == expected, label
    assert "2 instances would be named 'trainer'" in run.stderr


def test_duplicate_names_are_kept_apart(inventory, simulator):
    # Two ids share their first 8 characters, so one of them falls back to the full id.
    ids = ["abcdef01" + "0" * 24, "abcdef01" + "1" * 24, "12345678" + "2" * 24]
    simulator.seed(instances=[{"id": instance_id, "name": "worker", "status": "active"} for instance_id in ids])
    listing = inventory.list(inventory.write("dups", ""))
    workers = {host for host in listing["_meta"]["hostvars"] if host.startswith("worker")}
    assert workers == {"worker_abcdef01", "worker_" + ids[1], "worker_12345678"}
    assert {listing["_meta"]["hostvars"][host]["lambda_id"] for host in workers} == set(ids)
    assert len(listing["_meta"]["hostvars"]) == len(ACTIVE) + 3  # nothing merged or dropped


def test_connect_with_and_prefix(inventory):
    private = inventory.write(
        "private", {"connect_with": "private_ip", "hostnames": ["p-{{ lambda_id }}"], "statuses": ["active", "booting"]}
    )
    by_name = inventory.write(
        "byname",
        {
            "connect_with": "hostname",
            "hostvars_prefix": "lc_",
            "hostnames": ["n-{{ lc_id }}"],
            "ssh_common_args": "-o ProxyJump=bastion",
        },
    )
    hostvars = inventory.list(private, by_name)["_meta"]["hostvars"]
    assert hostvars["n-" + ID["infer"]]["ansible_ssh_common_args"] == "-o ProxyJump=bastion"
    assert hostvars["p-" + ID["train1"]]["ansible_host"] == "127.10.100.11"
    assert "ansible_host" not in hostvars["p-" + ID["boot"]]  # booting: no address yet
    assert hostvars["p-" + ID["train1"]]["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=accept-new"
    named = hostvars["n-" + ID["infer"]]
    assert named["ansible_host"] == "h-infer-1"
    assert named["lc_gpus"] == 1 and named["lc_tags"] == {"team": "serving"}
    assert not any(key.startswith("lambda_") for key in named)


def test_compose_keyed_groups_and_strict(inventory, simulator):
    config = {
        "include_jupyter": True,
        "use_extra_vars": True,
        "compose": {
            "ansible_user": "'root' if lambda_instance_type.startswith('gpu_8x') else ansible_user",
            "gpu_memory_hint": "lambda_gpus * 80",
            "site": "site_name",
            "broken": "lambda_no_such_var + 1",
        },
        "groups": {"big": "lambda_gpus >= 8", "serving": "lambda_tags.get('team') == 'serving'"},
        "keyed_groups": [
            {"key": "lambda_gpus", "prefix": "gpus"},
            {"key": "lambda_tags", "prefix": "tag"},
            {"key": "lambda_region", "prefix": ""},
        ],
        "leading_separator": False,
    }
    listing = inventory.list(inventory.write("constructed", config), args=["-e", "site_name=lab"])
    hostvars = listing["_meta"]["hostvars"]
    assert hostvars["train-1"]["ansible_user"] == "root" and hostvars["infer-1"]["ansible_user"] == "ubuntu"
    assert hostvars["train-1"]["gpu_memory_hint"] == 640 and hostvars["infer-1"]["site"] == "lab"
    assert "broken" not in hostvars["train-1"]  # not strict: a failing entry is skipped
    assert hosts_of(listing, "big") == {"train-1", "train-2"} and hosts_of(listing, "serving") == {"infer-1"}
    assert hosts_of(listing, "gpus_8") == {"train-1", "train-2"} and hosts_of(listing, "gpus_1") == {
        "infer-1",
        ID["anon"],
    }
    assert hosts_of(listing, "tag_team_research") == {"train-1", "train-2"} and hosts_of(listing, "tag_drain_true") == {
        "train-2"
    }
    assert hosts_of(listing, "us_west_1") == {"infer-1"}
    tokens = {item["id"]: item["jupyter_token"] for item in simulator.state()["instances"] if "jupyter_token" in item}
    assert hostvars["train-1"]["lambda_jupyter_token"] == tokens[ID["train1"]]
    assert hostvars["train-1"]["lambda_jupyter_url"].endswith(tokens[ID["train1"]])

    strict = inventory.write("strict", {**config, "strict": True})
    output = inventory.fail(strict, args=["-e", "site_name=lab"])
    assert "broken" in output and "lambda_no_such_var" in output
    bad_filter = inventory.write("strictfilter", {"strict": True, "include_filters": ["lambda_nope > 1"]})
    output = inventory.fail(bad_filter)
    assert "include_filters" in output and "lambda_nope" in output


def test_cache_and_secrets(inventory, simulator, tmp_path):
    cache_dir = tmp_path / "cache"
    config = {
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache_dir),
        "cache_timeout": 600,
    }
    path = inventory.write("cached", config)
    first, first_listing = inventory.verbose(path)
    assert len(simulator.requests()) == 1
    simulator.clear_requests()

    second = inventory.list(path)
    assert simulator.requests() == []  # a cache hit makes no request
    assert second == first_listing and set(second["_meta"]["hostvars"]) == ACTIVE

    files = list(cache_dir.iterdir())
    assert files
    assert all(cache_file.stat().st_mode & 0o777 == 0o600 for cache_file in files), files
    tokens = [item["jupyter_token"] for item in simulator.state()["instances"] if "jupyter_token" in item]
    for cache_file in files:
        text = cache_file.read_text()
        assert ID["train1"] in text
        assert SIM_KEY not in text and "jupyter_token" not in text
        assert not any(token in text for token in tokens)
    assert SIM_KEY not in first.output and "Authorization" not in first.output

    # ansible-playbook --flush-cache refreshes it on every supported ansible-core (ansible-inventory has the option
    # from 2.19 on).
    flushed = inventory.ansible.playbook(
        plays=[{"hosts": "all", "gather_facts": False, "tasks": []}], inventory=str(path), args=["--flush-cache"]
    )
    assert flushed.rc == 0, flushed.output
    assert len(instances_get(simulator)) == 1

    # The cache holds no Jupyter fields, so asking for them refreshes it; turning them off again uses the cache.
    simulator.clear_requests()
    path = inventory.write("cached", {**config, "include_jupyter": True})
    with_jupyter = inventory.list(path)["_meta"]["hostvars"]
    assert len(simulator.requests()) == 1
    assert with_jupyter["train-1"]["lambda_jupyter_token"] in tokens
    path = inventory.write("cached", {**config, "include_jupyter": False, "names": ["train-*"]})
    without = inventory.run(path)
    assert without.rc == 0 and len(simulator.requests()) == 1  # cache hit: filters apply after the cache
    assert set(plain(json.loads(without.stdout))["_meta"]["hostvars"]) == {"train-1", "train-2"}
    assert "jupyter" not in without.stdout
    # The cache that held Jupyter tokens was readable by its owner only, and still is.
    assert all(cache_file.stat().st_mode & 0o777 == 0o600 for cache_file in cache_dir.iterdir())


def test_reserved_and_pattern_names_never_become_hosts_as_they_are(inventory, simulator):
    simulator.reset()
    seeded = simulator.seed(
        instances=[
            {"name": "all", "region": "us-east-1"},
            {"name": "localhost", "region": "us-east-1"},
            {"name": "web*,db", "region": "us-east-1"},
            {"name": "regionless"},
            {"name": "plain", "region": "us-west-1"},
        ]
    )
    ids = seeded["instance_ids"]
    result = inventory.run(inventory.write("reserved", ""))
    assert result.rc == 0, result.output
    listing = plain(json.loads(result.stdout))
    hosts = set(listing["_meta"]["hostvars"])
    assert hosts == {f"all_{ids[0][:8]}", f"localhost_{ids[1][:8]}", "web__db", "regionless", "plain"}
    assert "is a name Ansible reserves" in result.stderr and "reads as a host pattern" in result.stderr
    # Every instance is a host of `all`; none of them took the place of the group.
    assert hosts_of(listing, "lambda") == hosts
    assert not any(group.endswith("None") for group in listing), sorted(listing)
    run = inventory.ansible.playbook(
        plays=[
            {"hosts": "all", "gather_facts": False, "tasks": [{"name": "n", "ansible.builtin.debug": {"msg": "x"}}]}
        ],
        inventory=str(inventory.write("reserved", "")),
        args=["--list-hosts"],
    )
    assert run.rc == 0 and "hosts (5)" in run.stdout, run.stdout


def test_api_key_vaulted_or_templated(inventory, tmp_path):
    password = tmp_path / "vault-password"
    password.write_text("correct horse\n")
    vault = VaultLib([("default", VaultSecret(b"correct horse"))])
    encrypted = vault.encrypt(SIM_KEY).decode()
    inline = inventory.write(
        "inline",
        "api_key: !vault |\n"
        + "".join(f"  {line}\n" for line in encrypted.splitlines())
        + "groups: {k_inline: 'true'}\n",
    )
    (tmp_path / "secrets.yml").write_text(vault.encrypt(yaml.safe_dump({"vault_lambda_key": SIM_KEY})).decode())
    templated = inventory.write("templated", {"api_key": "{{ vault_lambda_key }}", "groups": {"k_templated": "true"}})
    lookup = inventory.write(
        "lookup", {"api_key": "{{ lookup('ansible.builtin.env', 'MY_LAMBDA_KEY') }}", "groups": {"k_lookup": "true"}}
    )
    run, listing = inventory.verbose(
        inline,
        templated,
        lookup,
        args=["--vault-password-file", str(password), "-e", f"@{tmp_path / 'secrets.yml'}"],
        # The environment's key is wrong: only the keys from the files can work.
        env={"LAMBDA_API_KEY": "wrong-key-from-env", "MY_LAMBDA_KEY": SIM_KEY},
    )
    for group in ("k_inline", "k_templated", "k_lookup"):
        assert hosts_of(listing, group) == ACTIVE, group
    assert SIM_KEY not in run.output


def test_errors_are_one_clear_message(inventory, simulator):
    secret = "wrong-secret-key-1234"
    output = inventory.fail(inventory.write("default", ""), env={"LAMBDA_API_KEY": secret}, args=["-vvvv"])
    assert "401" in output and "invalid-api-key" in output and secret not in output

    output = inventory.fail(inventory.write("nokey", ""), env={"LAMBDA_API_KEY": ""})
    assert "No Lambda Cloud API key" in output

    output = inventory.fail(inventory.write("undefined", {"api_key": "{{ not_defined_anywhere }}"}))
    assert "'api_key'" in output and "not_defined_anywhere" in output

    malformed = {
        "connect_with": ({"connect_with": "public"}, "connect_with"),
        "hostnames": ({"hostnames": ["name", "address"]}, "'address' is none of name"),
        "statuses": ({"statuses": ["running"]}, "unknown status running"),
        "api_url": ({"api_url": "cloud.lambda.ai/api/v1"}, "api_url must be an http:// or https:// URL"),
        "tags": ({"tags": ["team"]}, "tags"),
        "timeout": ({"request_timeout": 0}, "option 'request_timeout': must be greater than 0"),
    }
    # All in one ansible-inventory run, which goes on past a refused source.
    paths = [
        str(inventory.write(f"bad_{number}", config)) for number, (config, _message) in enumerate(malformed.values())
    ]
    result = inventory.run(*paths, env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "false"})
    assert "Traceback" not in result.output and SIM_KEY not in result.output, result.output
    for (name, (_config, message)), said in zip(malformed.items(), refused_sources(result.output, paths).values()):
        assert "".join(message.split()) in said, (name, said)
    assert simulator.requests() == [instances_get(simulator)[0]]  # only the wrong-key run reached the API

    # Nothing listens there: the client retries with backoff, then gives up with one message.
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    output = inventory.fail(inventory.write("unreachable", {"api_url": url}))
    assert "Cannot connect to the Lambda Cloud API" in output and SIM_KEY not in output


def test_playbook_uses_the_inventory(inventory, ansible):
    path = inventory.write("play", {"keyed_groups": [{"key": "lambda_gpus", "prefix": "gpus"}]})
    plays = [
        {
            "name": "GPU nodes",
            "hosts": "lambda_type_gpu_8x_h100_sxm5",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "node facts",
                    "ansible.builtin.assert": {
                        "that": [
                            "lambda_gpus == 8",
                            "ansible_host == lambda_ip",
                            "ansible_user == 'ubuntu'",
                            "inventory_hostname in groups['gpus_8']",
                            "groups['lambda'] | length == 4",
                        ]
                    },
                },
                {"name": "summary", "ansible.builtin.debug": {"msg": "{{ inventory_hostname }} {{ lambda_region }}"}},
            ],
        }
    ]
    run = ansible.playbook(plays=plays, inventory=str(path))
    assert run.rc == 0, run.output
    messages = sorted(result["msg"] for result in run.tasks("summary"))
    assert messages == ["train-1 us-east-1", "train-2 us-east-1"]


def test_gpu_model_groups_are_clean(inventory):
    path = inventory.write("gpus", {"keyed_groups": [{"key": "lambda_gpu_model", "prefix": "gpu"}]})
    listing = inventory.list(path)
    assert hosts_of(listing, "gpu_H100") == {"train-1", "train-2"}
    assert hosts_of(listing, "gpu_A10") == {"infer-1"} and hosts_of(listing, "gpu_GH200") == {ID["anon"]}
    memory = {host: hv["lambda_gpu_memory_gib"] for host, hv in listing["_meta"]["hostvars"].items()}
    assert memory == {"train-1": 80, "train-2": 80, "infer-1": 24, ID["anon"]: 96}


def test_export_shows_plain_values_and_templates_in_instance_data_never_run(inventory, simulator, tmp_path):
    marker = tmp_path / "ran"
    hostile = "{{ lookup('pipe', 'id > " + str(marker) + "') }}"
    simulator.reset()
    simulator.seed(
        instances=[
            {"name": "plain-1", "region": "us-east-1", "tags": [{"key": "team", "value": "research"}]},
            {"name": hostile, "region": "us-east-1", "tags": [{"key": "note", "value": "{% raw %}x{% endraw %}"}]},
        ]
    )
    path = inventory.write("export", "hostnames: [name, id]\ncompose:\n  shown: lambda_name\n")
    result = inventory.run(path, args=["--export"])
    assert result.rc == 0, result.output
    listing = json.loads(result.stdout)
    hostvars = listing["_meta"]["hostvars"]
    plain_host = hostvars["plain-1"]
    # AWX reads this output: plain values are plain.
    assert plain_host["lambda_name"] == "plain-1" and plain_host["ansible_host"].startswith("127.18.")
    assert plain_host["lambda_tags"] == {"team": "research"}
    assert "__ansible_unsafe" not in json.dumps(plain_host)
    # The instance whose name is a template keeps it as data, marked unsafe, and nothing ran.
    [other] = [name for name in hostvars if name != "plain-1"]
    assert json.dumps(hostvars[other]["lambda_name"]).count("lookup") == 1
    run = inventory.ansible.playbook(
        plays=[
            {
                "hosts": "all",
                "gather_facts": False,
                "tasks": [{"name": "show", "ansible.builtin.debug": {"msg": "{{ lambda_name }} {{ lambda_tags }}"}}],
            }
        ],
        inventory=str(path),
        args=["-c", "local"],
    )
    assert run.rc == 0, run.output[-2000:]
    assert not marker.exists()
    shown = {e["host"]: e["result"]["msg"] for e in run.results if e["task"] == "show"}
    assert "lookup('pipe'" in shown[other]
