#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_file_system_info
short_description: List Lambda Cloud persistent file systems
version_added: 0.1.0
description:
  - Lists the persistent file systems of the account.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  name:
    description:
      - Only the file system with this name.
    type: str
  region:
    description:
      - Only file systems in this region.
    type: str
"""

EXAMPLES = r"""
- name: File systems in us-west-1
  lambdalabs.cloud.lambda_file_system_info:
    region: us-west-1
  register: fs

- name: Is the dataset volume still mounted somewhere?
  lambdalabs.cloud.lambda_file_system_info:
    name: datasets
  register: datasets
  failed_when: datasets.file_systems | selectattr('is_in_use') | list | length > 0
"""

RETURN = r"""
file_systems:
  description: The file systems that match the name and region filters.
  returned: always
  type: list
  elements: dict
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
    created:
      description: When it was created (ISO 8601).
      type: str
      sample: "2026-01-01T12:00:00+00:00"
    created_by:
      description: The user who created it.
      type: dict
      sample: {"id": "c2f4e9a8", "email": "team@example.com", "status": "active"}
    is_in_use:
      description: Whether an instance mounts it; a file system in use cannot be deleted.
      type: bool
      sample: false
    region:
      description: The file system's region, with C(name) and C(description).
      type: dict
      sample: {"name": "us-west-1", "description": "California, USA"}
    bytes_used:
      description: Approximate bytes stored, updated every few hours.
      type: int
      sample: 2147483648
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_file_systems, region_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter, field_equals
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import check_file_system_name, check_region


def main():
    run_filter_info_module(
        "file_systems",
        lambda client, params: list_file_systems(client),
        {"name": Filter(check_file_system_name), "region": Filter(check_region, field_equals(region_name))},
    )


if __name__ == "__main__":
    main()
