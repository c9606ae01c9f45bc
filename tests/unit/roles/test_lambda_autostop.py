# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watchdog that the cluster role runs on the head node: its decisions, which are pure."""

from __future__ import annotations

import http.server
import importlib.util
import threading
from pathlib import Path

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import EXISTING_STATUSES

SOURCE = Path(__file__).resolve().parents[3] / "roles" / "cluster" / "files" / "lambda_autostop.py"
SPEC = importlib.util.spec_from_file_location("lambda_autostop", SOURCE)
assert SPEC is not None and SPEC.loader is not None
watchdog = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(watchdog)


def test_nvidia_smi_utilization_is_read_and_anything_else_is_no_reading():
    assert watchdog.parse_utilization("0\n3\n 100 \n") == [0.0, 3.0, 100.0]
    assert watchdog.parse_utilization("12 %\n") == [12.0]
    for bad in ("", "\n", "[N/A]\n", "NaN\n", "inf\n", "-5\n", "0\nNo devices were found\n", None):
        assert watchdog.parse_utilization(bad) is None, bad


def test_all_idle_starts_a_stretch_that_stops_after_the_minutes():
    samples = {"a-1": [0.0, 2.0], "a-2": [9.0]}
    assert watchdog.decide(samples, 10, 1, None, 1000.0)[:2] == ("idle", 1000.0)
    verdict, since, line = watchdog.decide(samples, 10, 1, 1000.0, 1059.0)
    assert (verdict, since) == ("idle", 1000.0)
    assert line == "idle: 2 node(s) below 10% (peak 9%) for 59 s of 60 s"
    assert watchdog.decide(samples, 10, 1, 1000.0, 1060.0)[:2] == ("stop", 1000.0)


def test_one_busy_gpu_or_one_unread_node_ends_the_stretch():
    verdict, since, line = watchdog.decide({"a-1": [0.0], "a-2": [0.0, 10.0]}, 10, 1, 1000.0, 5000.0)
    assert (verdict, since) == ("busy", None)
    assert line == "busy: a-2 at or above 10% (peak 10%)"
    verdict, since, line = watchdog.decide({"a-1": [0.0], "a-2": None}, 10, 1, 1000.0, 5000.0)
    assert (verdict, since, line) == ("unknown", None, "could not read a-2: not idle")
    assert watchdog.decide({}, 10, 1, 1000.0, 5000.0)[:2] == ("unknown", None)


def test_only_the_clusters_existing_instances_are_its_members():
    def instance(name, status="active", cluster="a"):
        return {"id": f"id-{name}", "name": name, "status": status, "tags": [{"key": "cluster", "value": cluster}]}

    listed = [instance("a-1"), instance("a-2", "terminated"), instance("b-1", cluster="b"), instance("a-3", "booting")]
    assert [i["name"] for i in watchdog.cluster_instances(listed, "a")] == ["a-1", "a-3"]
    assert watchdog.cluster_instances({"not": "a list"}, "a") == []
    assert watchdog.cluster_instances([None, "x", {"status": "active"}], "a") == []


def test_a_member_the_watchdog_does_not_sample_is_named():
    members = [{"id": "1", "name": "a-1"}, {"id": "2", "name": "a-2"}, {"id": "3"}]
    assert watchdog.unsampled(members, {"1"}) == ["3", "a-2"]
    assert watchdog.unsampled(members, {"1", "2", "3"}) == []


@pytest.mark.parametrize("argv", [["x"], ["x", "run"], ["x", ""]])
def test_an_unknown_command_is_a_usage_error(argv, capsys):
    assert watchdog.main(argv) == 2
    assert "Usage: lambda_autostop.py check|loop|stop" in capsys.readouterr().err


def test_nodes_that_share_a_name_get_their_id_in_the_log():
    nodes = [{"id": "1", "name": "a-1"}, {"id": "2", "name": "a-2"}, {"id": "3", "name": "a-2"}]
    assert watchdog.labels(nodes) == ["a-1", "a-2 (2)", "a-2 (3)"]


