# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every input check: what passes, and the one line that names the parameter for what does not."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_choice,
    check_file_system_name,
    check_hostname,
    check_id,
    check_mount_point,
    check_name,
    check_new_name,
    check_number,
    check_public_key,
    check_region,
    check_tags,
    check_text,
    check_user_data,
    check_variable_prefix,
    control_characters,
    invisible_characters,
    look_alikes,
    name_skeleton,
    raw_type_problem,
    seconds,
    switch,
    tag_value,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T deploy"


def refused(check, *args, param="p", **kwargs):
    with pytest.raises(InvalidParameter) as info:
        check(param, *args, **kwargs)
    assert info.value.param.startswith(param) and str(info.value).startswith(f"{info.value.param}: ")
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("value", ["trainer-1", "a" * 64, "My Instance", "ünïcode"])
def test_names_that_pass(value):
    check_name("name", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a" * 65, "at most 64 characters"),
        ("trainer\n", "control characters (\\n)"),
        ("a\x00b", "control characters (\\x00)"),
        ("tab\there", "control characters (\\t)"),
        ("line\u2028sep", "control characters"),
        (["a", "b"], "must be a string, got list"),
        ({"a": 1}, "must be a string, got dict"),
    ],
)
def test_names_that_are_refused(value, expected):
    assert expected in refused(check_name, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("trainer ", "must not start or end with white space"),
        (" trainer", "must not start or end with white space"),
        ("trainer\u00a0", "must not start or end with white space"),
        ("train\u00a0er", "U+00A0 NO-BREAK SPACE"),
        ("train\u200ber", "U+200B ZERO WIDTH SPACE"),
        ("train\u202eer", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("train\u2066er", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("train\ufeffer", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("train\u3000er", "U+3000 IDEOGRAPHIC SPACE"),
        ("train\u00ader", "U+00AD SOFT HYPHEN"),
    ],
)
def test_new_names_that_look_like_another_name_are_refused(value, expected):
    message = refused(check_new_name, value, param="name")
    assert expected in message
    assert message.startswith("name: ")


def test_invisible_characters_names_each_once_and_a_plain_space_is_not_one():
    assert invisible_characters("a b") == []
    assert invisible_characters("a\u200bb\u200b\u3000") == ["U+200B ZERO WIDTH SPACE", "U+3000 IDEOGRAPHIC SPACE"]


def test_an_existing_name_is_looked_up_as_it_is_and_only_new_names_are_strict():
    check_name("name", "made in the console ")  # it can still be found, referenced and deleted
    assert "white space" in refused(check_new_name, "made in the console ", param="name")
    assert "control characters" in refused(check_name, "a\nb", param="name")


def test_look_alikes_finds_names_that_differ_only_by_confusable_letters():
    cyrillic_a = "tr\u0430iner"
    assert name_skeleton(cyrillic_a) == "trainer"
    assert name_skeleton("\uff54rainer") == "trainer"  # a fullwidth letter, folded by NFKC
    assert look_alikes("trainer", [cyrillic_a, "trainer", "Trainer", "other"]) == [cyrillic_a]
    assert look_alikes(cyrillic_a, ["trainer"]) == ["trainer"]
    assert look_alikes("trainer", []) == []


def test_patterns_are_full_matches_so_a_trailing_newline_never_passes():
    check_hostname("h", "node-1")
    assert "control characters" in refused(check_hostname, "node-1\n")
    assert "is not valid" in refused(check_hostname, "Node_1")
    check_file_system_name("f", "datasets-2")
    assert "control characters" in refused(check_file_system_name, "datasets\n")
    assert "is not valid" in refused(check_file_system_name, "1datasets")
    check_mount_point("m", "/lambda/nfs/data")
    assert "is not valid" in refused(check_mount_point, "/etc/shadow")
    assert "is not valid" in refused(check_mount_point, "/home/../etc")


@pytest.mark.parametrize("value", ["../ssh-keys", "a/b", "", "x" * 129, "id with space", "%2e%2e"])
def test_ids_that_could_reach_another_endpoint_are_refused(value):
    refused(check_id, value)


def test_ids_of_the_api_pass():
    check_id("id", "0920582c7ff041399e34823a0be62549")
    check_id("id", None)


def test_regions_are_checked_for_form_not_against_a_fixed_list():
    for region in ("us-east-1", "europe-central-1", "us-north-9", "asia-southeast-12"):
        check_region("region", region)
    check_region("region", ["us-east-1", "us-west-2"])
    assert "a region code looks like" in refused(check_region, "mars-1")
    assert "control characters" in refused(check_region, ["us-east-1", "us-west-2\n"])


def test_tags():
    check_tags("tags", {"team": "research", "spot": True, "gpus": 8, "k8s:role": "worker"})
    assert "must start with a lowercase letter" in refused(check_tags, {"Team": "x"})
    assert "control characters" in refused(check_tags, {"team\n": "x"})
    assert "not a list" in refused(check_tags, {"team": {"a": 1}})
    assert "not a list" in refused(check_tags, {"team": ["a"]})
    assert "finite number" in refused(check_tags, {"team": float("nan")})
    assert "at most 128 characters" in refused(check_tags, {"team": "x" * 129})
    assert "control characters" in refused(check_tags, {"team": "a\nb"})
    assert "must be a dictionary" in refused(check_tags, ["team"])


def test_tag_values_as_the_api_stores_them():
    assert [tag_value(v) for v in (True, False, None, 8, "x")] == ["true", "false", "", "8", "x"]


def test_public_keys():
    check_public_key("k", KEY)
    check_public_key("k", KEY + "\n")
    assert "more than one key" in refused(check_public_key, KEY + " " + KEY)
    assert "control characters" in refused(check_public_key, KEY.replace(" deploy", "\r deploy"))
    assert "control characters" in refused(check_public_key, KEY + "\n" + KEY)
    assert "is not an OpenSSH public key" in refused(check_public_key, "not a key")


@pytest.mark.parametrize(
    ("value", "bounds", "expected"),
    [
        (float("inf"), {}, "finite number"),
        (float("nan"), {}, "finite number"),
        (1e308, {"maximum": 3600}, "at most 3600"),
        (-1, {"minimum": 0}, "at least 0"),
        (0, {"above": 0}, "greater than 0"),
        (True, {}, "must be a number"),
        ("12", {}, "must be a number"),
    ],
)
def test_numbers(value, bounds, expected):
    assert expected in refused(check_number, value, **bounds)


def test_numbers_that_pass():
    check_number("n", 12, minimum=0, maximum=3600)
    check_number("n", 0.5, above=0)
    check_number("n", None, minimum=1)


def test_choices_list_what_exists():
    check_choice("type", ["a", "b"], ["a", "b", "c"], "type")
    assert "unknown type 'z'; known: a, b" in refused(check_choice, "z", ["b", "a"], "type")
    assert "there is no SSH key at all" in refused(check_choice, "k", [], "SSH key")


def test_user_data():
    check_user_data("u", "#!/bin/sh\necho hi\n")
    assert "1048577 bytes" in refused(check_user_data, "x" * (1024 * 1024 + 1))
    assert "NUL" in refused(check_user_data, "a\x00b")


def test_variable_prefixes():
    check_variable_prefix("prefix", "lambda_")
    check_variable_prefix("prefix", "_x")
    for bad in ("", "5", "bad prefix-", "lambda_\n"):
        refused(check_variable_prefix, bad)


def test_text_may_be_allowed_empty():
    check_text("t", "", allow_empty=True)
    assert control_characters("a\x1b[31mb\x7f") == ["\\x1b", "\\x7f"]


@pytest.mark.parametrize(
    ("value", "wanted", "problem"),
    [
        (["a", "b"], "str", "must be a string, got list"),
        ({"a": 1}, "str", "must be a string, got dict"),
        (True, "str", "must be a string, got bool"),
        ("a", "str", None),
        (5, "str", None),
        (["a", ["b"]], "list_of_str", "one item is list"),
        (["a", {"b": 1}], "list_of_str", "one item is dict"),
        ({"a": 1}, "list_of_str", "got dict"),
        (["a", "b"], "list_of_str", None),
        ("a,b", "list_of_str", None),
    ],
)
def test_raw_values_that_ansible_would_convert_silently(value, wanted, problem):
    found = raw_type_problem(value, wanted)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("value, expected", [(None, 0.0), (0, 0.0), (600, 600.0), ("12.5", 12.5), (" 3 ", 3.0)])
def test_seconds_takes_numbers_and_strings_that_hold_one(value, expected):
    assert seconds("connect_timeout", value, 86400) == expected


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf", -1, 86401, True, [5], {"s": 1}])
def test_seconds_refuses_anything_else_naming_the_parameter(value):
    with pytest.raises(InvalidParameter) as raised:
        seconds("connect_timeout", value, 86400)
    assert str(raised.value).startswith("connect_timeout: ") and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("yes", True),
        ("no", False),
        (" on ", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_a_switch_is_read_as_a_user_writes_it(value, expected):
    assert switch("reap_confirm", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "tru", 2, 1.0, None, [True], "nan"])
def test_any_other_switch_value_is_refused_naming_it(value):
    with pytest.raises(InvalidParameter) as error:
        switch("reap_confirm", value)
    assert error.value.param == "reap_confirm" and "must be true or false" in str(error.value)
