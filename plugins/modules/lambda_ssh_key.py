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
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.resource_module]
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
      - While the key is being generated, a marker file C(<private_key_path>.pending) exists. When the answer that
        carries the private key is lost, the marker stays, and a re-run replaces the key whose private part never
        arrived. A key of that name without the marker is never replaced.
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
  description:
    - The key, without any private part, with the fields that RV(lambdalabs.cloud.lambda_ssh_key_info#module:ssh_keys)
      describes (C(id), C(name) and C(public_key)).
    - In check mode, when it would be added, only C(name), and C(public_key) when given.
  returned: when the key exists or would exist
  type: dict
  sample:
    id: ddf9a910ceb744a0bb95242cbba6cb50
    name: deploy
    public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T deploy
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

import contextlib
import errno
import os
import tempfile

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import add_ssh_key, delete_ssh_key, list_ssh_keys
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule, ModuleFailure
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import find_one_by_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_name,
    check_new_name,
    check_public_key,
    check_text,
)

PENDING_SUFFIX = ".pending"


def key_material(public_key):
    """The key type and base64 blob, without the comment."""
    return tuple(public_key.split()[:2])


def public_only(key):
    return {k: key.get(k) for k in ("id", "name", "public_key") if k in key} if key else None


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
    resource_key = "ssh_key"
    managed_fields = ("name", "public_key")

    def represent(self, resource):
        return public_only(resource)

    @property
    def marker(self):
        return self.params["private_key_path"] + PENDING_SUFFIX

    def lost_generation(self):
        """Whether an earlier run generated this key and lost the answer that carried its private key."""
        try:
            with os.fdopen(os.open(self.marker, os.O_RDONLY | os.O_NOFOLLOW), encoding="utf-8") as handle:
                return handle.read().strip() == self.params["name"]
        except OSError:
            return False

    def write_marker(self):
        """The marker says a generation is under way; a link in its place is never followed."""
        try:
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            why = "it is a symbolic link, which is never followed" if error.errno == errno.ELOOP else error.strerror
            raise InvalidParameter("private_key_path", f"cannot write the marker {self.marker}: {why}.") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.params["name"] + "\n")

    def add(self, replaces=None):
        name, public_key = self.params["name"], self.params["public_key"]
        if public_key is None:
            self.check_key_path()
        if self.check_mode:
            if public_key is None:
                self._extra["private_key_path"] = self.params["private_key_path"]
            return {"name": name, "public_key": public_key} if public_key else {"name": name}
        if public_key is None:
            self.write_marker()  # before anything changes: a marker that cannot be written stops the run here
        if replaces:
            delete_ssh_key(self.client, replaces["id"])
        if public_key is not None:
            return add_ssh_key(self.client, name, public_key)
        return self.generate()

    def drop_marker(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.marker)

    def check_key_path(self):
        path = self.params["private_key_path"]
        if not path:
            raise InvalidParameter(
                "private_key_path",
                f"is required to generate a key pair (public_key is not set and no key is named '{self.params['name']}').",
            )
        if os.path.lexists(path):
            raise InvalidParameter("private_key_path", f"{path} exists already; it is never overwritten.")
        if not os.path.isdir(os.path.dirname(path) or "."):
            raise InvalidParameter("private_key_path", f"the directory of {path} does not exist.")

    def generate(self):
        name, path = self.params["name"], self.params["private_key_path"]
        try:
            created = add_ssh_key(self.client, name, None)
        except LambdaCloudError as error:
            if error.may_have_processed:
                raise ModuleFailure(
                    f"{error} The key '{name}' may have been created without its private key reaching this machine; "
                    f"run again: the re-run replaces it (the marker file {self.marker} says so).",
                    error=error.to_dict(),
                ) from None
            self.drop_marker()
            raise
        try:
            write_private_key(path, created["private_key"])
        except OSError as error:
            # Leave nothing behind: the private key exists nowhere else.
            msg = f"Could not write the private key to {path} ({error.strerror})"
            try:
                delete_ssh_key(self.client, created["id"])
            except LambdaCloudError as cleanup:
                raise ModuleFailure(f"{msg}; removing the generated key failed too: {cleanup}") from None
            self.drop_marker()
            raise ModuleFailure(f"{msg}; the generated key was removed again.") from None
        self.drop_marker()
        self._extra["private_key_path"] = path
        return created

    def present(self, existing):
        name, public_key, path = self.params["name"], self.params["public_key"], self.params["private_key_path"]
        if existing is None:
            check_new_name("name", name)
            self.changed("added", f"SSH key {name}", self.add())
        elif public_key is None and path and not os.path.lexists(path):
            if not self.lost_generation():
                raise InvalidParameter(
                    "private_key_path",
                    f"SSH key '{name}' exists, but {path} does not: its private key is not on this machine. Remove "
                    "the key with state=absent to generate a new pair, or give public_key.",
                )
            after = self.add(replaces=existing)
            self.changed("replaced", f"SSH key {name} (its private key was lost in an earlier run)", after)
        elif public_key is None or key_material(existing["public_key"]) == key_material(public_key):
            self.unchanged(f"SSH key {name} is present.", existing)
        elif not self.params["force"]:
            raise InvalidParameter(
                "public_key", f"SSH key '{name}' exists with a different public key; set force=true to replace it."
            )
        else:
            self.changed("replaced", f"SSH key {name}", self.add(replaces=existing))

    def run(self):
        check_name("name", self.params["name"])
        check_public_key("public_key", self.params["public_key"])
        check_text("private_key_path", self.params["private_key_path"], max_length=4096)
        name = self.params["name"]
        self.before = find_one_by_name(list_ssh_keys(self.client), name, "SSH key")
        if self.params["state"] == "present":
            self.present(self.before)
        elif self.before is None:
            self.unchanged(f"SSH key {name} is absent.")
        else:
            if not self.check_mode:
                delete_ssh_key(self.client, self.before["id"])
            self.changed("removed", f"SSH key {name}")


def main():
    SSHKeyModule.main()


if __name__ == "__main__":
    main()
