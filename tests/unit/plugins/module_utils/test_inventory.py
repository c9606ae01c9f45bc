# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory plugin's pure logic: filters, safe and unique host names, groups, settings."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._inventory import (
    check_raw_config,
    could_be_template,
    group_name,
    inventory_settings,
    safe_host_name,
    selected,
    unique_host_names,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

OPTIONS = {
    "statuses": ["active"],
    "regions": [],
    "instance_types": [],
    "names": [],
    "include_filters": [],
    "exclude_filters": [],
    "hostnames": ["name", "id"],
    "tags": {},
    "connect_with": "ip",
    "hostvars_prefix": "lambda_",
    "request_timeout": 30,
    "include_jupyter": False,
    "use_extra_vars": False,
    "default_groups": True,
    "strict": False,
}


def settings(**changes):
    return inventory_settings(OPTIONS | changes, lambda text: "{{" in text)


def instance(**fields):
    return {"id": "0920582c7ff041399e34823a0be62549", "name": "train-1", "status": "active"} | fields


def test_plain_filters():
    plain = settings()
    assert selected(instance(), plain)
    assert not selected(instance(status="booting"), plain)
    assert selected(instance(status="booting"), settings(statuses=[]))
    assert selected(instance(region={"name": "us-east-1"}), settings(regions=["us-east-1"]))
    assert not selected(instance(region={"name": "us-west-1"}), settings(regions=["us-east-1"]))
    assert selected(instance(), settings(names=["train-*"]))
    assert not selected(instance(name="infer-1"), settings(names=["train-*"]))
    tagged = instance(tags=[{"key": "team", "value": "research"}, {"key": "spot", "value": "true"}])
    assert selected(tagged, settings(tags={"team": "research", "spot": True}))
    assert selected(tagged, settings(tags={"team": None}))
    assert not selected(tagged, settings(tags={"team": "infra"}))
    assert not selected(instance(), settings(tags={"team": None}))


@pytest.mark.parametrize(
    ("name", "expected", "changed"),
    [
        ("train-1", "train-1", False),
        ("all", "all_0920582c", True),
        ("ALL", "ALL_0920582c", True),
        ("ungrouped", "ungrouped_0920582c", True),
        ("localhost", "localhost_0920582c", True),
        ("127.0.0.1", "127.0.0.1_0920582c", True),
        ("a,b", "a_b", True),
        ("web*", "web_", True),
        ("!db", "_db", True),
        ("node:22", "node_22", True),
        ("~regex", "_regex", True),
        ("with space", "with_space", True),
        ("bell\x07", "bell_", True),
    ],
)
def test_host_names_are_never_patterns_or_reserved(name, expected, changed):
    safe, why = safe_host_name(name, "0920582c7ff041399e34823a0be62549")
    assert safe == expected and (why is not None) is changed


def test_shared_names_get_the_short_id_and_nothing_is_dropped():
    hosts = [("a", 1), ("b", 2), ("a", 3), ("a_11111111", 4)]
    ids = ["11111111aaaa", "22222222", "33333333bbbb", "44444444"]
    names, warnings = unique_host_names(hosts, ids)
    assert names == ["a_11111111aaaa", "b", "a_33333333", "a_11111111"]
    assert len(set(names)) == 4 and len(warnings) == 1 and "2 instances would be named 'a'" in warnings[0]


@pytest.mark.parametrize(
    "names",
    [
        # Two y, and the names their short and whole ids would give: 4 names, 5 instances.
        ["y", "y", "y_aaaaaaaa", "y_aaaaaaaa000000000000000000000000", "z"],
        ["y", "y", "y_aaaaaaaa000000000000000000000000_2", "y_aaaaaaaa", "y_aaaaaaaa000000000000000000000000"],
        ["x", "x", "x", "x_aaaaaaaa", "x_bbbbbbbb"],
    ],
)
def test_no_names_ever_merge_two_instances_into_one_host(names):
    ids = [
        "aaaaaaaa000000000000000000000000",
        "aaaaaaaa111111111111111111111111",
        "bbbbbbbb000000000000000000000000",
        "cccccccc000000000000000000000000",
        "dddddddd000000000000000000000000",
    ]
    final, _warnings = unique_host_names([(name, None) for name in names], ids)
    assert len(set(final)) == len(names)
    # A name no other instance shares is kept as it is.
    assert all(final[i] == name for i, name in enumerate(names) if names.count(name) == 1)


