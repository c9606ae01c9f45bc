# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the integration tests: the simulator as a subprocess, and Ansible runs against it.

``simulator`` gives a freshly reset simulator (one per pytest worker, started with ``--boot-seconds 1
--terminate-seconds 1``), ``account`` the same with the SSH key "deploy" in it; ``simulator_factory`` starts extra
ones with custom flags; ``ansible`` runs playbooks, ansible-inventory and modules against ``simulator``. The helpers
are in support.py (among them ``node_cluster``, the three SSH nodes of a module-scoped fixture), the simulator's
client in ``tests/simulator/client.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Callable

import pytest
from xdist.scheduler import LoadScopeScheduling

from tests.integration.support import Ansible, add_deploy_key
from tests.simulator.client import DEFAULT_API_KEY, Simulator

# The files whose tests share one module-scoped setup (a cluster of SSH nodes, a built context) and run in order.
ONE_WORKER_FILES = frozenset(
    {"test_execution_environment.py", "test_node_fabric.py", "test_real_nodes.py", "test_training_cluster.py"}
)


class OneTestOrOneFile(LoadScopeScheduling):
    """Each test is a unit of work of its own, except the tests of ONE_WORKER_FILES: each of those files is one unit,
    which one worker runs in order. loadscope hands out the largest units first, so the node clusters start at once.
    """

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return path if PurePosixPath(path).name in ONE_WORKER_FILES else nodeid


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` schedules with OneTestOrOneFile.

    ``--dist loadfile`` leaves workers idle while the longest files finish, and ``--dist loadgroup`` cannot mark
    node ids under pytest 9.2.
    """
    if config.getoption("dist") == "loadscope":
        return OneTestOrOneFile(config, log)
    return None


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[Simulator]:
    """One simulator for the whole session, with short lifecycle phases."""
    simulator = Simulator("--boot-seconds", "1", "--terminate-seconds", "1").start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def simulator(simulator_server: Simulator) -> Simulator:
    """The session simulator, reset to an empty account before the test."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def account(simulator: Simulator) -> Simulator:
    """The reset simulator with the SSH key "deploy" (support.PUBLIC_KEY) in its account, and no request recorded."""
    add_deploy_key(simulator)
    simulator.clear_requests()
    return simulator


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    """Start extra simulators: ``simulator_factory("--launch-interval", "5", api_key="k")``; stopped at teardown."""
    started: list[Simulator] = []

    def start(*args: str, api_key: str = DEFAULT_API_KEY) -> Simulator:
        simulator = Simulator(*args, api_key=api_key).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def ansible(simulator, tmp_path) -> Ansible:
    return Ansible(simulator, tmp_path)
