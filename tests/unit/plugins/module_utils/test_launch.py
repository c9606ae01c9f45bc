# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch planning: candidates in order of preference, failover limits, and how outcomes are worded."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch import (
    LaunchOutcome,
    describe_attempts,
    describe_capacity,
    launch_candidates,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch_request import confirm_timeout
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def itype(name, gpus, price, *regions):
    return {
        "name": name,
        "specs": {"gpus": gpus},
        "price_cents_per_hour": price,
        "regions_with_capacity_available": [{"name": r} for r in regions],
    }


TYPES = [
    itype("gpu_8x_h100_sxm5", 8, 2392),
    itype("gpu_1x_h100_pcie", 1, 249, "us-east-1"),
    itype("gpu_1x_a100_sxm4", 1, 129, "us-west-2", "us-east-1"),
]


def test_pairs_follow_the_order_of_types_then_regions():
    found = launch_candidates(TYPES, ["gpu_1x_a100_sxm4", "gpu_1x_h100_pcie"], ["us-east-1", "us-west-2"])
    assert found.pairs == [
        ("gpu_1x_a100_sxm4", "us-east-1"),
        ("gpu_1x_a100_sxm4", "us-west-2"),
        ("gpu_1x_h100_pcie", "us-east-1"),
        ("gpu_1x_h100_pcie", "us-west-2"),
    ]
    assert found.available == [
        ("gpu_1x_a100_sxm4", "us-east-1"),
        ("gpu_1x_a100_sxm4", "us-west-2"),
        ("gpu_1x_h100_pcie", "us-east-1"),
    ]
    assert found.excluded == {}


def test_without_regions_every_region_with_capacity_is_eligible_in_the_api_order():
    found = launch_candidates(TYPES, ["gpu_1x_a100_sxm4"], None)
    assert found.pairs == found.available == [("gpu_1x_a100_sxm4", "us-west-2"), ("gpu_1x_a100_sxm4", "us-east-1")]


def test_limits_remove_types_before_any_launch_so_failover_never_downgrades_below_them():
    wanted = ["gpu_8x_h100_sxm5", "gpu_1x_h100_pcie", "gpu_1x_a100_sxm4"]
    found = launch_candidates(TYPES, wanted, ["us-east-1"], min_gpus=8)
    assert found.pairs == [("gpu_8x_h100_sxm5", "us-east-1")] and found.available == []
    assert set(found.excluded) == {"gpu_1x_h100_pcie", "gpu_1x_a100_sxm4"}
    assert "fewer than min_gpus=8" in found.excluded["gpu_1x_a100_sxm4"]
    cheap = launch_candidates(TYPES, wanted, ["us-east-1"], max_price_cents_per_hour=200)
    assert cheap.available == [("gpu_1x_a100_sxm4", "us-east-1")]
    assert "more than max_price_cents_per_hour=200" in cheap.excluded["gpu_8x_h100_sxm5"]


def test_capacity_and_attempts_are_described_per_pair():
    assert describe_capacity(TYPES, ["gpu_8x_h100_sxm5", "gpu_1x_h100_pcie", "gpu_8x_h100_sxm5"]) == (
        "gpu_8x_h100_sxm5: no region; gpu_1x_h100_pcie: us-east-1"
    )
    attempts = [
        {"instance_type": "a", "region": "r1", "result": "insufficient-capacity", "tries": 1},
        {"instance_type": "a", "region": "r2", "result": "no-capacity", "tries": 3},
    ]
    assert describe_attempts(attempts) == "a in r1: insufficient-capacity, a in r2: no-capacity"
    assert describe_attempts([]) == "no pair"


def test_outcomes_say_what_happened():
    where = {"instance_type": "gpu_1x_a10", "region": "us-east-1"}
    assert LaunchOutcome("i1", "launched").describe("n", where) == ("launched", "instance n (gpu_1x_a10 in us-east-1)")
    verb, text = LaunchOutcome("i1", "recovered", seconds_to_appear=12.5).describe("n", where)
    assert verb == "launched" and "its launch answer was lost" in text and "12.5 s later" in text
    verb, text = LaunchOutcome("i1", "replaced", terminated="i2").describe("n", where)
    assert "terminated this run's duplicate i2 and adopted i1" in text
    verb, text = LaunchOutcome("i1", "adopted").describe("n", where)
    assert verb == "adopted" and "instead of launching another" in text
    assert LaunchOutcome("i", "adopted").created is False
    assert all(LaunchOutcome("i", how).created for how in ("launched", "recovered", "replaced"))


def test_the_confirm_window_is_the_default_or_the_floor_and_a_shorter_one_names_the_floor():
    assert confirm_timeout({}) == 180  # request_timeout 30: the floor is 120
    assert confirm_timeout({"request_timeout": 60}) == 240  # unset, it grows with the floor
    assert confirm_timeout({"request_timeout": 2, "launch_confirm_timeout": 10}) == 10
    with pytest.raises(InvalidParameter) as refused:
        confirm_timeout({"request_timeout": 5, "launch_confirm_timeout": 19})
    assert str(refused.value).startswith("launch_confirm_timeout: must be at least 20 s (4 times request_timeout")


def test_a_string_price_from_the_api_is_read_as_cents_for_the_limits():
    types = [itype("gpu_1x_a10", 1, "75", "us-east-1"), itype("gpu_1x_a100_sxm4", 1, "129.4", "us-east-1")]
    found = launch_candidates(types, ["gpu_1x_a10", "gpu_1x_a100_sxm4"], None, max_price_cents_per_hour=100)
    assert found.available == [("gpu_1x_a10", "us-east-1")]
    assert found.excluded == {"gpu_1x_a100_sxm4": "129 cents per hour, more than max_price_cents_per_hour=100"}
