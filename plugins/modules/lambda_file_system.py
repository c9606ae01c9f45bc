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
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.resource_module]
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
  description:
    - The file system, with the fields that RV(lambdalabs.cloud.lambda_file_system_info#module:file_systems) describes.
    - In check mode, when it would be created, only C(name) and C(region).
  returned: when it exists or would exist
  type: dict
  sample:
    id: 398578a2336b49079e74043f0bd2cfe8
    name: datasets
    mount_point: /lambda/nfs/datasets
    created: "2026-01-01T12:00:00+00:00"
    created_by: {"id": "c2f4e9a8", "email": "team@example.com", "status": "active"}
    is_in_use: false
    region: {"name": "us-west-1", "description": "California, USA"}
    bytes_used: 0
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Created file system datasets in us-west-1.
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    create_file_system,
    delete_file_system,
    is_existing,
    list_file_systems,
    list_instances,
    region_name,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import (
    SharedResourceModule,
    regional_resource_spec,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import find_one_by_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_file_system_name,
    check_region,
)


class FileSystemModule(SharedResourceModule):
    argument_spec = regional_resource_spec()
    module_kwargs = {"required_if": [["state", "present", ["region"]]]}
    resource_key = "file_system"
    managed_fields = ("name", "region")
    kind = "file system"
    used_by = "is mounted by"
    in_use_code = "filesystems/filesystem-in-use"

    def present(self, existing):
        name, region = self.params["name"], self.params["region"]
        if existing:
            if region_name(existing) != region:
                raise InvalidParameter(
                    "region",
                    f"file system '{name}' exists in {region_name(existing)}, not {region}; "
                    "file systems cannot move between regions.",
                )
            self.unchanged(f"File system {name} exists in {region}.", existing)
            return
        after = {"name": name, "region": {"name": region}}
        if not self.check_mode:
            after = create_file_system(self.client, name, region)
        self.changed("created", f"file system {name} in {region}", after)

    def in_use(self, existing):
        return bool(existing.get("is_in_use"))

    def users(self, existing):
        return [
            f"{i.get('name') or '(no name)'} ({i['id']})"
            for i in list_instances(self.client)
            if is_existing(i) and existing["name"] in (i.get("file_system_names") or [])
        ]

    def delete_resource(self, existing):
        delete_file_system(self.client, existing["id"])

    def find(self):
        check_file_system_name("name", self.params["name"])
        check_region("region", self.params["region"])
        return find_one_by_name(list_file_systems(self.client), self.params["name"], "file system")


def main():
    FileSystemModule.main()


if __name__ == "__main__":
    main()
