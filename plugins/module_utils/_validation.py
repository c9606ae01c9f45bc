# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every input check of the collection, and every pattern it checks against, in one place.

Each ``check_*`` function raises :class:`InvalidParameter` naming the parameter, before any
request changes anything. They know nothing about Ansible, so that modules, the inventory
plugin and the filter plugins share them, and they are unit-tested on their own.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

# Full matches only: every pattern is used with re.fullmatch, so a trailing newline never slips through.
HOSTNAME_PATTERN = re.compile(r"[a-z0-9][0-9a-z-]{0,62}")
TAG_KEY_PATTERN = re.compile(r"[a-z][a-z0-9:-]{1,54}")
FILE_SYSTEM_NAME_PATTERN = re.compile(r"[a-zA-Z][0-9a-zA-Z-]{0,59}")
MOUNT_POINT_PATTERN = re.compile(r"(/home|/lambda/nfs|/data)(/[a-zA-Z0-9-]+)*/?")
# Resource ids are 32 hexadecimal characters today; any id is letters, digits, '-' and '_'.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Region codes such as us-east-1 or europe-central-1. Which ones exist is the API's business.
REGION_PATTERN = re.compile(r"[a-z]+(-[a-z]+)+-[0-9]+")
INSTANCE_TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]{0,99}")
# Prefixes of host variables must themselves start a valid variable name.
VARIABLE_PREFIX_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
PUBLIC_KEY_TYPES = ("ssh-", "ecdsa-", "sk-")

MAX_NAME_LENGTH = 64
MAX_TAG_VALUE_LENGTH = 128
MAX_USER_DATA_BYTES = 1024 * 1024


class InvalidParameter(ValueError):
    """A parameter value that is refused before any change is made; ``str()`` starts with the parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.detail = message


def _shown(value: Any, limit: int = 60) -> str:
    """A value as it may appear in an error: repr (control characters visible), shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def control_characters(text: str) -> list[str]:
    """The control characters in ``text`` (C0, DEL, C1 and the Unicode line separators), as escapes."""
    found = [char for char in text if ord(char) < 32 or 127 <= ord(char) < 160 or char in "\u2028\u2029"]
    return [repr(char)[1:-1] for char in dict.fromkeys(found)]


