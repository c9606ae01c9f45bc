# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's SSH keys: list, add (with a generated key pair when no public key is given) and delete."""

from __future__ import annotations

from typing import Any

from sim_account_base import AccountBase, new_id
from sim_keys import generate_key_pair, public_key_problem
from sim_validation import check_keys, check_unique_name, expect_object, get_str, invalid, require_str


class SshKeyOperations(AccountBase):
    """The SSH key operations of :class:`sim_account.Account`."""

    def list_ssh_keys(self) -> list[dict[str, Any]]:
        return list(self.ssh_keys.values())

    def add_ssh_key(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "public_key"), ("name",))
        name = require_str(obj, "name", min_length=1, max_length=64)
        public_key = get_str(obj, "public_key", min_length=1, max_length=4096)
        if public_key is not None:
            public_key = public_key.strip()
            problem = public_key_problem(public_key)
            if problem:
                raise invalid(
                    f"Field 'public_key' is not a valid SSH public key: {problem}.",
                    "Give the contents of a .pub file, or omit public_key to have a key pair generated.",
                )
        check_unique_name(
            name, self.ssh_keys.values(), "An SSH key", "Choose another name, or delete the existing key first."
        )
        private_key = None
        if public_key is None:
            public_key, private_key = generate_key_pair(name)
        key = {"id": new_id(), "name": name, "public_key": public_key}
        self.ssh_keys[key["id"]] = key
        self._event("ssh_key", "created", key["id"], {"name": name}, now)
        if private_key is not None:
            return {**key, "private_key": private_key}
        return key

    def delete_ssh_key(self, key_id: str, now: float) -> dict[str, Any]:
        key = self.ssh_keys.pop(key_id, None)
        if key is None:
            raise invalid(
                f"SSH key with ID {key_id!r} does not exist.",
                "List your SSH keys with GET /api/v1/ssh-keys and check the ID.",
            )
        self._event("ssh_key", "deleted", key_id, {"name": key["name"]}, now)
        return {}