def test_an_idle_stretch_survives_only_rounds_in_a_row_with_the_same_threshold_and_nodes():
    state = {"idle_since": 1000.0, "last_round": 1060.0, "basis": "b"}
    assert watchdog.stretch_start(state, "b", 1090.0, 30) == 1000.0
    assert watchdog.stretch_start(state, "other nodes", 1090.0, 30) is None
    assert watchdog.stretch_start(state, "b", 1060.0 + 2 * 30 + 2 * watchdog.SSH_TIMEOUT + 1, 30) is None  # a gap
    assert watchdog.stretch_start(state, "b", 999.0, 30) is None  # the clock went back
    assert watchdog.stretch_start({"idle_since": 1000.0, "basis": "b"}, "b", 1090.0, 30) is None
    assert watchdog.stretch_start({}, "b", 1090.0, 30) is None


@pytest.fixture
def node_files(tmp_path, monkeypatch):
    """The watchdog's files under tmp_path, its sampling and its API calls replaced by what the test says."""
    for name in ("STATE", "NOTICE", "LOG"):
        monkeypatch.setattr(watchdog, name, str(tmp_path / name.lower()))
    readings: dict[str, list[float] | None] = {}
    stopped: list[set[str]] = []
    monkeypatch.setattr(watchdog, "sample", lambda config, node: readings[node["name"]])
    monkeypatch.setattr(watchdog, "terminate", lambda config, ids: stopped.append(ids) or "terminated")
    return readings, stopped, tmp_path


CONFIG = {
    "cluster": "a",
    "minutes": 1,
    "action": "terminate",
    "threshold": 10,
    "interval": 30,
    "nodes": [{"id": "1", "name": "a-1", "local": True}, {"id": "2", "name": "a-2"}],
}


def test_a_round_stops_the_cluster_only_after_a_whole_idle_minute_of_rounds(node_files):
    readings, stopped, tmp_path = node_files
    readings.update({"a-1": [0.0], "a-2": None})
    assert watchdog.check(CONFIG, 1000.0) == "unknown"  # a node it cannot read is never idle
    readings["a-2"] = [0.0]
    assert [watchdog.check(CONFIG, t) for t in (1030.0, 1060.0)] == ["idle", "idle"]
    assert not stopped
    assert watchdog.check(CONFIG, 1090.0) == "stop" and stopped == [{"1", "2"}]
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0].endswith("could not read a-2: not idle")
    assert log[-1].endswith("idle: 2 node(s) below 10% (peak 0%) for 60 s of 60 s; terminated")


def test_a_gap_without_rounds_starts_the_idle_time_again(node_files):
    readings, stopped, _tmp_path = node_files
    readings.update({"a-1": [0.0], "a-2": [0.0]})
    assert watchdog.check(CONFIG, 1000.0) == "idle"
    assert watchdog.check(CONFIG, 100000.0) == "idle"  # after a long gap: a new stretch, not a stop
    assert not stopped


def test_notify_writes_one_notice_per_idle_stretch_and_terminates_nothing(node_files):
    readings, stopped, tmp_path = node_files
    readings.update({"a-1": [0.0], "a-2": [0.0]})
    notify = CONFIG | {"action": "notify"}
    assert [watchdog.check(notify, t) for t in (1000.0, 1030.0, 1060.0, 1090.0)] == ["idle", "idle", "stop", "stop"]
    assert "has been idle for 1 min" in (tmp_path / "notice").read_text() and not stopped
    log = (tmp_path / "log").read_text()
    assert log.count("notice written") == 1


def test_the_api_key_never_follows_a_redirect(tmp_path):
    # urllib sends the Authorization header on to wherever a redirect points; the watchdog refuses every redirect.
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.startswith("/api/v1/"):
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.end_headers()
            else:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"data": []}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = tmp_path / "api-key"
        key.write_text("secret_key\n")
        config = {"api_url": f"http://127.0.0.1:{server.server_port}/api/v1", "key_file": str(key)}
        with pytest.raises(watchdog.urllib.error.HTTPError) as refused:
            watchdog.api(config, "GET", "/instances")
        assert refused.value.code == 302 and "refused" in str(refused.value)
        assert seen == [("/api/v1/instances", "Bearer secret_key")]  # asked once, at the configured URL only
    finally:
        server.shutdown()
        server.server_close()


def test_the_watchdogs_copies_agree_with_the_collection():
    # The watchdog runs on a node with the standard library only, so it spells out what the collection defines:
    # the statuses of a running instance, and the query that the other nodes' keys are restricted to.
    assert set(watchdog.EXISTING) == set(EXISTING_STATUSES)
    role = (SOURCE.parents[1] / "tasks" / "autostop.yml").read_text()
    assert f'restrict,command="{" ".join(watchdog.QUERY)}"' in role
