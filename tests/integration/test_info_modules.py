"""The info modules against the simulator. Their filters run as forked module runs (``Ansible.module()``: the same
module code and HTTP, without an ansible-playbook process around a dozen tasks); what ansible-playbook adds (check
mode, verbose output, module_defaults, errors) runs through real ansible-playbook runs."""

from __future__ import annotations

import socket

from tests.integration.support import PUBLIC_KEY, task


def run_each(ansible, tasks: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    """Run each module (title -> (module, args)) in order; every one must succeed."""
    results = {}
    for title, (module, args) in tasks.items():
        result = ansible.module(module, args)
        assert result["_rc"] == 0 and not result.get("failed"), (title, result)
        results[title] = result
    return results


def seed_account(simulator):
    simulator.api("POST", "/ssh-keys", {"name": "deploy", "public_key": PUBLIC_KEY})
    simulator.api("POST", "/ssh-keys", {"name": "other", "public_key": PUBLIC_KEY.replace("deploy", "other")})
    simulator.api("POST", "/filesystems", {"name": "datasets", "region": "us-west-1"})
    simulator.api("POST", "/filesystems", {"name": "scratch", "region": "us-east-1"})
    simulator.seed(
        instances=[
            {"name": "a10-1", "status": "active", "region": "us-east-1", "instance_type": "gpu_1x_a10"},
            {"name": "a10-2", "status": "booting", "region": "us-west-1", "instance_type": "gpu_1x_a10"},
            {"name": "h100", "status": "active", "region": "us-south-1", "instance_type": "gpu_8x_h100_sxm5"},
        ]
    )
    simulator.clear_requests()


def test_instance_type_info_filters_and_sorting(ansible, simulator):
    types = "lambda_instance_type_info"
    ran = run_each(
        ansible,
        {
            "all": (types, {}),
            "by name": (types, {"name": "gpu_1x_a10"}),
            "by region": (types, {"region": "us-south-1"}),
            "available": (types, {"available": True}),
            "min gpus": (types, {"min_gpus": 8}),
            "max price": (types, {"max_price_cents_per_hour": 100}),
            "gpu": (types, {"gpu": "H100"}),
            "combined": (types, {"gpu": "a100", "available": True, "min_gpus": 1}),
        },
    )
    everything = ran["all"]["instance_types"]
    prices = [t["price_cents_per_hour"] for t in everything]
    assert prices == sorted(prices) and len(everything) >= 10
    for entry in everything:
        assert set(entry) >= {"name", "description", "gpu_description", "price_cents_per_hour", "specs"}
        assert "regions_with_capacity_available" in entry
    assert [t["name"] for t in ran["by name"]["instance_types"]] == ["gpu_1x_a10"]
    south = ran["by region"]["instance_types"]
    assert "gpu_8x_h100_sxm5" in [t["name"] for t in south]
    for entry in south:
        assert "us-south-1" in [r["name"] for r in entry["regions_with_capacity_available"]]
    available = [t["name"] for t in ran["available"]["instance_types"]]
    assert "gpu_1x_a10" in available and "gpu_8x_a100_80gb_sxm4" not in available
    eight = ran["min gpus"]["instance_types"]
    assert eight and all(t["specs"]["gpus"] >= 8 for t in eight)
    cheap = ran["max price"]["instance_types"]
    assert cheap and all(t["price_cents_per_hour"] <= 100 for t in cheap)
    h100 = ran["gpu"]["instance_types"]
    assert h100 and all("h100" in t["gpu_description"].lower() for t in h100)
    combined = ran["combined"]["instance_types"]
    assert combined and all(
        "a100" in t["gpu_description"].lower() and t["regions_with_capacity_available"] for t in combined
    )
    # Each run made exactly one request.
    requests = simulator.requests()
    assert len(requests) == 8 and {r["path"] for r in requests} == {"/api/v1/instance-types"}


def test_resource_info_modules_make_one_request_each(ansible, simulator):
    seed_account(simulator)
    ran = run_each(
        ansible,
        {
            "instances": ("lambda_instance_info", {}),
            "instances by name": ("lambda_instance_info", {"name": "a10-1"}),
            "instances by region": ("lambda_instance_info", {"region": "us-west-1"}),
            "instances by type": ("lambda_instance_info", {"instance_type": "gpu_1x_a10"}),
            "instances by status": ("lambda_instance_info", {"status": ["active"]}),
            "images": ("lambda_image_info", {}),
            "images filtered": ("lambda_image_info", {"region": "us-east-3", "architecture": "arm64"}),
            "images by family": ("lambda_image_info", {"family": "ubuntu-22-04"}),
            "file systems": ("lambda_file_system_info", {}),
            "file systems by name": ("lambda_file_system_info", {"name": "datasets"}),
            "file systems by region": ("lambda_file_system_info", {"region": "us-east-1"}),
            "keys": ("lambda_ssh_key_info", {}),
            "keys by name": ("lambda_ssh_key_info", {"name": "deploy"}),
        },
    )
    assert len(ran["instances"]["instances"]) == 3
    assert [i["name"] for i in ran["instances by name"]["instances"]] == ["a10-1"]
    assert [i["name"] for i in ran["instances by region"]["instances"]] == ["a10-2"]
    assert sorted(i["name"] for i in ran["instances by type"]["instances"]) == ["a10-1", "a10-2"]
    assert sorted(i["name"] for i in ran["instances by status"]["instances"]) == ["a10-1", "h100"]
    images = ran["images"]["images"]
    assert images and {"id", "name", "family", "architecture", "region", "version"} <= set(images[0])
    filtered = ran["images filtered"]["images"]
    assert filtered and all(i["architecture"] == "arm64" and i["region"]["name"] == "us-east-3" for i in filtered)
    family = ran["images by family"]["images"]
    assert family and all(i["family"] == "ubuntu-22-04" for i in family)
    assert sorted(f["name"] for f in ran["file systems"]["file_systems"]) == ["datasets", "scratch"]
    assert [f["name"] for f in ran["file systems by name"]["file_systems"]] == ["datasets"]
    assert [f["name"] for f in ran["file systems by region"]["file_systems"]] == ["scratch"]
    keys = ran["keys"]["ssh_keys"]
    assert sorted(k["name"] for k in keys) == ["deploy", "other"]
    assert all(set(k) == {"id", "name", "public_key"} for k in keys)
    assert [k["name"] for k in ran["keys by name"]["ssh_keys"]] == ["deploy"]
    # 13 module runs, 13 GET requests, nothing else.
    requests = simulator.requests()
    assert len(requests) == 13 and {r["method"] for r in requests} == {"GET"}


def test_instance_info_by_id_reads_one_instance(ansible, simulator):
    seed_account(simulator)
    instance_id = simulator.state()["instances"][0]["id"]
    run = ansible.playbook(
        [task("by id", "lambda_instance_info", id=instance_id), task("unknown id", "lambda_instance_info", id="0" * 32)]
    )
    run.assert_ok()
    assert [i["id"] for i in run.task("by id")["instances"]] == [instance_id]
    assert run.task("unknown id")["instances"] == []
    assert [r["path"] for r in simulator.requests()] == [
        f"/api/v1/instances/{instance_id}",
        f"/api/v1/instances/{'0' * 32}",
    ]


def test_check_mode_gives_the_same_answers(ansible, simulator):
    seed_account(simulator)
    run = ansible.playbook([task("keys", "lambda_ssh_key_info"), task("fs", "lambda_file_system_info")], check=True)
    run.assert_ok()
    assert len(run.task("keys")["ssh_keys"]) == 2 and len(run.task("fs")["file_systems"]) == 2
    assert run.task("keys")["changed"] is False


def test_bad_input_fails_with_one_clear_message(ansible, simulator):
    run = ansible.playbook(
        [
            task("malformed region", "lambda_instance_type_info", region="mars-1"),
            task("newline in region", "lambda_instance_info", region="us-east-1\n"),
            task("path in id", "lambda_instance_info", id="../ssh-keys"),
            task("unknown type", "lambda_instance_type_info", name="gpu_99x_z9000"),
            task("unknown family", "lambda_image_info", family="windows-95"),
            task("bad architecture", "lambda_image_info", architecture="sparc"),
            task("bad status", "lambda_instance_info", status=["sleeping"]),
            task("wrong type", "lambda_instance_type_info", min_gpus="eight"),
            task("unknown option", "lambda_ssh_key_info", colour="blue"),
        ]
    )
    region = run.task("malformed region")
    assert region["_status"] == "failed"
    assert region["msg"].startswith("Invalid value for parameter region: 'mars-1' is not valid: a region code")
    assert "parameter region: must not contain control characters" in run.task("newline in region")["msg"]
    assert "parameter id: '../ssh-keys' is not valid" in run.task("path in id")["msg"]
    assert "parameter name: unknown instance type 'gpu_99x_z9000'" in run.task("unknown type")["msg"]
    assert "parameter family: unknown image family 'windows-95'" in run.task("unknown family")["msg"]
    assert "architecture" in run.task("bad architecture")["msg"] and "sparc" in run.task("bad architecture")["msg"]
    assert "sleeping" in run.task("bad status")["msg"]
    assert "min_gpus" in run.task("wrong type")["msg"]
    assert "colour" in run.task("unknown option")["msg"]
    assert len(run.results) == 9
    for entry in run.results:
        run.failure(entry["task"])


def test_wrong_key_and_unreachable_url(ansible, simulator):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "s3cr3t-key-that-must-not-leak"
    run = ansible.playbook(
        [
            task("wrong key", "lambda_instance_info", api_key=secret),
            task(
                "unreachable",
                "lambda_instance_info",
                api_key=secret,
                api_url=f"http://127.0.0.1:{port}/api/v1",
                request_timeout=1,
            ),
        ],
        env={"LAMBDA_API_KEY": "", "LAMBDA_API_URL": simulator.url},
        verbosity=4,
    )
    wrong = run.failure("wrong key")
    assert wrong["msg"].startswith("Lambda Cloud API error 401 global/invalid-api-key: ")
    assert wrong["error"]["code"] == "global/invalid-api-key"
    unreachable = run.failure("unreachable")
    assert unreachable["msg"].startswith(f"Cannot connect to the Lambda Cloud API at http://127.0.0.1:{port}/api/v1")
    assert secret not in run.output
    assert secret not in str(run.results)


def test_missing_key_names_option_and_variable(ansible, simulator):
    run = ansible.playbook([task("no key", "lambda_instance_info")], env={"LAMBDA_API_KEY": ""})
    run.failure("no key", "api_key", "LAMBDA_API_KEY")
    assert simulator.requests() == []


def test_key_never_in_verbose_output(ansible, simulator):
    seed_account(simulator)
    run = ansible.playbook([task("instances", "lambda_instance_info")], verbosity=4)
    run.assert_ok()
    assert simulator.api_key not in run.output


def test_module_defaults_group_sets_the_key_once(ansible, simulator):
    plays = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "module_defaults": {
                "group/lambdalabs.cloud.lambda": {"api_key": simulator.api_key, "api_url": simulator.url}
            },
            "tasks": [
                task("keys", "lambda_ssh_key_info"),
                task("types", "lambda_instance_type_info", name="gpu_1x_a10"),
            ],
        }
    ]
    run = ansible.playbook(plays=plays, env={"LAMBDA_API_KEY": "", "LAMBDA_API_URL": "http://127.0.0.1:9/api/v1"})
    run.assert_ok()
    assert run.task("types")["instance_types"][0]["name"] == "gpu_1x_a10"
