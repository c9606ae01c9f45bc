# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting on a fake clock: one instance, and many at once with one read per poll."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import (
    InstanceLost,
    PermanentConnectionError,
    WaitTimeout,
    call_until_connected,
    duration,
    instance_progress_line,
    permanent_ssh_problem,
    poll_intervals,
    progress_line,
    reached,
    sampling_line,
    wait_for_instance,
    wait_for_instances,
)
from ansible_collections.lambdalabs.cloud.tests.unit.plugins.module_utils.fake_clock import FakeClock


def reads(*statuses):
    """A read function that answers these statuses in turn (None: the instance is gone), then the last forever."""
    answers = itertools.chain(statuses, itertools.repeat(statuses[-1]))
    count = {"reads": 0}

    def read():
        count["reads"] += 1
        status = next(answers)
        return None if status is None else {"id": "i1", "status": status}

    return read, count


def test_poll_intervals_are_a_second_by_default_and_grow_to_their_cap():
    # A node that becomes active is seen within 1 s, at the API's one request per second.
    assert list(itertools.islice(poll_intervals(), 4)) == [1.0, 1.0, 1.0, 1.0]
    assert list(itertools.islice(poll_intervals(0.5, 2.0, 3.0), 5)) == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("status", "target", "expected"),
    [
        ("active", "active", True),
        ("booting", "active", False),
        ("unhealthy", "active", None),
        ("terminating", "active", None),
        ("preempted", "active", None),
        (None, "active", None),
        ("terminated", "gone", True),
        (None, "gone", True),
        ("terminating", "gone", False),
    ],
)
def test_reached(status, target, expected):
    assert reached(None if status is None else {"status": status}, target) is expected


def test_waits_until_active_and_counts_polls():
    clock = FakeClock(0.0)
    read, count = reads("booting", "booting", "active")
    instance, polls = wait_for_instance(read, "i1", "active", 60, clock=clock, sleep=clock.sleep)
    assert instance["status"] == "active" and polls == 3 == count["reads"]
    assert clock.now == pytest.approx(3.0)  # a read every second


def test_times_out_with_the_last_status_and_never_sleeps_past_the_deadline():
    clock = FakeClock(0.0)
    read, _count = reads("booting")
    with pytest.raises(WaitTimeout) as info:
        wait_for_instance(read, "i1", "active", 10, clock=clock, sleep=clock.sleep)
    assert info.value.status == "booting" and "still 'booting' after 10 s" in str(info.value)
    assert clock.now == pytest.approx(10)


def test_an_instance_that_ends_is_lost_and_one_that_vanishes_is_gone():
    clock = FakeClock(0.0)
    with pytest.raises(InstanceLost) as info:
        wait_for_instance(reads("booting", "terminating")[0], "i1", "active", 60, clock=clock, sleep=clock.sleep)
    assert info.value.status == "terminating"
    gone, _polls = wait_for_instance(reads("terminating", None)[0], "i1", "gone", 60, clock=clock, sleep=clock.sleep)
    assert gone is None


def test_a_group_is_read_once_per_poll_and_each_node_gets_its_time():
    clock = FakeClock(0.0)
    timeline = [
        [{"id": "a", "status": "booting"}, {"id": "b", "status": "booting"}],
        [{"id": "a", "status": "active"}, {"id": "b", "status": "booting"}],
        [{"id": "a", "status": "active"}, {"id": "b", "status": "active"}],
    ]
    reads_done = []

    def read_all():
        reads_done.append(clock.now)
        return timeline[min(len(reads_done) - 1, len(timeline) - 1)]

    report = wait_for_instances(read_all, ["a", "b", "a"], "active", 60, clock=clock, sleep=clock.sleep)
    assert report.polls == 3 == len(reads_done)
    assert {k: (n.outcome, n.seconds) for k, n in report.nodes.items()} == {
        "a": ("reached", 1.0),
        "b": ("reached", 2.0),
    }
    assert report.done


