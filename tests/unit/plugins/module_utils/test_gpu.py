# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nvidia-smi output into GPU facts and utilization samples, and the one-line summary of a node."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import (
    gpu_facts,
    node_summary,
    parse_gpus,
    parse_utilization,
    with_persistence,
)

QUERY = (
    "0, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, Enabled, GPU-00000000-4e1f, 00000000:00:00.0\n"
    "1, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, Disabled, GPU-00000001-4e1f, 00000000:01:00.0\n"
)
SUMMARY = "| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |"


def test_query_lines_become_gpus_and_other_lines_are_skipped():
    gpus = parse_gpus(QUERY + "Some warning line\n2, short\n")
    assert len(gpus) == 2
    assert gpus[1] == {
        "index": 1,
        "name": "NVIDIA A100-SXM4-80GB",
        "memory_mib": 81920,
        "driver_version": "535.129.03",
        "persistence_mode": False,
        "uuid": "GPU-00000001-4e1f",
        "pci_bus_id": "00000000:01:00.0",
    }
    assert parse_gpus("0, A10, [N/A], 1, Enabled, u, p")[0]["memory_mib"] == 0


def test_facts_with_gpus():
    facts = gpu_facts({"rc": 0, "stdout": QUERY}, {"stdout": SUMMARY}, expected="2")
    assert facts["present"] and facts["count"] == 2 and facts["expected_count"] == 2
    assert facts["model"] == "NVIDIA A100-SXM4-80GB" and facts["models"] == ["NVIDIA A100-SXM4-80GB"]
    assert facts["memory_total_mib"] == 163840 and facts["cuda_version"] == "12.2"
    assert facts["persistence_mode"] is False and facts["error"] is None
    on = with_persistence(facts, True)
    assert on["persistence_mode"] is True and all(gpu["persistence_mode"] for gpu in on["gpus"])


def test_facts_without_gpus_say_why():
    none = gpu_facts({"rc": 6, "stdout": "No devices were found", "stderr": ""}, {"skipped": True})
    assert not none["present"] and none["error"] == "No devices were found" and none["cuda_version"] is None
    missing = gpu_facts({"rc": 2, "stdout": "", "stderr": "", "msg": "[Errno 2] No such file"}, None, None, "smi")
    assert missing["error"] == "smi was not found" and missing["expected_count"] is None
    silent = gpu_facts({"rc": 9, "stdout": "", "stderr": ""}, None)
    assert silent["error"] == "nvidia-smi listed no GPU (exit status 9)"
    assert with_persistence(silent, True)["persistence_mode"] is None


def test_utilization_lines_become_percentages():
    assert parse_utilization("97\n 3 %\n[N/A]\n\n") == [97, 3]


def test_node_summary_is_one_line_with_the_gpus_or_why_there_are_none():
    facts = gpu_facts({"rc": 0, "stdout": QUERY}, {"stdout": SUMMARY}, 2)
    assert node_summary("trainer-1", {"gpu": facts, "hostname": "10-0-0-1"}) == (
        "trainer-1: 2x NVIDIA A100-SXM4-80GB, 81920 MiB each, driver 535.129.03, CUDA 12.2. Hostname 10-0-0-1."
    )
    none = gpu_facts({"rc": 2, "stdout": "", "stderr": ""}, None)
    assert node_summary("cpu", {"gpu": none, "hostname": "cpu"}) == (
        "cpu: no working GPU (nvidia-smi was not found). Hostname cpu."
    )
