# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared domain logic: reading resources, filtering them, finding them by name.

Nothing here knows about AnsibleModule; the modules and the inventory plugin
both build on these functions.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudClient, LambdaCloudError

# The region codes the API accepts (PublicRegionCode in the v1.8.3 reference).
KNOWN_REGIONS = (
    "europe-central-1",
    "asia-south-1",
    "australia-east-1",
    "me-west-1",
    "asia-northeast-1",
    "asia-northeast-2",
    "us-east-1",
    "us-west-2",
    "us-west-1",
    "us-south-1",
    "us-west-3",
    "us-midwest-1",
    "us-east-2",
    "us-south-2",
    "us-south-3",
    "us-east-3",
    "us-midwest-2",
)

INSTANCE_STATUSES = ("booting", "active", "unhealthy", "terminated", "terminating", "preempted")
# An instance "exists" while it is in one of these; the others count as gone.
EXISTING_STATUSES = frozenset({"booting", "active", "unhealthy"})
IMAGE_ARCHITECTURES = ("x86_64", "arm64")


class InvalidParameter(ValueError):
    """A parameter value the API would refuse, found before any change is made."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


# --------------------------------------------------------------------- reading
def list_instances(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/instances") or []


def get_instance(client: LambdaCloudClient, instance_id: str) -> dict[str, Any] | None:
    """The instance with this id, or None when the API does not know it."""
    try:
        return client.get(f"/instances/{instance_id}")
    except LambdaCloudError as error:
        if error.status == 404:
            return None
        raise


def list_instance_types(client: LambdaCloudClient) -> list[dict[str, Any]]:
    """Instance types flattened to one dict each, cheapest first."""
    data = client.get("/instance-types") or {}
    types = []
    for name, item in data.items():
        entry = dict(item.get("instance_type") or {})
        entry.setdefault("name", name)
        entry["regions_with_capacity_available"] = item.get("regions_with_capacity_available") or []
        types.append(entry)
    types.sort(key=lambda t: (t.get("price_cents_per_hour", 0), t["name"]))
    return types


def list_images(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/images") or []


def list_file_systems(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/file-systems") or []


def list_ssh_keys(client: LambdaCloudClient) -> list[dict[str, Any]]:
    """SSH keys, never with a private key (the API only returns one when it generates a pair)."""
    keys = client.get("/ssh-keys") or []
    return [{k: v for k, v in key.items() if k != "private_key"} for key in keys]


# --------------------------------------------------------------------- shapes
def region_name(resource: dict[str, Any]) -> str | None:
    region = resource.get("region")
    return region.get("name") if isinstance(region, dict) else region


def instance_type_name(instance: dict[str, Any]) -> str | None:
    itype = instance.get("instance_type")
    return itype.get("name") if isinstance(itype, dict) else itype


def capacity_regions(instance_type: dict[str, Any]) -> list[str]:
    return [r["name"] if isinstance(r, dict) else r for r in instance_type.get("regions_with_capacity_available", [])]


def tag_value(value: Any) -> str:
    """A tag value as the API stores it: a string; YAML booleans become 'true'/'false'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tags_to_dict(tags: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in tags or [] if isinstance(tag, dict) and "key" in tag}


