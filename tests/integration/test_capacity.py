# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capacity playbook: where GPUs are free and at what price, as the simulator's own API says.

Every test runs the collection's playbook with ansible-playbook against the simulator, as ``-e`` gives its variables
(text), and compares the table it prints with what GET /instance-types answers: the prices, GPUs and capacity are
read from the simulator, never written here. Bad variables come first: they fail, naming the variable, before the
API is read.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.doc_examples import examples as doc_examples
from tests.integration.support import COLLECTION, import_playbook, role_task

HEADER = ["Type", "GPUs", "GPU memory", "$/h", "Regions with capacity"]
# Capacity of the tests' own, over the simulator's default: a type in two regions, one in none, one newly in one.
CAPACITY = {
    "gpu_8x_h100_sxm5": ["us-south-1", "us-east-1"],
    "gpu_8x_a100": [],
    "gpu_1x_h100_pcie": ["us-west-3"],
}


def capacity(ansible, *variables: str):
    """The capacity playbook with ``-e name=value`` for each of ``variables``."""
    args = [part for variable in variables for part in ("-e", variable)]
    return ansible.playbook(plays=import_playbook("capacity"), args=args)


def catalogue(sim) -> list[dict[str, Any]]:
    """The instance types as the simulator's API gives them, cheapest first, each with its regions with capacity."""
    status, data = sim.api("GET", "/instance-types")
    assert status == 200, data
    sim.clear_requests()
    types = [
        item["instance_type"] | {"regions": sorted(r["name"] for r in item["regions_with_capacity_available"])}
        for item in data["data"].values()
    ]
    return sorted(types, key=lambda t: (t["price_cents_per_hour"], t["name"]))


