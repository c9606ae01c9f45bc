#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_ssh_key_info
short_description: List the SSH keys of a Lambda Cloud account
version_added: 0.1.0
description:
  - Lists the SSH public keys stored in the account. Private keys are never returned.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  name:
    description:
      - Only the key with this name.
    type: str
"""

EXAMPLES = r"""
- name: All SSH keys
  lambdalabs.cloud.lambda_ssh_key_info:
  register: keys

- name: Fail early when the deploy key is missing
  lambdalabs.cloud.lambda_ssh_key_info:
    name: deploy
  register: deploy
  failed_when: deploy.ssh_keys | length == 0
"""

RETURN = r"""
ssh_keys:
  description: The SSH keys that match the name filter, or all of them.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The key's identifier.
      type: str
      sample: ddf9a910ceb744a0bb95242cbba6cb50
    name:
      description: The key's name.
      type: str
      sample: deploy
    public_key:
      description: The public key.
      type: str
      sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T deploy
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_ssh_keys
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import check_name


def main():
    run_filter_info_module("ssh_keys", lambda client, params: list_ssh_keys(client), {"name": Filter(check_name)})


if __name__ == "__main__":
    main()
