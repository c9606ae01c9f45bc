#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_file_system
short_description: Create and delete Lambda Cloud persistent file systems
version_added: 0.1.0
description:
  - Makes sure a persistent file system with a given name exists in a region, or does not.
  - A file system that an instance mounts cannot be deleted; the module then names the instances.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
extends_documentation_fragment:
  - lambdalabs.cloud.lambda_cloud
  - lambdalabs.cloud.lambda_cloud.resource_module
options:
  name:
    description:
      - The file system's name; letters first, then letters, digits and V(-), at most 60 characters.
    type: str
    required: true
  region:
    description:
      - The region to create it in. Required when O(state=present).
      - A file system cannot move; an existing one in another region fails the task.
    type: str
  state:
    description:
      - Whether the file system should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: A shared dataset volume in us-west-1
  lambdalabs.cloud.lambda_file_system:
    name: datasets
    region: us-west-1

- name: Delete it (fails while an instance mounts it)
  lambdalabs.cloud.lambda_file_system:
    name: datasets
    state: absent
"""

RETURN = r"""
file_system:
  description: The file system.
  returned: when it exists or would exist
  type: dict
  contains:
    id:
      description: The file system's identifier.
      type: str
      sample: 398578a2336b49079e74043f0bd2cfe8
    name:
      description: The file system's name.
      type: str
      sample: datasets
    mount_point:
      description: Where instances mount it by default.
      type: str
      sample: /lambda/nfs/datasets
    region:
      description: The region, with C(name) and C(description).
      type: dict
      sample: {"name": "us-west-1", "description": "California, USA"}
    is_in_use:
      description: Whether an instance mounts it.
      type: bool
      sample: false
    created:
      description: When it was created.
      type: str
      sample: "2026-01-01T12:00:00+00:00"
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Created file system datasets in us-west-1.
"""

import re

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule
from ansible_collections.lambdalabs.cloud.plugins.module_utils._resources import (
    InvalidParameter,
    check_regions,
    delete_confirmed,
    find_one_by_name,
    is_existing,
    list_file_systems,
    list_instances,
    region_name,
)

NAME_PATTERN = re.compile(r"^[a-zA-Z]+[0-9a-zA-Z-]*$")
IN_USE = "filesystems/filesystem-in-use"


class FileSystemModule(LambdaCloudModule):
    argument_spec = {
        "name": {"type": "str", "required": True},
        "region": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    }
    module_kwargs = {"required_if": [["state", "present", ["region"]]]}

    def check_input(self):
        name = self.params["name"]
        if not NAME_PATTERN.match(name) or len(name) > 60:
            raise InvalidParameter(
                "name",
                f"'{name}' is not a valid file system name: letters first, then letters, digits and '-', "
                "at most 60 characters.",
            )
        check_regions("region", self.params["region"])

    def create(self, existing):
        name, region = self.params["name"], self.params["region"]
        if existing:
            if region_name(existing) != region:
                raise InvalidParameter(
                    "region",
                    f"file system '{name}' exists in {region_name(existing)}, not {region}; "
                    "file systems cannot move between regions.",
                )
            return {"changed": False, "file_system": existing, "msg": f"File system {name} exists in {region}."}
        if self.check_mode:
            return {
                "changed": True,
                "file_system": {"name": name, "region": {"name": region}},
                "msg": f"Would have created file system {name} in {region}.",
            }
        created = self.client.post("/filesystems", {"name": name, "region": region})
        return {"changed": True, "file_system": created, "msg": f"Created file system {name} in {region}."}

    def delete(self, existing):
        name = self.params["name"]
        if existing is None:
            return {"changed": False, "msg": f"File system {name} does not exist."}
        if self.check_mode:
            return {"changed": True, "file_system": existing, "msg": f"Would have deleted file system {name}."}
        try:
            delete_confirmed(
                self.client,
                f"/filesystems/{existing['id']}",
                lambda: any(fs["id"] == existing["id"] for fs in list_file_systems(self.client)),
            )
        except LambdaCloudError as error:
            if error.code != IN_USE:
                raise
            users = [
                f"{i.get('name') or '(no name)'} ({i['id']})"
                for i in list_instances(self.client)
                if is_existing(i) and name in (i.get("file_system_names") or [])
            ]
            self.fail_error(
                error,
                msg=f"{error} File system {name} is mounted by {', '.join(users) or 'an instance'}; "
                "terminate those instances first, then delete it.",
            )
        return {"changed": True, "file_system": existing, "msg": f"Deleted file system {name}."}

    def run(self):
        self.check_input()
        existing = find_one_by_name(list_file_systems(self.client), self.params["name"], "file system")
        if self.params["state"] == "present":
            result = self.create(existing)
        else:
            result = self.delete(existing)
        after = result.get("file_system") if self.params["state"] == "present" else None
        result["diff"] = {"before": existing or {}, "after": after or {}}
        return result


def main():
    FileSystemModule.main()


if __name__ == "__main__":
    main()