def expected_row(instance_type: dict[str, Any]) -> list[str]:
    memory = re.search(r"(\d+) GB", instance_type["gpu_description"])
    return [
        instance_type["name"],
        str(instance_type["specs"]["gpus"]),
        f"{memory[1]} GB",
        f"{instance_type['price_cents_per_hour'] // 100}.{instance_type['price_cents_per_hour'] % 100:02d}",
        ", ".join(instance_type["regions"]) or "none",
    ]


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of each line of the table, header included; every column checked for alignment on the way."""
    header = lines[0]
    starts = [header.index(name) for name in HEADER]
    rows = []
    for line in lines:
        assert line == line.rstrip() and "\n" not in line, line
        cells = re.split(r" {2,}", line.strip())
        assert len(cells) == len(HEADER), (line, lines)
        position = 0
        for column, cell in enumerate(cells):
            at = line.index(cell, position)
            if column in (1, 3):  # numbers: aligned on the right, under the end of their heading
                assert at + len(cell) == starts[column] + len(HEADER[column]), (column, lines)
            else:
                assert at == starts[column], (column, lines)
            position = at + len(cell)
        rows.append(cells)
    assert rows[0] == HEADER, lines
    return rows[1:]


def shown(run) -> tuple[list[list[str]], dict[str, Any]]:
    """The rows that the playbook printed, and the result of its read."""
    run.assert_ok()
    read = role_task(run, "Read the instance types, their prices and their capacity")
    printed = role_task(run, "Show the instance types")["msg"]
    assert printed == read["table"], (printed, read["table"])
    rows = table_rows(printed)
    assert [row[0] for row in rows] == [t["name"] for t in read["instance_types"]]  # the same types, in order
    return rows, read


# ------------------------------------------------------------------ bad variables: refused before the API is read
@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("max_price=cheap", "Invalid value for max_price: must be a price in US dollars per hour, such as 2.5"),
        ("max_price=-1", "Invalid value for max_price: must be at least 0, got -1."),
        ("max_price=nan", "Invalid value for max_price: must be a finite number, got nan."),
        ("max_price=inf", "Invalid value for max_price: must be a finite number, got inf."),
        ("max_price=-Infinity", "Invalid value for max_price: must be a finite number"),
        ('{"max_price": true}', "Invalid value for max_price: must be a price in US dollars per hour"),
        ("min_gpus=eight", "Invalid value for min_gpus: must be a whole number of GPUs, such as 8, got 'eight'."),
        ("min_gpus=-8", "Invalid value for min_gpus: must be at least 0, got -8."),
        ("min_gpus=2.5", "Invalid value for min_gpus: must be a whole number of GPUs"),
        ("region=US-East", "Invalid value for region: 'US-East' is not valid: a region code looks like us-east-1"),
        ('{"region": ["us-east-1"]}', "Invalid value for region: must be a string"),
        ("available=maybe", "Invalid value for available: must be true or false, got 'maybe'."),
    ],
)
def test_a_bad_variable_fails_naming_it_before_the_api_is_read(ansible, simulator, variable, expected):
    simulator.clear_requests()
    run = capacity(ansible, variable)
    assert run.rc != 0
    run.failure("Check the variables", expected)
    assert simulator.requests() == []
    assert [entry["task"] for entry in run.results] == ["Check the variables"]


def test_an_api_failure_is_one_line(ansible, simulator):
    simulator.fault(path="/api/v1/instance-types", method="GET", status=403, count=10)
    run = capacity(ansible, "min_gpus=8")
    assert run.rc != 0
    run.failure("Read the instance types, their prices and their capacity", "403")


# ------------------------------------------------------------------ the table
def test_the_table_is_the_simulators_capacity_and_prices_one_request(ansible, simulator):
    simulator.seed(capacity=CAPACITY)
    types = catalogue(simulator)
    rows, read = shown(capacity(ansible))
    with_capacity = [t for t in types if t["regions"]]
    assert rows == [expected_row(t) for t in with_capacity]
    assert ["gpu_8x_h100_sxm5", "8", "80 GB", "23.92", "us-east-1, us-south-1"] in rows  # as seeded, sorted
    assert "gpu_8x_a100" not in [row[0] for row in rows] and "gpu_1x_h100_pcie" in [row[0] for row in rows]
    # instance_types keeps its shape: the API's fields, the regions as objects.
    first = read["instance_types"][0]
    assert set(first) >= {"name", "description", "gpu_description", "price_cents_per_hour", "specs"}
    assert isinstance(first["regions_with_capacity_available"][0], dict)
    assert [(r["method"], r["path"]) for r in simulator.requests()] == [("GET", "/api/v1/instance-types")]


def test_available_false_shows_every_type_with_none_where_there_is_no_capacity(ansible, simulator):
    simulator.seed(capacity=CAPACITY)
    types = catalogue(simulator)
    rows, _read = shown(capacity(ansible, "available=false"))
    assert rows == [expected_row(t) for t in types]
    assert ["gpu_8x_a100", "8", "40 GB", "10.32", "none"] in rows


@pytest.mark.parametrize(
    ("variables", "keep"),
    [
        (["min_gpus=8"], lambda t: t["specs"]["gpus"] >= 8 and t["regions"]),
        (["max_price=2.5"], lambda t: t["price_cents_per_hour"] <= 250 and t["regions"]),
        # The limit is a price in dollars: $1.29 keeps what costs 129 cents, $1.289 does not.
        (["max_price=1.29"], lambda t: t["price_cents_per_hour"] <= 129 and t["regions"]),
        (["max_price=1.289"], lambda t: t["price_cents_per_hour"] <= 128 and t["regions"]),
        (["region=us-south-1"], lambda t: "us-south-1" in t["regions"]),
        (["available=no", "min_gpus=4"], lambda t: t["specs"]["gpus"] >= 4),
        (
            ["min_gpus=8", "max_price=25", "region=us-east-1"],
            lambda t: t["specs"]["gpus"] >= 8 and t["price_cents_per_hour"] <= 2500 and "us-east-1" in t["regions"],
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_each_variable_narrows_the_table(ansible, simulator, variables, keep):
    simulator.seed(capacity=CAPACITY)
    types = catalogue(simulator)
    everything, _read = shown(capacity(ansible, "available=false"))
    rows, _read = shown(capacity(ansible, *variables))
    expected = [expected_row(t) for t in types if keep(t)]
    assert rows == expected and 0 < len(rows) < len(everything), rows


def test_nothing_that_matches_prints_the_header_and_says_so(ansible, simulator):
    run = capacity(ansible, "min_gpus=8", "max_price=0.5")
    assert shown(run)[0] == []
    assert role_task(run, "Show the instance types")["msg"] == ["Type  GPUs  GPU memory  $/h  Regions with capacity"]
    assert "No instance type matches" in role_task(run, "Say that none matches")["msg"]


def test_the_guides_sample_is_what_the_playbook_prints(ansible, simulator):
    """docs/cost-control.md shows the table of its first command, with the capacity that its test seeds."""
    examples = doc_examples(COLLECTION / "docs" / "cost-control.md")
    command = next(e for e in examples if "lambdalabs.cloud.capacity" in e.text)
    first = next(line for line in command.text.splitlines() if line.startswith("ansible-playbook"))
    sample = examples[examples.index(command) + 1]
    assert first == "ansible-playbook lambdalabs.cloud.capacity -e min_gpus=8" and sample.kind == "output"
    simulator.seed(capacity={"gpu_8x_h100_sxm5": ["us-east-1", "us-south-1"]})  # as test_docs_examples.py does
    run = capacity(ansible, "min_gpus=8")
    run.assert_ok()
    assert role_task(run, "Show the instance types")["msg"] == sample.text.splitlines()