def test_groups_are_safe_and_unknown_values_give_none():
    assert group_name("region", "us-east-1") == "lambda_region_us_east_1"
    assert group_name("type", "gpu_1x_a10") == "lambda_type_gpu_1x_a10"
    assert group_name("region", None) is None and group_name("region", "") is None


def test_values_that_could_be_templates():
    assert could_be_template("{{ lookup('pipe', 'id') }}")
    assert could_be_template({"tags": {"k": "{% raw %}"}})
    assert could_be_template(["ok", "{# comment #}"])
    assert not could_be_template({"name": "train-1", "gpus": 8, "tags": {"a": "b"}})


@pytest.mark.parametrize(
    ("changes", "option", "text"),
    [
        ({"statuses": ["sleeping"]}, "statuses", "unknown status sleeping"),
        ({"regions": ["us-east-1", ""]}, "regions", "list of non-empty strings"),
        ({"hostnames": ["name", "address"]}, "hostnames", "'address' is none of"),
        ({"connect_with": "ipv6"}, "connect_with", "not one of ip"),
        ({"tags": {"team": ["a"]}}, "tags", "dictionary of tag keys"),
        ({"hostvars_prefix": ""}, "hostvars_prefix", "must not be empty"),
        ({"hostvars_prefix": "bad prefix-"}, "hostvars_prefix", "is not valid"),
        ({"hostvars_prefix": "5"}, "hostvars_prefix", "is not valid"),
        ({"request_timeout": float("nan")}, "request_timeout", "finite"),
        ({"request_timeout": float("inf")}, "request_timeout", "finite"),
        ({"request_timeout": 0}, "request_timeout", "greater than 0"),
    ],
)
def test_bad_settings_name_the_option(changes, option, text):
    with pytest.raises(InvalidParameter) as info:
        settings(**changes)
    assert info.value.param == option and text in info.value.detail


def test_settings_are_normalised():
    found = settings(hostnames=[], tags={"spot": True, "team": None}, statuses=["active", "booting"])
    assert found["hostnames"] == ["name", "id"] and found["tags"] == {"spot": "true", "team": None}
    assert found["statuses"] == frozenset({"active", "booting"}) and found["prefix"] == "lambda_"
    assert settings(hostnames=["{{ lambda_name }}-x"])["hostnames"] == ["{{ lambda_name }}-x"]


@pytest.mark.parametrize(
    ("config", "option", "text"),
    [
        ({"regoins": ["us-east-1"]}, "regoins", "there is no such option (the options are listed by ansible-doc"),
        ({"strict": "perhaps"}, "strict", "expected a boolean (true or false), got 'perhaps'."),
        ({"hostvars_prefix": 5}, "hostvars_prefix", "expected a string, got 5."),
    ],
)
def test_raw_values_that_ansible_would_convert_silently_are_refused(config, option, text):
    with pytest.raises(InvalidParameter) as info:
        check_raw_config(config, [*OPTIONS, "plugin"], "lambdalabs.cloud.lambda_cloud")
    assert info.value.param == option and info.value.detail.startswith(text)


def test_raw_values_that_are_fine_pass():
    config = {"plugin": "lambdalabs.cloud.lambda_cloud", "api_token": "k", "strict": "yes", "hostvars_prefix": "x_"}
    check_raw_config(config, OPTIONS, "lambdalabs.cloud.lambda_cloud")
