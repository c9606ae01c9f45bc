# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rules: the form the API stores, comparing as sets, and whether SSH still gets in."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._firewall import (
    allows_ssh,
    normalize_network,
    normalize_rules,
    same_rules,
    sorted_rules,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def rule(**fields):
    return {
        "protocol": "tcp",
        "port": None,
        "port_range": None,
        "source_network": "0.0.0.0/0",
        "description": "",
    } | fields


def test_rules_take_the_form_the_api_stores():
    rules = normalize_rules(
        "rules",
        [
            rule(port=22, description="SSH"),
            rule(protocol="icmp", source_network="203.0.113.4"),
            rule(protocol="all", source_network="10.0.0.0/8"),
            rule(protocol="udp", port_range=[4000, 4010]),
        ],
    )
    assert rules == [
        {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"},
        {"protocol": "icmp", "source_network": "203.0.113.4/32", "description": ""},
        {"protocol": "all", "port_range": [1, 65535], "source_network": "10.0.0.0/8", "description": ""},
        {"protocol": "udp", "port_range": [4000, 4010], "source_network": "0.0.0.0/0", "description": ""},
    ]


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        (rule(), "rules[0].port_range"),
        (rule(protocol="icmp", port=1), "rules[0].port_range"),
        (rule(port_range=[5, 1]), "rules[0].port_range"),
        (rule(port_range=[1]), "rules[0].port_range"),
        (rule(port=0), "rules[0].port_range"),
        (rule(port=22, source_network="1.2.3.4/24"), "rules[0].source_network"),
        (rule(port=22, source_network="::/0"), "rules[0].source_network"),
        (rule(port=22, source_network="0.0.0.0/0\n"), "rules[0].source_network"),
        (rule(port=22, description="x" * 129), "rules[0].description"),
        (rule(protocol="sctp", port=22), "rules[0].protocol"),
    ],
)
def test_bad_rules_name_the_field(bad, param):
    with pytest.raises(InvalidParameter) as info:
        normalize_rules("rules", [bad])
    assert info.value.param == param


def test_rules_compare_as_sets_with_their_descriptions():
    a = normalize_rules("r", [rule(port=22), rule(port=8888, source_network="203.0.113.0/24")])
    b = normalize_rules("r", [rule(port_range=[8888, 8888], source_network="203.0.113.0/24"), rule(port=22)])
    assert same_rules(a, b) and sorted_rules(a) == sorted_rules(b)
    assert not same_rules(a, normalize_rules("r", [rule(port=22)]))
    assert not same_rules(a, normalize_rules("r", [rule(port=22, description="x"), rule(port=8888)]))


def test_ssh_is_allowed_by_any_rule_over_tcp_port_22():
    assert allows_ssh(normalize_rules("r", [rule(port_range=[20, 30], source_network="203.0.113.0/24")]))
    assert allows_ssh(normalize_rules("r", [rule(protocol="all")]))
    assert not allows_ssh(normalize_rules("r", [rule(port=8888), rule(protocol="udp", port=22)]))
    assert not allows_ssh([])


def test_networks():
    assert normalize_network("n", " 10.1.0.0/16 ") == "10.1.0.0/16"
    assert normalize_network("n", "127.0.0.1") == "127.0.0.1/32"


def test_rules_that_are_not_rules_are_named():
    with pytest.raises(InvalidParameter, match=r"rules\[1\]: must be a rule .*got 'tcp/22'"):
        normalize_rules("rules", [rule(port=22), "tcp/22"])
    with pytest.raises(InvalidParameter, match="rules: must be a list of rules, got str"):
        normalize_rules("rules", "tcp/22")
