# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of API resources, the selection helpers, the launch request checks and raw option types."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    EXISTING_STATUSES,
    capacity_regions,
    cents,
    dict_to_tags,
    dollars,
    instance_type_name,
    is_existing,
    known_regions,
    natural_key,
    price_cents_per_hour,
    region_name,
    represent_instance,
    tags_to_dict,
    without_secrets,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch_request import (
    LAUNCH_OPTIONS,
    check_instance_options,
    differences,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import raw_nul_param, raw_type_problems
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import (
    apply_filters,
    field,
    field_equals,
    find_one_by_name,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


@pytest.mark.parametrize(
    ("price", "expected"),
    [(129, 129), (129.0, 129), (74.6, 75), ("75", 75), (None, 0), (True, 0), ("n/a", 0), (float("nan"), 0), ([], 0)],
)
def test_the_price_of_an_instance_is_whole_cents_whatever_the_api_gives(price, expected):
    assert cents(price) == expected
    assert price_cents_per_hour({"instance_type": {"price_cents_per_hour": price}}) == expected
    assert isinstance(price_cents_per_hour({"instance_type": {"price_cents_per_hour": price}}), int)


def test_an_instance_without_a_type_costs_nothing_and_cents_read_as_dollars():
    assert price_cents_per_hour({}) == 0 and price_cents_per_hour({"instance_type": "gpu_1x_a10"}) == 0
    assert dollars(129) == "1.29" and dollars(5) == "0.05" and dollars(None) == "0.00" and dollars(204.0) == "2.04"


def test_names_sort_in_natural_order_and_live_instances_exist():
    assert sorted(["node-10", "node-2", "node-1", None], key=natural_key) == [None, "node-1", "node-2", "node-10"]
    assert natural_key("a10b2") == ("a", 10, "b", 2, "")
    assert natural_key("node-1\u00b2") == ("node-", 1, "\u00b2")  # a superscript is a digit to isdigit(), not to int()
    assert EXISTING_STATUSES == {"booting", "active", "unhealthy"}
    assert is_existing({"status": "unhealthy"}) and not is_existing({"status": "terminating"})


def test_tags_are_a_dict_everywhere():
    assert tags_to_dict([{"key": "a", "value": "1"}, {"key": "b"}, "junk"]) == {"a": "1", "b": ""}
    assert tags_to_dict({"spot": True}) == {"spot": "true"}
    assert dict_to_tags({"spot": True, "n": 8}) == [{"key": "spot", "value": "true"}, {"key": "n", "value": "8"}]
    shown = represent_instance({"id": "i", "tags": [{"key": "a", "value": "1"}], "jupyter_token": "t"})
    assert shown == {"id": "i", "tags": {"a": "1"}}
    assert represent_instance({"id": "i", "jupyter_url": "u"}, include_jupyter=True)["jupyter_url"] == "u"
    assert without_secrets(None) is None


def test_names_of_nested_resources():
    assert region_name({"region": {"name": "us-east-1"}}) == region_name({"region": "us-east-1"}) == "us-east-1"
    assert instance_type_name({"instance_type": {"name": "t"}}) == "t"
    assert capacity_regions({"regions_with_capacity_available": [{"name": "a"}, "b"]}) == ["a", "b"]
    regions = known_regions([{"regions_with_capacity_available": [{"name": "a"}]}], [{"region": {"name": "b"}}])
    assert regions == {"a", "b"}


def test_filters_and_unique_names():
    items = [{"name": "a", "n": 1}, {"name": "b", "n": 2}, {"name": "a", "n": 3}]
    matchers = {"name": field_equals(field("name")), "n": field_equals(field("n"))}
    assert apply_filters(items, matchers, {"name": "a", "n": None, "other": 5}) == [items[0], items[2]]
    assert apply_filters(items, matchers, {"n": [2, 3]}) == items[1:]
    assert find_one_by_name(items, "b", "thing") == items[1]
    assert find_one_by_name(items, "z", "thing") is None
    with pytest.raises(InvalidParameter) as info:
        find_one_by_name([{"name": "a", "id": 1}, {"name": "a", "id": 2}], "a", "thing")
    assert "2 things are named 'a' (1, 2)" in str(info.value)


def options(**changes):
    base = {name: spec.get("default") for name, spec in LAUNCH_OPTIONS.items()}
    return base | {"name": "trainer", "wait_timeout": 1800} | changes


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"name": "a\nb"}, "name"),
        ({"id": "../ssh-keys"}, "id"),
        ({"hostname": "node-1\n"}, "hostname"),
        ({"ssh_key_name": ["a", "b"]}, "ssh_key_name"),
        ({"launch_interval": float("inf")}, "launch_interval"),
        ({"launch_interval": float("nan")}, "launch_interval"),
        ({"launch_interval": -1}, "launch_interval"),
        ({"launch_interval": 1e308}, "launch_interval"),
        ({"capacity_timeout": -5}, "capacity_timeout"),
        ({"file_system_mounts": [{"name": "fs", "mount_point": "/etc"}]}, "file_system_mounts[0].mount_point"),
        ({"firewall_ruleset_ids": ["../x"]}, "firewall_ruleset_ids"),
        ({"region": ["us-east-1", "mars"]}, "region"),
        ({"image": {"id": "../images", "family": None}}, "image.id"),
    ],
)
def test_launch_options_are_checked_before_any_request(changes, param):
    with pytest.raises(InvalidParameter) as info:
        check_instance_options(options(**changes))
    assert info.value.param == param