@pytest.mark.parametrize("status", ["unhealthy", "terminated", None])
def test_a_group_wait_ends_at_the_first_node_that_waiting_cannot_bring(status):
    clock = FakeClock(0.0)
    timeline = [
        [{"id": "a", "status": "booting"}, {"id": "b", "status": "booting"}],
        [{"id": "a", "status": "booting"}] + ([{"id": "b", "status": status}] if status else []),
    ]
    reads_done = []

    def read_all():
        reads_done.append(clock.now)
        return timeline[min(len(reads_done) - 1, len(timeline) - 1)]

    report = wait_for_instances(read_all, ["a", "b"], "active", 1800, clock=clock, sleep=clock.sleep)
    # Within one poll of the change, not at the 1800 s timeout; a is left as it was, without a verdict.
    assert report.polls == 2 and clock.now == 1.0
    assert {k: (n.outcome, n.status) for k, n in report.nodes.items()} == {
        "a": ("waiting", "booting"),
        "b": ("lost", status),
    }
    assert not report.done and [n.instance_id for n in report.with_outcome("lost")] == ["b"]


def test_a_group_times_out_without_raising():
    clock = FakeClock(0.0)
    report = wait_for_instances(
        lambda: [{"id": "a", "status": "booting"}], ["a"], "active", 7, clock=clock, sleep=clock.sleep
    )
    assert report.nodes["a"].outcome == "timeout" and report.nodes["a"].status == "booting"
    assert clock.now == pytest.approx(7) and report.seconds == pytest.approx(7)


def test_an_empty_group_reads_nothing():
    report = wait_for_instances(lambda: pytest.fail("read"), [], "active", 60)
    assert report.polls == 0 and report.done


def test_waiting_for_gone_counts_vanished_instances():
    clock = FakeClock(0.0)
    report = wait_for_instances(lambda: [], ["a"], "gone", 60, clock=clock, sleep=clock.sleep)
    assert report.done and report.polls == 1 and clock.now == 0


class Refused(Exception):
    pass


def connects_after(failures):
    """A call that is refused ``failures`` times, then answers "facts"."""
    count = {"calls": 0}

    def call():
        count["calls"] += 1
        if count["calls"] <= failures:
            raise Refused(f"refused {count['calls']}")
        return "facts"

    return call, count


def test_call_until_connected_tries_every_interval_and_says_how_long_it_waited():
    clock = FakeClock(0.0)
    call, count = connects_after(3)
    resets = []
    assert call_until_connected(call, 60, (Refused,), clock, clock.sleep, between=resets.append) == ("facts", 3.0)
    assert count["calls"] == 4 and [str(error) for error in resets] == ["refused 1", "refused 2", "refused 3"]


def test_call_until_connected_raises_the_last_refusal_at_the_deadline_without_sleeping_past_it():
    clock = FakeClock(0.0)
    call, count = connects_after(1000)
    with pytest.raises(Refused, match="refused 4"):
        call_until_connected(call, 2.5, (Refused,), clock, clock.sleep)
    assert clock.now == 2.5 and count["calls"] == 4


def test_call_until_connected_with_no_time_tries_once_and_lets_other_errors_through():
    clock = FakeClock(0.0)
    call, count = connects_after(1)
    with pytest.raises(Refused):
        call_until_connected(call, 0, (Refused,), clock, clock.sleep)
    assert count["calls"] == 1 and clock.now == 0

    def broken():
        raise KeyError("not a connection problem")

    with pytest.raises(KeyError):
        call_until_connected(broken, 60, (Refused,), clock, clock.sleep)
    assert clock.now == 0


CHANGED_KEY = """Failed to connect to the host via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
Offending ED25519 key in /home/me/.ssh/known_hosts:3
  remove with:
  ssh-keygen -f "/home/me/.ssh/known_hosts" -R "127.18.0.2"
Host key for 127.18.0.2 has changed and you have requested strict checking.
Host key verification failed."""


