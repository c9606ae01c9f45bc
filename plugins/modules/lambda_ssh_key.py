#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_ssh_key
short_description: Add, generate and remove SSH keys of a Lambda Cloud account
version_added: 0.1.0
description:
  - Makes sure an SSH public key with a given name is in the account, or is not.
  - Without O(public_key), Lambda Cloud generates the key pair; the private key is written to O(private_key_path)
    with mode 0600 and never appears in the module's results or logs.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
extends_documentation_fragment:
  - lambdalabs.cloud.lambda_cloud
  - lambdalabs.cloud.lambda_cloud.resource_module
options:
  name:
    description:
      - The key's name, unique within the account.
    type: str
    required: true
  state:
    description:
      - Whether the key should be in the account.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description:
      - The public key, in OpenSSH format (for example the content of C(~/.ssh/id_ed25519.pub)).
      - Keys are compared without their comment.
      - When not set and no key has O(name), Lambda Cloud generates a key pair, which needs O(private_key_path).
    type: str
  private_key_path:
    description:
      - Where to write the private key of a generated pair. The file is created with mode 0600.
      - An existing file is never overwritten; the module fails instead, before any change.
    type: path
  force:
    description:
      - Replace a key of the same name whose public key differs (delete it, then add O(public_key)).
      - Without it, such a difference fails the task.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Upload my public key
  lambdalabs.cloud.lambda_ssh_key:
    name: deploy
    public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"

- name: Let Lambda Cloud generate a key pair and keep the private key
  lambdalabs.cloud.lambda_ssh_key:
    name: cluster-key
    private_key_path: ~/.ssh/lambda-cluster-key

- name: Rotate a key
  lambdalabs.cloud.lambda_ssh_key:
    name: deploy
    public_key: "{{ lookup('ansible.builtin.file', 'files/new_key.pub') }}"
    force: true

- name: Remove a key
  lambdalabs.cloud.lambda_ssh_key:
    name: old-key
    state: absent
"""

RETURN = r"""
ssh_key:
  description: The key, without any private part.
  returned: when the key exists or would exist
  type: dict
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
private_key_path:
  description: Where the private key of a generated pair was written.
  returned: when a key pair was generated
  type: str
  sample: /home/user/.ssh/lambda-cluster-key
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Added SSH key deploy.
"""

import os
import tempfile

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule
from ansible_collections.lambdalabs.cloud.plugins.module_utils._resources import (
    InvalidParameter,
    delete_confirmed,
    find_one_by_name,
    list_ssh_keys,
)

KEY_TYPES = ("ssh-", "ecdsa-", "sk-")


def key_material(public_key):
    """The key type and base64 blob, without the comment."""
    return tuple(public_key.split()[:2])


def public_only(key):
    return {k: key.get(k) for k in ("id", "name", "public_key")}


def write_private_key(path, content):
    """Write atomically with mode 0600, refusing to replace an existing file."""
    directory = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(prefix=".lambda-key-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content if content.endswith("\n") else content + "\n")
        os.link(temp, path)  # fails when path exists: never overwrite
    finally:
        os.unlink(temp)


class SSHKeyModule(LambdaCloudModule):
    argument_spec = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "public_key": {"type": "str"},
        "private_key_path": {"type": "path", "no_log": False},
        "force": {"type": "bool", "default": False},
    }

    def check_input(self):
        public_key = self.params["public_key"]
        if public_key is not None:
            parts = public_key.split()
            if len(parts) < 2 or not parts[0].startswith(KEY_TYPES):
                raise InvalidParameter(
                    "public_key", "is not an OpenSSH public key (expected 'TYPE BASE64 [comment]', e.g. ssh-ed25519)."
                )

    def add(self, existing):
        name, public_key = self.params["name"], self.params["public_key"]
        if public_key is None:
            return self.generate()
        if self.check_mode:
            return {"changed": True, "ssh_key": {"name": name, "public_key": public_key}}
        if existing:
            self.delete(existing)
        return {
            "changed": True,
            "ssh_key": public_only(self.client.post("/ssh-keys", {"name": name, "public_key": public_key})),
        }

    def generate(self):
        name, path = self.params["name"], self.params["private_key_path"]
        if not path:
            raise InvalidParameter(
                "private_key_path",
                f"is required to generate a key pair (public_key is not set and no key is named '{name}').",
            )
        if os.path.lexists(path):
            raise InvalidParameter("private_key_path", f"{path} exists already; it is never overwritten.")
        if not os.path.isdir(os.path.dirname(path) or "."):
            raise InvalidParameter("private_key_path", f"the directory of {path} does not exist.")
        if self.check_mode:
            return {"changed": True, "ssh_key": {"name": name}, "private_key_path": path}
        try:
            created = self.client.post("/ssh-keys", {"name": name})
        except LambdaCloudError as error:
            if error.may_have_processed:
                self.fail_error(
                    error,
                    msg=f"{error} The key '{name}' may have been created without its private key reaching this "
                    "machine; remove it with state=absent and run again.",
                )
            raise
        try:
            write_private_key(path, created["private_key"])
        except OSError as error:
            # Leave nothing behind: the private key exists nowhere else.
            msg = f"Could not write the private key to {path} ({error.strerror})"
            try:
                self.delete(created)
            except LambdaCloudError as cleanup:
                self.fail_error(cleanup, msg=f"{msg}; removing the generated key failed too: {cleanup}")
            self.module.fail_json(msg=f"{msg}; the generated key was removed again.")
        return {"changed": True, "ssh_key": public_only(created), "private_key_path": path}

    def delete(self, key):
        delete_confirmed(
            self.client,
            f"/ssh-keys/{key['id']}",
            lambda: any(k["id"] == key["id"] for k in list_ssh_keys(self.client)),
        )

    def check_generated(self, existing):
        """A generated key whose private key never arrived cannot be recovered: say so."""
        path = self.params["private_key_path"]
        if self.params["public_key"] is None and path and not os.path.lexists(path):
            raise InvalidParameter(
                "private_key_path",
                f"SSH key '{existing['name']}' exists, but {path} does not: its private key is not on this machine. "
                "Remove the key with state=absent to generate a new pair, or give public_key.",
            )

    def run(self):
        self.check_input()
        name = self.params["name"]
        existing = find_one_by_name(list_ssh_keys(self.client), name, "SSH key")
        before = public_only(existing) if existing else {}
        if self.params["state"] == "absent":
            result = {"changed": existing is not None, "msg": f"SSH key {name} is absent."}
            if existing and not self.check_mode:
                self.delete(existing)
            if existing:
                result["msg"] = ("Would have removed" if self.check_mode else "Removed") + f" SSH key {name}."
        elif existing is None:
            result = self.add(None)
            result["msg"] = ("Would have added" if self.check_mode else "Added") + f" SSH key {name}."
        elif self.params["public_key"] is None or key_material(existing["public_key"]) == key_material(
            self.params["public_key"]
        ):
            self.check_generated(existing)
            result = {"changed": False, "ssh_key": before, "msg": f"SSH key {name} is present."}
        elif not self.params["force"]:
            raise InvalidParameter(
                "public_key", f"SSH key '{name}' exists with a different public key; set force=true to replace it."
            )
        else:
            result = self.add(existing)
            result["msg"] = ("Would have replaced" if self.check_mode else "Replaced") + f" SSH key {name}."
        result["diff"] = {"before": before, "after": result.get("ssh_key") or {}}
        return result


def main():
    SSHKeyModule.main()


if __name__ == "__main__":
    main()
