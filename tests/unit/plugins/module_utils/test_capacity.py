# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where GPUs are free, and at what price: the capacity table and the capacity playbook's variables."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._capacity import (
    capacity_options,
    capacity_row,
    capacity_table,
    gpu_memory,
)


def itype(name, gpus, gpu_description, cents, *regions, description=None):
    """An instance type as lambda_instance_type_info reads it: flattened, regions as the API gives them."""
    return {
        "name": name,
        "description": description if description is not None else f"{gpus}x {gpu_description}",
        "gpu_description": gpu_description,
        "price_cents_per_hour": cents,
        "specs": {"vcpus": 30, "memory_gib": 200, "storage_gib": 512, "gpus": gpus},
        "regions_with_capacity_available": [{"name": region, "description": "somewhere"} for region in regions],
    }


EIGHT = [
    itype("gpu_8x_v100", 8, "Tesla V100 (16 GB)", 440, "us-south-1"),
    itype("gpu_8x_a100", 8, "A100 (40 GB SXM4)", 1032),
    itype("gpu_8x_h100_sxm5", 8, "H100 (80 GB SXM5)", 2392, "us-south-1", "us-east-1"),
]


def test_the_table_has_a_header_and_one_aligned_line_per_type_in_their_order():
    assert capacity_table(EIGHT) == [
        "Type              GPUs  GPU memory    $/h  Regions with capacity",
        "gpu_8x_v100          8  16 GB        4.40  us-south-1",
        "gpu_8x_a100          8  40 GB       10.32  none",
        "gpu_8x_h100_sxm5     8  80 GB       23.92  us-east-1, us-south-1",
    ]


def test_columns_widen_to_the_longest_cell_and_lines_end_without_spaces():
    lines = capacity_table([itype("gpu_1x_a10", 1, "A10 (24 GB PCIe)", 75), itype("x", 128, "B200 (180 GB)", 399200)])
    assert lines == [
        "Type        GPUs  GPU memory      $/h  Regions with capacity",
        "gpu_1x_a10     1  24 GB          0.75  none",
        "x            128  180 GB      3992.00  none",
    ]
    assert all(line == line.rstrip() for line in lines)
    # Every column starts at the same place on every line.
    assert len({line.index("GPU memory") for line in lines[:1]} | {line.index("24 GB") for line in lines[1:2]}) == 1


def test_no_type_gives_the_header_alone():
    assert capacity_table([]) == ["Type  GPUs  GPU memory  $/h  Regions with capacity"]


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ({"gpu_description": "A100 (40 GB SXM4)"}, "40 GB"),
        ({"gpu_description": "GH200 (96 GB)"}, "96 GB"),
        ({"gpu_description": "B200 (180 GB SXM6)", "description": "8x B200 (999 GB)"}, "180 GB"),
        ({"gpu_description": "Mystery GPU", "description": "1x Mystery (48GB)"}, "48 GB"),
        ({"description": "1x Something (1.5 TB)"}, "1.5 TB"),
        ({"gpu_description": "RTX A6000", "description": "1x RTX A6000"}, "-"),
        ({"gpu_description": None, "description": 40}, "-"),
        ({}, "-"),
    ],
)
def test_the_memory_of_one_gpu_comes_from_its_description(instance_type, expected):
    assert gpu_memory(instance_type) == expected


def test_what_the_api_leaves_out_shows_as_a_dash_or_zero():
    assert capacity_row({"name": "odd"}) == ("odd", "-", "-", "0.00", "none")
    assert capacity_row({"name": "odd", "specs": {"gpus": True}, "price_cents_per_hour": "129"})[1:4] == (
        "-",
        "-",
        "1.29",
    )
    # Regions as plain names too; a name with a newline stays on its line.
    assert capacity_row({"name": "a\nb", "regions_with_capacity_available": ["us-west-1", "us-east-1"]}) == (
        "a b",
        "-",
        "-",
        "0.00",
        "us-east-1, us-west-1",
    )


def test_the_variables_as_the_command_line_gives_them():
    assert capacity_options() == {"error": None, "available": True}
    assert capacity_options("8", "2.5", "us-south-1", "false") == {
        "error": None,
        "available": False,
        "min_gpus": 8,
        "max_price_cents_per_hour": 250,
        "region": "us-south-1",
    }
    assert capacity_options(0, 0)["min_gpus"] == 0 and capacity_options(0, 0)["max_price_cents_per_hour"] == 0
    assert capacity_options(8.0, 10)["min_gpus"] == 8 and capacity_options(None, 10)["max_price_cents_per_hour"] == 1000
    assert capacity_options(" 4 ", " 1e1 ", available="yes")["max_price_cents_per_hour"] == 1000


@pytest.mark.parametrize(
    ("dollars", "cents"),
    [(2.3, 230), ("2.30", 230), (0.755, 75), ("0.999", 99), (1.29, 129), ("12.345678", 1234), (7, 700)],
)
def test_a_price_limit_becomes_whole_cents_rounded_down_so_nothing_dearer_shows(dollars, cents):
    assert capacity_options(max_price=dollars)["max_price_cents_per_hour"] == cents


@pytest.mark.parametrize(
    ("options", "variable", "detail"),
    [
        ({"max_price": "cheap"}, "max_price", "must be a price in US dollars per hour, such as 2.5, got 'cheap'."),
        ({"max_price": "$2.50"}, "max_price", "such as 2.5"),
        ({"max_price": ""}, "max_price", "such as 2.5"),
        ({"max_price": "-1"}, "max_price", "must be at least 0, got -1."),
        ({"max_price": -0.01}, "max_price", "must be at least 0"),
        ({"max_price": "nan"}, "max_price", "must be a finite number, got nan."),
        ({"max_price": float("nan")}, "max_price", "must be a finite number"),
        ({"max_price": "inf"}, "max_price", "must be a finite number, got inf."),
        ({"max_price": "-Infinity"}, "max_price", "must be a finite number"),
        ({"max_price": "1e999"}, "max_price", "must be a finite number"),
        ({"max_price": True}, "max_price", "got True."),
        ({"max_price": [2.5]}, "max_price", "got [2.5]."),
        ({"max_price": {"usd": 2}}, "max_price", "such as 2.5"),
        ({"min_gpus": "eight"}, "min_gpus", "must be a whole number of GPUs, such as 8, got 'eight'."),
        ({"min_gpus": "8.5"}, "min_gpus", "whole number"),
        ({"min_gpus": 2.5}, "min_gpus", "whole number"),
        ({"min_gpus": ""}, "min_gpus", "whole number"),
        ({"min_gpus": "-1"}, "min_gpus", "must be at least 0, got -1."),
        ({"min_gpus": float("inf")}, "min_gpus", "whole number"),
        ({"min_gpus": False}, "min_gpus", "whole number"),
        ({"region": "US East"}, "region", "a region code looks like us-east-1"),
        ({"region": ""}, "region", "must not be empty."),
        ({"region": ["us-east-1"]}, "region", "must be a string"),
        ({"region": "us-east-1\n"}, "region", "control characters"),
        ({"available": "maybe"}, "available", "must be true or false, got 'maybe'."),
        ({"available": None}, "available", "must be true or false"),
    ],
)
def test_hostile_variables_are_refused_in_one_line_that_names_the_variable(options, variable, detail):
    result = capacity_options(**options)
    assert list(result) == ["error"]
    assert result["error"].startswith(f"Invalid value for {variable}: ") and detail in result["error"]
    assert "\n" not in result["error"]