def dict_to_tags(tags: dict[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": str(key), "value": tag_value(value)} for key, value in (tags or {}).items()]


JUPYTER_FIELDS = ("jupyter_token", "jupyter_url")


def without_secrets(instance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The instance without its JupyterLab token and URL, which are credentials."""
    if not isinstance(instance, dict):
        return instance
    return {key: value for key, value in instance.items() if key not in JUPYTER_FIELDS}


def is_existing(instance: dict[str, Any]) -> bool:
    return instance.get("status") in EXISTING_STATUSES


# --------------------------------------------------------------------- filtering
Matcher = Callable[[dict[str, Any], Any], bool]


def field_equals(getter: Callable[[dict[str, Any]], Any]) -> Matcher:
    """Match when the item's value equals the filter, or is one of a list of filter values."""

    def match(item: dict[str, Any], wanted: Any) -> bool:
        value = getter(item)
        if isinstance(wanted, (list, tuple, set)):
            return value in wanted
        return value == wanted

    return match


def field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: item.get(name)


def apply_filters(items: Iterable[dict[str, Any]], matchers: dict[str, Matcher], values: dict[str, Any]) -> list:
    """Keep the items that match every filter whose value is set (None and [] mean "no filter")."""
    active = [(matchers[name], value) for name, value in values.items() if name in matchers and value not in (None, [])]
    return [item for item in items if all(match(item, value) for match, value in active)]


def check_choice(param: str, value: Any, known: Iterable[str], what: str) -> None:
    """Raise InvalidParameter when ``value`` (or any value of a list) is not one of ``known``."""
    if value in (None, []):
        return
    known = sorted(set(known))
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if item not in known:
            choices = f"known: {', '.join(known)}" if known else f"there is no {what} at all"
            raise InvalidParameter(param, f"unknown {what} '{item}'; {choices}.")


def check_regions(param: str, value: Any) -> None:
    check_choice(param, value, KNOWN_REGIONS, "region")


# --------------------------------------------------------------------- finding
def find_by_name(items: Iterable[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [item for item in items if item.get("name") == name]


def find_one_by_name(
    items: Iterable[dict[str, Any]], name: str, what: str, hint: str = "remove the extra ones in the console"
) -> dict[str, Any] | None:
    """The one item with this name, None when there is none; more than one is an error."""
    found = find_by_name(items, name)
    if len(found) > 1:
        ids = ", ".join(str(item.get("id")) for item in found)
        raise InvalidParameter("name", f"{len(found)} {what}s are named '{name}' ({ids}); {hint}.")
    return found[0] if found else None


def delete_confirmed(client: LambdaCloudClient, path: str, still_there: Callable[[], bool]) -> None:
    """DELETE ``path``; an error after which the resource is gone anyway (a retried delete) is success."""
    try:
        client.delete(path)
    except LambdaCloudError as error:
        if error.status in (400, 404) and not still_there():
            return
        raise


# --------------------------------------------------------------------- launching
HOSTNAME_PATTERN = re.compile(r"^[a-z0-9][0-9a-z-]{0,62}$")
TAG_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-:]+$")
MAX_NAME_LENGTH = 64
MAX_TAG_KEY_LENGTH = 55
MAX_TAG_VALUE_LENGTH = 128
MAX_USER_DATA_BYTES = 1024 * 1024
INSUFFICIENT_CAPACITY = "instance-operations/launch/insufficient-capacity"


def check_instance_name(param: str, name: str | None) -> None:
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(param, f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}.")


def check_hostname(param: str, hostname: str | None) -> None:
    if hostname is not None and not HOSTNAME_PATTERN.match(hostname):
        raise InvalidParameter(
            param,
            f"'{hostname}' is not a valid hostname: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit.",
        )


def check_tags(param: str, tags: dict[str, Any] | None) -> None:
    for key, value in (tags or {}).items():
        if not TAG_KEY_PATTERN.match(str(key)) or len(str(key)) > MAX_TAG_KEY_LENGTH:
            raise InvalidParameter(
                param,
                f"tag key '{key}' is invalid: keys start with a lowercase letter, hold only lowercase letters, "
                f"digits, '-' and ':', and are 2-{MAX_TAG_KEY_LENGTH} characters long.",
            )
        if value is not None and len(str(value)) > MAX_TAG_VALUE_LENGTH:
            raise InvalidParameter(param, f"the value of tag '{key}' is longer than {MAX_TAG_VALUE_LENGTH} characters.")


def check_user_data(param: str, user_data: str | None) -> None:
    if user_data is not None and len(user_data.encode("utf-8")) > MAX_USER_DATA_BYTES:
        raise InvalidParameter(
            param, f"is {len(user_data.encode('utf-8'))} bytes; the API accepts at most {MAX_USER_DATA_BYTES} (1 MB)."
        )


def launch_candidates(
    types: list[dict[str, Any]],
    wanted_types: list[str],
    wanted_regions: list[str] | None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """All (type, region) pairs in order of preference, and those of them with capacity now.

    Without ``wanted_regions`` every region where a type has capacity is eligible,
    in the order the API lists them.
    """
    by_name = {t["name"]: t for t in types}
    pairs: list[tuple[str, str]] = []
    available: list[tuple[str, str]] = []
    for type_name in wanted_types:
        capacity = capacity_regions(by_name[type_name])
        for region in wanted_regions or capacity:
            pairs.append((type_name, region))
            if region in capacity:
                available.append((type_name, region))
    return pairs, available


def describe_capacity(types: list[dict[str, Any]], wanted_types: list[str]) -> str:
    by_name = {t["name"]: t for t in types}
    parts = []
    for type_name in wanted_types:
        regions = capacity_regions(by_name[type_name])
        parts.append(f"{type_name}: {', '.join(regions) if regions else 'no region'}")
    return "; ".join(parts)


class LaunchPacer:
    """Keeps launches from one controller at least ``interval`` seconds apart.

    The API accepts one launch per 12 seconds per account. Several module runs at
    once (forks, loops) share a lock file that holds the time of the last launch,
    so they take turns instead of provoking a storm of 429 answers.
    """

    def __init__(self, api_url: str, interval: float, directory: str | None = None) -> None:
        digest = hashlib.sha256(api_url.encode("utf-8")).hexdigest()[:16]
        directory = directory or self.shared_directory()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, f"lambdalabs-cloud-launch-{digest}.lock")
        self.interval = interval

    @staticmethod
    def shared_directory() -> str:
        """A directory that every module run of this user sees.

        Not ``tempfile.gettempdir()``: Ansible points that at a per-task directory.
        """
        candidate = os.path.join(os.path.expanduser("~"), ".ansible", "tmp")
        try:
            os.makedirs(candidate, mode=0o700, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            pass
        return f"/tmp/lambdalabs-cloud-{os.getuid()}"

    @contextlib.contextmanager
    def turn(self, sleep: Callable[[float], None] = time.sleep):
        """Hold the lock, wait until the interval since the last launch has passed, then yield."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).decode("ascii", "ignore").strip()
            try:
                last = float(raw)
            except ValueError:
                last = 0.0
            wait = last + self.interval - time.time()
            if 0 < wait <= self.interval:
                sleep(wait)
            try:
                yield
            finally:
                stamp = f"{time.time():.3f}".encode("ascii").ljust(32)
                os.pwrite(fd, stamp, 0)
        finally:
            os.close(fd)  # also releases the lock


class WaitTimeout(Exception):
    """The instance did not reach the wanted state in time; it is left in place."""

    def __init__(self, instance: dict[str, Any] | None, instance_id: str, timeout: float) -> None:
        status = instance.get("status") if instance else "gone"
        super().__init__(f"instance {instance_id} was still '{status}' after {timeout:g} s")
        self.instance = instance
        self.instance_id = instance_id
        self.status = status


class InstanceLost(Exception):
    """The instance ended (terminated, preempted, vanished) while waiting for it to become active."""

    def __init__(self, instance: dict[str, Any] | None, instance_id: str) -> None:
        status = instance.get("status") if instance else "gone"
        super().__init__(f"instance {instance_id} became '{status}' while waiting for it to become active")
        self.instance = instance
        self.status = status


def poll_intervals(first: float = 2.0, factor: float = 1.5, cap: float = 15.0):
    """Growing poll intervals: 2, 3, 4.5, ... up to 15 seconds."""
    interval = first
    while True:
        yield interval
        interval = min(cap, interval * factor)


def wait_for_instance(
    client: LambdaCloudClient,
    instance_id: str,
    target: str,
    timeout: float,
    last: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any] | None, int]:
    """Poll one instance until it is ``active`` or, for ``gone``, terminated or deleted.

    Returns the last instance read (None when gone) and the number of polls.
    Raises :class:`WaitTimeout` or, when waiting for ``active``, :class:`InstanceLost`.
    """
    deadline = time.monotonic() + timeout
    polls = 0
    instance = last
    for interval in poll_intervals():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(instance, instance_id, timeout)
        sleep(min(interval, remaining))
        polls += 1
        instance = get_instance(client, instance_id)
        status = instance.get("status") if instance else None
        if target == "active":
            if status == "active":
                return instance, polls
            if status in (None, "terminated", "terminating", "preempted"):
                raise InstanceLost(instance, instance_id)
        elif status in (None, "terminated"):
            return instance, polls
    return instance, polls  # pragma: no cover - poll_intervals() never ends