def check_text(param: str, value: Any, *, max_length: int | None = None, allow_empty: bool = False) -> None:
    """A plain one-line string: no control characters (newlines and NUL included), not blank unless allowed."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidParameter(param, f"must be a string, got {type(value).__name__} {_shown(value)}.")
    if not allow_empty and not value.strip():
        raise InvalidParameter(param, "must not be empty.")
    bad = control_characters(value)
    if bad:
        raise InvalidParameter(param, f"must not contain control characters ({', '.join(bad)}), got {_shown(value)}.")
    if max_length is not None and len(value) > max_length:
        raise InvalidParameter(param, f"must be at most {max_length} characters, got {len(value)}.")


def check_pattern(param: str, value: Any, pattern: re.Pattern[str], rule: str) -> None:
    """``value`` must match ``pattern`` as a whole; ``rule`` says in words what is allowed."""
    if value is None:
        return
    check_text(param, value)
    if not pattern.fullmatch(value):
        raise InvalidParameter(param, f"{_shown(value)} is not valid: {rule}")


def invisible_characters(text: str) -> list[str]:
    """The characters of ``text`` that a reader cannot see or tell from a space, besides the control characters that
    :func:`check_text` refuses: format characters (zero-width, bidirectional marks) and every space but the plain
    one, as ``U+XXXX NAME``."""
    found = [char for char in text if unicodedata.category(char) == "Cf" or (char.isspace() and char != " ")]
    return [f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}" for char in dict.fromkeys(found)]


def check_name(param: str, value: Any) -> None:
    """The name of an existing resource, to look it up: one line, at most 64 characters."""
    check_text(param, value, max_length=MAX_NAME_LENGTH)


def check_new_name(param: str, value: Any) -> None:
    """A name a resource is created or renamed with: as :func:`check_name`, and nothing invisible and no space at
    either end, so that two names that look the same cannot name two billed instances."""
    check_name(param, value)
    if value is None:
        return
    if value != value.strip():
        raise InvalidParameter(param, f"must not start or end with white space, got {_shown(value)}.")
    bad = invisible_characters(value)
    if bad:
        raise InvalidParameter(
            param, f"must not contain invisible or bidirectional characters ({', '.join(bad)}), got {_shown(value)}."
        )


# Letters of other scripts that look like Latin ones (Cyrillic, then Greek), folded onto them to find names that
# only look the same.
CONFUSABLES = str.maketrans(
    "\u0430\u0432\u0435\u0456\u0458\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u0501\u04bb"
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf\u03b9\u03bd",
    "aBeijkMHopctyxsdhABEZHIKMNOPTYXoiv",
)


def name_skeleton(name: str) -> str:
    """What ``name`` looks like: compatibility-normalised, with look-alike letters of other scripts
    folded onto Latin ones. Two names with the same skeleton are easy to mistake for each other."""
    return unicodedata.normalize("NFKC", name).translate(CONFUSABLES)


def look_alikes(name: str, existing: Iterable[str]) -> list[str]:
    """The names of ``existing`` that differ from ``name`` but look the same."""
    skeleton = name_skeleton(name)
    return sorted({other for other in existing if other != name and name_skeleton(other) == skeleton})


def check_id(param: str, value: Any) -> None:
    """A resource id, as it goes into a URL path."""
    check_pattern(param, value, ID_PATTERN, "an id holds only letters, digits, '-' and '_' (at most 128).")


def check_hostname(param: str, value: Any) -> None:
    check_pattern(
        param, value, HOSTNAME_PATTERN, "use 1-63 lowercase letters, digits and '-', starting with a letter or digit."
    )


def check_region(param: str, value: Any) -> None:
    """One region code, or a list of them, in the form the API uses (us-east-1); which exist is the API's to say."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        check_pattern(param, item, REGION_PATTERN, "a region code looks like us-east-1 or europe-central-1.")


def check_instance_type(param: str, value: Any) -> None:
    for item in value if isinstance(value, (list, tuple)) else [value]:
        check_pattern(param, item, INSTANCE_TYPE_PATTERN, "an instance type looks like gpu_1x_a100_sxm4.")


def check_file_system_name(param: str, value: Any) -> None:
    check_pattern(
        param,
        value,
        FILE_SYSTEM_NAME_PATTERN,
        "a file system name starts with a letter, then letters, digits and '-', at most 60 characters.",
    )


def check_mount_point(param: str, value: Any) -> None:
    check_pattern(param, value, MOUNT_POINT_PATTERN, "mount points lie under /home, /lambda/nfs or /data.")


def check_tags(param: str, tags: Any) -> None:
    """Tags as a dictionary of key to a string, number or boolean value."""
    if tags is None:
        return
    if not isinstance(tags, Mapping):
        raise InvalidParameter(param, f"must be a dictionary of tag keys to values, got {type(tags).__name__}.")
    for key, value in tags.items():
        check_pattern(
            param,
            key if isinstance(key, str) else str(key),
            TAG_KEY_PATTERN,
            f"tag key {_shown(key)} must start with a lowercase letter and hold only lowercase letters, digits, "
            "'-' and ':', 2-55 characters.",
        )
        if isinstance(value, (dict, list, tuple, set)):
            raise InvalidParameter(param, f"the value of tag '{key}' must be a string, number or boolean, not a list.")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameter(param, f"the value of tag '{key}' must be a finite number, got {value!r}.")
        check_text(f"{param}.{key}", tag_value(value), max_length=MAX_TAG_VALUE_LENGTH, allow_empty=True)


