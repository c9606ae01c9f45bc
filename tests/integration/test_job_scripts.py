# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scripts a cluster job's nodes run (lambdalabs.cloud.cluster_job), run by a real shell: the job starts
detached, reads its env file, reports its status and log, and stops with its whole process group."""

from __future__ import annotations

import subprocess
import time

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._job import (
    parse_status,
    start_script,
    status_script,
    stop_script,
)


def sh(script, cwd):
    return subprocess.run(
        ["/bin/sh"], input=script, capture_output=True, text=True, env={"HOME": str(cwd)}, check=False
    )


def wait_for_status(home, directory="run", lines=5):
    for _attempt in range(200):
        rc, tail = parse_status(sh(status_script(directory, lines), home).stdout)
        if rc is not None:
            return rc, tail
        time.sleep(0.02)
    raise AssertionError("the job did not end")


def test_a_job_runs_detached_with_the_env_file_and_reports_its_status_and_log(tmp_path):
    env = tmp_path / "env"
    env.write_text('export NODE_RANK="1"\nexport NNODES="2"\n')
    command = 'echo "rank $NODE_RANK"; echo \'quotes " and $dollars\'; exit 7'
    started = sh(start_script(command, "run", str(env), nodes=2), tmp_path)
    assert started.returncode == 0 and started.stdout == "started\n", started
    rc, tail = wait_for_status(tmp_path)
    assert rc == 7 and tail == ["rank 1", 'quotes " and $dollars']
    assert (tmp_path / "run" / "job.log").read_text() == 'rank 1\nquotes " and $dollars\n'


def test_a_failing_pipeline_fails_the_job(tmp_path):
    sh(start_script("false | cat", "run", "/nonexistent"), tmp_path)
    assert wait_for_status(tmp_path)[0] == 1


@pytest.mark.parametrize(("env_text", "said"), [(None, "cannot be read"), ('export NNODES="3"\n', "written for 3")])
def test_a_job_on_every_node_does_not_start_with_a_missing_or_stale_env_file(tmp_path, env_text, said):
    env = tmp_path / "env"
    if env_text:
        env.write_text(env_text)
    started = sh(start_script("touch ran", "run", str(env), nodes=2), tmp_path)
    assert started.returncode == 3 and said in started.stderr and "lambdalabs.cloud.train" in started.stderr
    assert not (tmp_path / "run").exists()


def test_a_running_job_shows_no_status_and_stop_ends_its_whole_group(tmp_path):
    sh(start_script("sleep 30 & sleep 30; wait", "run", "/nonexistent"), tmp_path)
    for _attempt in range(100):
        if (tmp_path / "run" / "pid").exists():
            break
        time.sleep(0.02)
    assert parse_status(sh(status_script("run", 5), tmp_path).stdout)[0] is None
    sh(stop_script("run"), tmp_path)
    rc, _tail = wait_for_status(tmp_path)
    assert rc == 143  # SIGTERM
    pid = (tmp_path / "run" / "pid").read_text().strip()
    # Every process of the group ends (a zombie waits only for its reaper, which is not the job's); SIGTERM is handled
    # by each process in its own time, which a busy machine stretches.
    deadline = time.monotonic() + 20
    while True:
        states = subprocess.run(["ps", "-o", "stat=", "-g", pid], capture_output=True, text=True, check=False).stdout
        if all(state.startswith("Z") for state in states.split()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all(state.startswith("Z") for state in states.split()), states