def test_differences_that_cannot_change_in_place():
    instance = {
        "instance_type": {"name": "gpu_1x_a10"},
        "region": {"name": "us-east-1"},
        "ssh_key_names": ["deploy"],
        "file_system_names": ["a", "b"],
        "tags": [{"key": "team", "value": "x"}, {"key": "cluster", "value": "demo"}],
        "hostname": "h1",
    }
    same = options(
        instance_type=["gpu_1x_a100", "gpu_1x_a10"],
        region=["us-east-1"],
        ssh_key_name=["deploy"],
        file_system_names=["a"],
        tags={"team": "x"},
        hostname="h1",
    )
    assert differences(same, instance) == []
    other = options(
        instance_type=["gpu_1x_a100"], region=["us-west-2"], tags={"team": "y"}, file_system_names=["c"], hostname="h2"
    )
    found = differences(other, instance)
    assert [text.split(" ", 1)[0] for text in found] == [
        "instance_type",
        "region",
        "file_system_names",
        "tags",
        "hostname",
    ]


def test_raw_option_types_that_ansible_would_convert():
    spec = {
        "name": {"type": "str"},
        "ids": {"type": "list", "elements": "str"},
        "mounts": {"type": "list", "elements": "dict", "options": {"name": {"type": "str"}}},
        "image": {"type": "dict", "options": {"id": {"type": "str"}}},
        "key": {"type": "str", "aliases": ["api_token"]},
        "request_timeout": {"type": "float"},
        "count": {"type": "int"},
    }
    raw = {
        "name": ["a", "b"],
        "ids": ["x", ["y"]],
        "mounts": [{"name": {"a": 1}}],
        "image": {"id": True},
        "api_token": {"k": "v"},
        "request_timeout": True,  # yes in YAML: never a 1 s timeout
        "count": False,
    }
    assert [param for param, _problem in raw_type_problems(spec, raw)] == [
        "name",
        "ids",
        "mounts[0].name",
        "image.id",
        "key",
        "request_timeout",
        "count",
    ]
    assert raw_type_problems(spec, {"request_timeout": 2.5, "count": 3}) == []
    assert raw_type_problems(spec, {"name": "ok", "ids": ["a"], "image": {"id": "i"}}) == []


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "tags": {"team": "x\x00"}}, "tags.team"),
        ({"tags": {"k\x00": "v"}}, "tags.k\\x00"),
        ({"rules": [{"ports": "22"}, {"description": "\x00"}]}, "rules[1].description"),
        ({"name": "ok", "count": 3, "tags": {"team": "ml"}, "_ansible_module_name": "x\x00"}, None),
        ({"name": "a\nb", "user_data": "#!/bin/sh\n"}, None),
    ],
)
def test_a_nul_character_is_found_with_its_option(raw, param):
    assert raw_nul_param(raw) == param
