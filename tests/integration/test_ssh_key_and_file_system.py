"""lambda_ssh_key and lambda_file_system through real ansible-playbook runs."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from tests.integration.support import OTHER_KEY, PUBLIC_KEY, task


def ssh_key(title, /, **args):
    return task(title, "lambda_ssh_key", **args)


def file_system(title, /, **args):
    return task(title, "lambda_file_system", **args)


# ------------------------------------------------------------------ lambda_ssh_key
def test_add_is_idempotent_ignoring_the_comment(ansible, simulator):
    run = ansible.playbook(
        [
            ssh_key("add", name="deploy", public_key=PUBLIC_KEY),
            ssh_key("again", name="deploy", public_key=PUBLIC_KEY.replace(" deploy", " another comment")),
            ssh_key("no key given", name="deploy"),
        ]
    )
    add = run.task("add")
    assert add["_status"] == "changed" and add["ssh_key"]["name"] == "deploy" and add["ssh_key"]["id"]
    assert run.task("again")["_status"] == "ok"
    assert run.task("no key given")["_status"] == "ok"
    assert len(simulator.requests("POST", "/ssh-keys")) == 1


def test_different_key_needs_force(ansible, simulator):
    run = ansible.playbook(
        [
            ssh_key("add", name="deploy", public_key=PUBLIC_KEY),
            ssh_key("differs", name="deploy", public_key=OTHER_KEY),
            ssh_key("forced", name="deploy", public_key=OTHER_KEY, force=True),
        ]
    )
    run.failure("differs", "parameter public_key: SSH key 'deploy' exists with a different public key", "force")
    forced = run.task("forced")
    assert forced["_status"] == "changed" and forced["ssh_key"]["public_key"].split()[:2] == OTHER_KEY.split()[:2]
    keys = simulator.state()["ssh_keys"]
    assert [k["public_key"].split()[1] for k in keys] == [OTHER_KEY.split()[1]]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_generated_key_is_written_0600_and_never_shown(ansible, simulator, tmp_path):
    path = tmp_path / "cluster-key"
    run = ansible.playbook(
        [
            ssh_key("generate", name="cluster", private_key_path=str(path)),
            ssh_key("again", name="cluster", private_key_path=str(path)),
        ],
        verbosity=4,
        diff=True,
    )
    generate = run.task("generate")
    assert generate["_status"] == "changed", run.output
    assert generate["private_key_path"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == generate["ssh_key"]["public_key"].split()[:2]
    private = path.read_text()
    body = "".join(private.strip().splitlines()[1:-1])
    assert body[:40] not in run.output and body[:40] not in str(run.results)
    assert "PRIVATE KEY" not in run.output
    assert run.task("again")["_status"] == "ok"


def test_generation_never_overwrites_and_needs_a_path(ansible, simulator, tmp_path):
    path = tmp_path / "taken"
    path.write_text("precious")
    run = ansible.playbook(
        [
            ssh_key("exists", name="cluster", private_key_path=str(path)),
            ssh_key("no path", name="cluster"),
            ssh_key("bad key", name="cluster", public_key="not a key"),
        ]
    )
    assert (
        "parameter private_key_path:" in run.task("exists")["msg"] and "never overwritten" in run.task("exists")["msg"]
    )
    assert path.read_text() == "precious"
    assert "parameter private_key_path: is required to generate a key pair" in run.task("no path")["msg"]
    assert "parameter public_key: is not an OpenSSH public key" in run.task("bad key")["msg"]
    assert simulator.requests("POST") == []


def test_absent_and_check_mode(ansible, simulator):
    assert simulator.api("POST", "/ssh-keys", {"name": "deploy", "public_key": PUBLIC_KEY})[0] == 200
    simulator.clear_requests()
    check = ansible.playbook([ssh_key("remove", name="deploy", state="absent")], check=True)
    assert check.task("remove")["_status"] == "changed"
    assert simulator.requests("DELETE") == []
    run = ansible.playbook(
        [ssh_key("remove", name="deploy", state="absent"), ssh_key("again", name="deploy", state="absent")]
    )
    assert run.task("remove")["_status"] == "changed" and run.task("again")["_status"] == "ok"
    assert simulator.state()["ssh_keys"] == []


# ------------------------------------------------------------------ lambda_file_system
def test_file_system_lifecycle(ansible, simulator):
    run = ansible.playbook(
        [
            file_system("create", name="datasets", region="us-west-1"),
            file_system("again", name="datasets", region="us-west-1"),
            file_system("elsewhere", name="datasets", region="us-east-1"),
            file_system("delete", name="datasets", state="absent"),
            file_system("delete again", name="datasets", state="absent"),
        ],
        diff=True,
    )
    create = run.task("create")
    assert create["_status"] == "changed" and create["file_system"]["region"]["name"] == "us-west-1"
    assert create["file_system"]["mount_point"]
    assert run.task("again")["_status"] == "ok"
    elsewhere = run.task("elsewhere")
    assert elsewhere["_status"] == "failed"
    assert "parameter region: file system 'datasets' exists in us-west-1, not us-east-1" in elsewhere["msg"]
    assert run.task("delete")["_status"] == "changed" and run.task("delete")["diff"]["after"] == {}
    assert run.task("delete again")["_status"] == "ok"
    assert simulator.state()["file_systems"] == []


def test_file_system_check_mode_and_bad_input(ansible, simulator):
    run = ansible.playbook(
        [
            file_system("create", name="datasets", region="us-west-1"),
            file_system("bad name", name="1-starts-with-digit", region="us-west-1"),
            file_system("no region", name="datasets2"),
            file_system("malformed region", name="datasets2", region="moon-1"),
            file_system("trailing newline", name="datasets\n", region="us-west-1"),
        ],
        check=True,
    )
    assert run.task("create")["_status"] == "changed"
    assert "parameter name: '1-starts-with-digit' is not valid: a file system name" in run.task("bad name")["msg"]
    assert "parameter name: must not contain control characters" in run.task("trailing newline")["msg"]
    assert "region" in run.task("no region")["msg"]
    assert "parameter region: 'moon-1' is not valid" in run.task("malformed region")["msg"]
    assert simulator.requests("POST") == [] and simulator.state()["file_systems"] == []


def test_file_system_in_use_is_explained(ansible, simulator):
    simulator.api("POST", "/ssh-keys", {"name": "deploy", "public_key": PUBLIC_KEY})
    simulator.api("POST", "/filesystems", {"name": "datasets", "region": "us-west-1"})
    status, data = simulator.api(
        "POST",
        "/instance-operations/launch",
        {
            "region_name": "us-west-1",
            "instance_type_name": "gpu_1x_a10",
            "ssh_key_names": ["deploy"],
            "file_system_names": ["datasets"],
            "name": "reader",
        },
    )
    assert status == 200
    result = ansible.playbook([file_system("delete", name="datasets", state="absent")]).task("delete")
    assert result["_status"] == "failed"
    assert result["error"]["code"] == "filesystems/filesystem-in-use"
    assert "filesystems/filesystem-in-use" in result["msg"]
    assert f"mounted by reader ({data['data']['instance_ids'][0]})" in result["msg"]
    assert "terminate those instances first" in result["msg"]
    assert len(simulator.state()["file_systems"]) == 1


def test_creating_calls_are_not_repeated_and_deletes_are(ansible, simulator):
    simulator.fault(method="POST", path="/api/v1/ssh-keys", status=500, count=1)
    simulator.fault(method="POST", path="/api/v1/filesystems", status=500, count=1)
    run = ansible.playbook(
        [
            ssh_key("add", name="deploy", public_key=PUBLIC_KEY),
            file_system("create", name="datasets", region="us-west-1"),
        ]
    )
    run.failure("add", "Lambda Cloud API error 500")
    run.failure("create", "Lambda Cloud API error 500")
    assert len(simulator.requests("POST", "/ssh-keys")) == 1
    assert len(simulator.requests("POST", "/filesystems")) == 1

    assert simulator.api("POST", "/ssh-keys", {"name": "deploy", "public_key": PUBLIC_KEY})[0] == 200
    assert simulator.api("POST", "/filesystems", {"name": "datasets", "region": "us-west-1"})[0] == 200
    # The answers to these deletes are lost after the work is done: the retry meets "not found".
    simulator.fault(method="DELETE", path="/api/v1/ssh-keys/*", status=502, after_processing=True, count=1)
    simulator.fault(method="DELETE", path="/api/v1/filesystems/*", status=502, after_processing=True, count=1)
    run = ansible.playbook(
        [ssh_key("remove", name="deploy", state="absent"), file_system("delete", name="datasets", state="absent")]
    )
    run.assert_ok()
    assert run.task("remove")["_status"] == "changed" and run.task("delete")["_status"] == "changed"
    assert simulator.state()["ssh_keys"] == [] and simulator.state()["file_systems"] == []


def test_lost_generated_key_is_reported_and_a_rerun_converges(ansible, simulator, tmp_path):
    path = tmp_path / "cluster-key"
    simulator.fault(method="POST", path="/api/v1/ssh-keys", status=500, after_processing=True, count=1)
    first = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(path))])
    first.failure("generate", "may have been created without its private key", "the re-run replaces it")
    assert not path.exists() and (tmp_path / "cluster-key.pending").exists()
    [lost] = simulator.state()["ssh_keys"]
    second = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(path))]).task("generate")
    assert second["_status"] == "changed" and "its private key was lost in an earlier run" in second["msg"], second
    [key] = simulator.state()["ssh_keys"]
    assert key["id"] != lost["id"] and key["name"] == "cluster"
    assert path.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in path.read_text()
    assert not (tmp_path / "cluster-key.pending").exists()
    third = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(path))]).task("generate")
    assert third["_status"] == "ok"


@pytest.mark.parametrize("body", ['{"data": {}}', '{"data": {"id": "k1", "name": "cluster"}}', "<html>OK</html>"])
def test_a_generated_key_answered_with_a_garbled_success_is_recovered_by_the_next_run(
    ansible, simulator, tmp_path, body
):
    path = tmp_path / "cluster_key"
    simulator.fault(method="POST", path="/api/v1/ssh-keys", status=200, body=body, after_processing=True, count=1)
    first = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(path))])
    first.failure("generate", "may have been created without its private key", "the re-run replaces it")
    assert (tmp_path / "cluster_key.pending").exists() and not path.exists()
    second = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(path))]).task("generate")
    assert second["_status"] == "changed" and "its private key was lost" in second["msg"], second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not (tmp_path / "cluster_key.pending").exists()
    assert [key["name"] for key in simulator.state()["ssh_keys"]] == ["cluster"]


def test_neither_the_marker_nor_the_key_file_is_written_through_a_link(ansible, simulator, tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (tmp_path / "cluster_key.pending").symlink_to(target)
    (tmp_path / "other_key").symlink_to(target)
    tries = [
        ssh_key("marker", name="cluster", private_key_path=str(tmp_path / "cluster_key")),
        ssh_key("key file", name="other", private_key_path=str(tmp_path / "other_key")),
    ]
    run = ansible.playbook([dict(one, ignore_errors=True) for one in tries])
    run.failure(
        "marker", "parameter private_key_path: cannot write the marker", "symbolic link, which is never followed"
    )
    run.failure("key file", "parameter private_key_path:", "exists already; it is never overwritten")
    assert target.read_text() == "keep me\n" and simulator.state()["ssh_keys"] == []


def test_a_key_without_the_marker_is_never_replaced(ansible, simulator, tmp_path):
    # Someone else's key of that name: its private key is simply not here, and nothing says it was lost.
    simulator.api("POST", "/ssh-keys", {"name": "cluster"})
    run = ansible.playbook([ssh_key("generate", name="cluster", private_key_path=str(tmp_path / "k"))])
    run.failure("generate", "parameter private_key_path: SSH key 'cluster' exists, but", "state=absent")
    assert len(simulator.state()["ssh_keys"]) == 1 and simulator.requests("DELETE") == []


def test_check_mode_predicts_that_a_file_system_in_use_cannot_be_deleted(ansible, simulator):
    simulator.seed(
        file_systems=[{"name": "shared", "region": "us-east-1"}],
        instances=[{"name": "user-1", "region": "us-east-1", "file_system_names": ["shared"]}],
    )
    checked = ansible.playbook([file_system("delete", name="shared", state="absent")], check=True)
    predicted = checked.failure("delete", "File system shared is mounted by user-1 (", "terminate those instances")
    real = ansible.playbook([file_system("delete", name="shared", state="absent")])
    failed = real.failure("delete", "File system shared is mounted by user-1 (", "filesystems/filesystem-in-use")
    assert predicted["msg"].split("File system shared")[1] == failed["msg"].split("File system shared")[1]
    assert [fs["name"] for fs in simulator.state()["file_systems"]] == ["shared"]
