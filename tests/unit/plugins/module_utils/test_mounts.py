# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a node's file systems should be mounted, its mount table, and what is not mounted."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._mounts import (
    mount_facts,
    mount_plan,
    mount_problem,
    parse_mountinfo,
)

MOUNTINFO = "27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 0:50 / /lambda/nfs/my\\040data rw - nfs srv:/x rw\n"


def test_mounts_reported_must_be_mounted_and_the_rest_at_the_root():
    plan = mount_plan(["datasets", "models"], [{"mount_point": "/data", "file_system_id": "f1"}], "/lambda/nfs")
    assert plan == {
        "reported": ["/data"],
        "defaults": ["/lambda/nfs/datasets", "/lambda/nfs/models"],
        "default_needed": 1,
        "paths": ["/data", "/lambda/nfs/datasets", "/lambda/nfs/models"],
    }
    assert mount_problem(plan, ["/data", "/lambda/nfs/models"]) is None
    problem = mount_problem(plan, [])
    assert "reports file systems at /data, but nothing is mounted there" in problem
    assert "1 of /lambda/nfs/datasets, /lambda/nfs/models should be mounted, but none is" in problem
    assert mount_plan([], None)["paths"] == []


def test_parse_mountinfo_decodes_escaped_paths():
    assert parse_mountinfo(MOUNTINFO) == {"/", "/lambda/nfs/my data"}
    assert parse_mountinfo("") == set() and parse_mountinfo("too short\n") == set()


def test_mount_facts_read_the_table_or_ask_the_node():
    found = mount_facts(["my data", "models"], [], "/lambda/nfs/", MOUNTINFO)
    assert found["paths"] == ["/lambda/nfs/my data", "/lambda/nfs/models"]
    assert found["mounted"] == ["/lambda/nfs/my data"]
    assert (
        "so 2 of /lambda/nfs/my data, /lambda/nfs/models should be mounted, but only /lambda/nfs/my data is"
        in (found["problem"])
    )
    assert mount_facts(["my data"], [], "/lambda/nfs/", MOUNTINFO)["problem"] is None
    asked = mount_facts(["models"], [], "/lambda/nfs", None, lambda path: False)
    assert asked["mounted"] == [] and "none is" in asked["problem"]
    assert mount_facts(["models"], [], "/lambda/nfs", None)["mounted"] == []
