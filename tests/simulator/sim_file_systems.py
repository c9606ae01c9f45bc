# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's file systems: list (with whether instances use them), create and delete."""

from __future__ import annotations

from typing import Any

from sim_account_base import GONE_STATUSES, USER, AccountBase, iso_time, new_id
from sim_catalogue import REGION_OBJECTS, REGIONS
from sim_requests import FILESYSTEM_NAME_PATTERN
from sim_validation import ApiError, check_keys, check_unique_name, expect_object, not_found, require_str

FS_KEY_ORDER = ("id", "name", "mount_point", "created", "created_by", "is_in_use", "region", "bytes_used")
CHECK_FILE_SYSTEM_ID = "List your file systems with GET /api/v1/file-systems and check the ID."


def ordered_file_system(fs: dict[str, Any]) -> dict[str, Any]:
    """A file system with its keys in the API's order."""
    return {key: fs[key] for key in FS_KEY_ORDER if key in fs} | fs


def new_file_system(name: str, region: str, now: float) -> dict[str, Any]:
    """A file system as the API stores it, without ``is_in_use``."""
    return {
        "id": new_id(),
        "name": name,
        "mount_point": f"/lambda/nfs/{name}",
        "created": iso_time(now),
        "created_by": USER,
        "region": REGION_OBJECTS[region],
        "bytes_used": 0,
    }


class FileSystemOperations(AccountBase):
    """The file system operations of :class:`sim_account.Account`."""

    def _file_systems_in_use(self) -> tuple[set[str], set[str]]:
        """Ids and names of the file systems mounted by instances that are not terminated."""
        ids: set[str] = set()
        names: set[str] = set()
        for instance in self.instances.values():
            if instance.get("status") in GONE_STATUSES:
                continue
            names.update(instance.get("file_system_names") or ())
            for mount in instance.get("file_system_mounts") or ():
                ids.add(mount.get("file_system_id"))
        return ids, names

    def _file_system_view(self, fs: dict[str, Any], in_use: tuple[set[str], set[str]]) -> dict[str, Any]:
        view = dict(fs)
        view["is_in_use"] = fs["id"] in in_use[0] or fs["name"] in in_use[1]
        return ordered_file_system(view)

    def list_file_systems(self) -> list[dict[str, Any]]:
        in_use = self._file_systems_in_use()
        return [self._file_system_view(fs, in_use) for fs in self.file_systems.values()]

    def create_file_system(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "region"), ("name", "region"))
        name = require_str(obj, "name", min_length=1, max_length=60, pattern=FILESYSTEM_NAME_PATTERN)
        region = require_str(obj, "region", choices=REGIONS)
        check_unique_name(
            name,
            self.file_systems.values(),
            "A file system",
            "Choose another name; file system names are unique within an account.",
        )
        fs = new_file_system(name, region, now)
        self.file_systems[fs["id"]] = fs
        self._event("filesystem", "created", fs["id"], {"name": name, "region": region}, now)
        return self._file_system_view(fs, (set(), set()))

    def delete_file_system(self, fs_id: str, now: float) -> dict[str, Any]:
        fs = self.file_systems.get(fs_id)
        if fs is None:
            raise not_found(
                f"Filesystem was not found: {fs_id!r}.",
                CHECK_FILE_SYSTEM_ID,
            )
        ids, names = self._file_systems_in_use()
        if fs_id in ids or fs["name"] in names:
            raise ApiError(
                400,
                "filesystems/filesystem-in-use",
                f"File system {fs['name']!r} is mounted to one or more instances.",
                "Terminate the instances that use it before deleting it.",
            )
        del self.file_systems[fs_id]
        self.hooks.file_system_deleted(fs_id)
        self._event("filesystem", "deleted", fs_id, {"name": fs["name"]}, now)
        return {"deleted_ids": [fs_id]}