def test_a_changed_host_key_is_permanent_and_names_the_known_hosts_line():
    problem = permanent_ssh_problem(CHANGED_KEY)
    assert problem.startswith("the node's host key differs from the one in line 3 of /home/me/.ssh/known_hosts")
    assert "ssh-keygen -f /home/me/.ssh/known_hosts -R 127.18.0.2" in problem and "\n" not in problem
    assert "in the controller's known_hosts" in permanent_ssh_problem("Host key verification failed.")


def test_a_refused_key_is_permanent_and_names_the_key_file():
    problem = permanent_ssh_problem("ubuntu@127.18.0.2: Permission denied (publickey).", "/keys/wrong")
    assert problem.startswith("the node refused the SSH key /keys/wrong (Permission denied (publickey))")
    assert "(no key file given)" in permanent_ssh_problem("Permission denied (publickey,password).")


@pytest.mark.parametrize(
    "message",
    ["ssh: connect to host 127.18.0.2 port 22: Connection refused", "Connection timed out during banner exchange", ""],
)
def test_a_node_that_does_not_answer_yet_is_not_permanent(message):
    assert permanent_ssh_problem(message, "/keys/k") is None


def test_call_until_connected_stops_at_the_first_permanent_failure():
    clock = FakeClock(0.0)
    call, count = connects_after(1000)
    with pytest.raises(PermanentConnectionError, match="fix refused 2"):
        call_until_connected(
            call, 600, (Refused,), clock, clock.sleep, permanent=lambda e: f"fix {e}" if str(e) == "refused 2" else None
        )
    assert count["calls"] == 2 and clock.now == 1.0


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (0.4, 40, 60, 130, 1800, 3900, 7200)] == [
        "0 s",
        "40 s",
        "1 min",
        "2 min 10 s",
        "30 min",
        "1 h 5 min",
        "2 h",
    ]


def test_progress_lines_count_the_nodes_there_and_the_others_by_status():
    nodes = [{"outcome": "reached"}] * 3 + [{"status": "booting"}] * 4 + [{"status": "unhealthy"}, {}]
    assert (
        progress_line(nodes, "active", 130, 1800) == "3/9 active, 4 booting, 1 gone, 1 unhealthy, 2 min 10 s of 30 min"
    )


def test_sampling_lines_give_the_peak_so_far():
    assert sampling_line("llm-1", [[0, 3], [7, 1]], 6, 600, 1500) == (
        "llm-1: 2/6 utilization samples (peak 7%), 10 min of 25 min"
    )
    assert (
        sampling_line("llm-1", [[]], 6, 5, 1500)
        == "llm-1: 1/6 utilization samples (no utilization read), 5 s of 25 min"
    )


def test_instance_progress_lines_name_the_instance_its_status_and_the_goal():
    line = instance_progress_line({"name": "trainer-1"}, "booting", 130, 1800)
    assert line == "trainer-1: booting, waiting until active, 2 min 10 s so far (wait_timeout 30 min)"
    gone = instance_progress_line({"id": "i-1", "state": "absent"}, None, 5, 300)
    assert gone == "i-1: status not read, waiting until terminated, 5 s so far (wait_timeout 5 min)"
    both = instance_progress_line({"name": "a", "id": "i-2", "state": "restarted"}, "active", 0, 60)
    assert both.startswith("a (i-2): active, waiting until active again")


def test_a_control_socket_path_too_long_is_permanent():
    said = 'unix_listener: path "/tmp/a/very/long/home/.ansible/cp/762afc49b8.VGib" too long for Unix domain socket'
    problem = permanent_ssh_problem(said)
    assert "/tmp/a/very/long/home/.ansible/cp/762afc49b8.VGib" in problem and "control_path_dir" in problem
    assert permanent_ssh_problem("Connection refused") is None
