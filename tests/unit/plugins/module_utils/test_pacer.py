# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch pacer on a fake clock: turns are kept apart by the interval, through the lock file."""

from __future__ import annotations

import os

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._pacer import LaunchPacer
from ansible_collections.lambdalabs.cloud.tests.unit.plugins.module_utils.fake_clock import FakeClock


@pytest.fixture
def clock():
    return FakeClock(1_000_000.0)


def pacer(tmp_path, clock, interval=12.0, url="https://cloud.lambda.ai/api/v1"):
    return LaunchPacer(url, interval, directory=str(tmp_path), clock=clock, sleep=clock.sleep)


def test_turns_are_kept_an_interval_apart(tmp_path, clock):
    first = pacer(tmp_path, clock)
    with first.turn():
        pass
    assert clock.sleeps == []
    clock.now += 5
    with pacer(tmp_path, clock).turn():  # another run of the same user: same lock file
        pass
    assert clock.sleeps == [pytest.approx(7.0)]
    assert os.stat(first.path).st_mode & 0o777 == 0o600


def test_other_endpoints_are_paced_apart(tmp_path, clock):
    with pacer(tmp_path, clock).turn():
        pass
    with pacer(tmp_path, clock, url="http://127.0.0.1:8080/api/v1").turn():
        pass
    assert clock.sleeps == []


@pytest.mark.parametrize("stamp", ["garbage", "nan", "inf", "-inf", "9999999999999"])
def test_an_unreadable_or_future_stamp_counts_as_no_launch(tmp_path, clock, stamp):
    first = pacer(tmp_path, clock)
    with open(first.path, "w") as handle:
        handle.write(stamp)
    with first.turn():
        pass
    assert clock.sleeps == []


def test_the_stamp_is_written_even_when_the_turn_fails(tmp_path, clock):
    with pytest.raises(RuntimeError), pacer(tmp_path, clock).turn():
        raise RuntimeError("launch failed")
    clock.now += 1
    with pacer(tmp_path, clock).turn():
        pass
    assert clock.sleeps == [pytest.approx(11.0)]


def test_wait_before():
    paced = LaunchPacer("u", 12.0, directory="/tmp")
    assert paced.wait_before(last=100, now=105) == 7
    assert paced.wait_before(last=100, now=113) == 0
    assert paced.wait_before(last=200, now=100) == 0  # a stamp from the future
    assert paced.wait_before(last=100.001, now=100.0) == 12  # the rounded stamp another run just wrote
    assert paced.wait_before(last=float("nan"), now=100.0) == 0