def tag_value(value: Any) -> str:
    """A tag value as the API stores it: a string; YAML booleans become 'true'/'false', None ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_user_data(param: str, user_data: Any) -> None:
    if user_data is None:
        return
    if not isinstance(user_data, str):
        raise InvalidParameter(param, f"must be a string, got {type(user_data).__name__}.")
    size = len(user_data.encode("utf-8", "surrogatepass"))
    if size > MAX_USER_DATA_BYTES:
        raise InvalidParameter(param, f"is {size} bytes; the API accepts at most {MAX_USER_DATA_BYTES} (1 MB).")
    if "\x00" in user_data:
        raise InvalidParameter(param, "must not contain NUL characters.")


def check_public_key(param: str, value: Any) -> None:
    """One OpenSSH public key on one line: 'TYPE BASE64 [comment]'."""
    if value is None:
        return
    check_text(param, value.strip() if isinstance(value, str) else value)
    parts = value.split()
    if len(parts) < 2 or not parts[0].startswith(PUBLIC_KEY_TYPES):
        raise InvalidParameter(
            param, "is not an OpenSSH public key (expected 'TYPE BASE64 [comment]', for example ssh-ed25519 ...)."
        )
    if sum(1 for part in parts if part.startswith(PUBLIC_KEY_TYPES)) > 1:
        raise InvalidParameter(param, "holds more than one key; give exactly one public key.")


def check_number(
    param: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> None:
    """A finite number within bounds (``above`` is an exclusive lower bound)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(param, f"must be a number, got {type(value).__name__} {_shown(value)}.")
    if not math.isfinite(value):
        raise InvalidParameter(param, f"must be a finite number, got {value!r}.")
    if above is not None and value <= above:
        raise InvalidParameter(param, f"must be greater than {above:g}, got {value:g}.")
    if minimum is not None and value < minimum:
        raise InvalidParameter(param, f"must be at least {minimum:g}, got {value:g}.")
    if maximum is not None and value > maximum:
        raise InvalidParameter(param, f"must be at most {maximum:g}, got {value:g}.")


def seconds(param: str, value: Any, maximum: float) -> float:
    """A number of seconds from 0 to ``maximum``, given as a number or as a string that holds one (an action
    plugin's arguments are not converted by an argument spec); None counts as 0."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidParameter(param, f"must be a number of seconds, got {_shown(value)}.") from None
    check_number(param, value, minimum=0, maximum=maximum)
    return float(value or 0)


_SWITCHES = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def switch(param: str, value: Any) -> bool:
    """A yes/no variable as a playbook's user gives it: a boolean, or (from ``-e``) true, false, yes, no, on, off, 1
    or 0. Anything else is refused, never read as a silent false."""
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if key not in _SWITCHES:
        raise InvalidParameter(param, f"must be true or false, got {_shown(value)}.")
    return _SWITCHES[key]


def check_choice(param: str, value: Any, known: Iterable[str], what: str) -> None:
    """``value`` (or each value of a list) must be one of ``known``."""
    if value in (None, []):
        return
    choices = sorted({str(item) for item in known})
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if item not in choices:
            listed = f"known: {', '.join(choices)}" if choices else f"there is no {what} at all"
            raise InvalidParameter(param, f"unknown {what} {_shown(item)}; {listed}.")


def check_variable_prefix(param: str, value: Any) -> None:
    check_pattern(
        param,
        value,
        VARIABLE_PREFIX_PATTERN,
        "the prefix of variable names must start with a letter or '_' and hold only letters, digits and '_'.",
    )


def raw_type_problem(value: Any, wanted: str) -> str | None:
    """Why a raw option value cannot be taken as ``wanted`` (str, list_of_str, number) without a silent conversion."""
    if value is None:
        return None
    if wanted == "str" and isinstance(value, (dict, list, tuple, bool)):
        return f"must be a string, got {type(value).__name__} {_shown(value)}"
    if wanted == "list_of_str" and isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list, tuple, bool)) or item is None:
                return f"must be a list of strings, but one item is {type(item).__name__} {_shown(item)}"
    if wanted == "list_of_str" and isinstance(value, (dict, bool)):
        return f"must be a list of strings, got {type(value).__name__}"
    if wanted == "number" and isinstance(value, bool):  # Ansible would take yes for 1 and no for 0
        return f"must be a number, got the boolean {value}"
    return None
