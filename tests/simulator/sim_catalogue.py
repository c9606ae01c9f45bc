# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Static catalogue of the simulated Lambda Cloud: regions, instance types, images, default capacity."""

from __future__ import annotations

import uuid
from typing import Any

# PublicRegionCode of API v1.8.3, in the order of the reference, with the location shown to users.
REGIONS: dict[str, str] = {
    "europe-central-1": "Germany",
    "asia-south-1": "Bangalore, India",
    "australia-east-1": "Sydney, Australia",
    "me-west-1": "Israel",
    "asia-northeast-1": "Tokyo, Japan",
    "asia-northeast-2": "Seoul, South Korea",
    "us-east-1": "Virginia, USA",
    "us-west-2": "Arizona, USA",
    "us-west-1": "California, USA",
    "us-south-1": "Texas, USA",
    "us-west-3": "Utah, USA",
    "us-midwest-1": "Illinois, USA",
    "us-east-2": "Washington DC, USA",
    "us-south-2": "North Texas, USA",
    "us-south-3": "Central Texas, USA",
    "us-east-3": "Ohio, USA",
    "us-midwest-2": "Iowa, USA",
}

# name: (description, gpu_description, price_cents_per_hour, vcpus, memory_gib, storage_gib, gpus, architecture)
_TYPES: dict[str, tuple[str, str, int, int, int, int, int, str]] = {
    "gpu_1x_a10": ("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1, "x86_64"),
    "gpu_1x_a6000": ("1x A6000 (48 GB)", "RTX A6000 (48 GB)", 80, 14, 100, 512, 1, "x86_64"),
    "gpu_1x_a100": ("1x A100 (40 GB PCIe)", "A100 (40 GB PCIe)", 129, 30, 200, 512, 1, "x86_64"),
    "gpu_1x_a100_sxm4": ("1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 220, 512, 1, "x86_64"),
    "gpu_2x_a100": ("2x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 258, 60, 450, 1024, 2, "x86_64"),
    "gpu_4x_a100": ("4x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 516, 120, 900, 2048, 4, "x86_64"),
    "gpu_8x_a100": ("8x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 1032, 124, 1800, 6144, 8, "x86_64"),
    "gpu_8x_a100_80gb_sxm4": ("8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 19500, 8, "x86_64"),
    "gpu_8x_v100": ("8x Tesla V100 (16 GB)", "Tesla V100 (16 GB)", 440, 88, 448, 5800, 8, "x86_64"),
    "gpu_1x_h100_pcie": ("1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1000, 1, "x86_64"),
    "gpu_1x_h100_sxm5": ("1x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 329, 26, 225, 2750, 1, "x86_64"),
    "gpu_2x_h100_sxm5": ("2x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 638, 52, 450, 5500, 2, "x86_64"),
    "gpu_4x_h100_sxm5": ("4x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 1236, 104, 900, 11000, 4, "x86_64"),
    "gpu_8x_h100_sxm5": ("8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 22000, 8, "x86_64"),
    "gpu_1x_gh200": ("1x GH200 (96 GB)", "GH200 (96 GB)", 149, 64, 432, 4096, 1, "arm64"),
    "gpu_8x_b200_sxm6": ("8x B200 (180 GB SXM6)", "B200 (180 GB SXM6)", 3992, 208, 2900, 22000, 8, "x86_64"),
}

# What the stand-in nvidia-smi of a node shows per gpu_description: (product name, memory in MiB, power cap in W).
GPU_MODELS: dict[str, tuple[str, int, int]] = {
    "A10 (24 GB PCIe)": ("NVIDIA A10", 23028, 150),
    "RTX A6000 (48 GB)": ("NVIDIA RTX A6000", 49140, 300),
    "A100 (40 GB PCIe)": ("NVIDIA A100-PCIE-40GB", 40960, 250),
    "A100 (40 GB SXM4)": ("NVIDIA A100-SXM4-40GB", 40960, 400),
    "A100 (80 GB SXM4)": ("NVIDIA A100-SXM4-80GB", 81920, 400),
    "Tesla V100 (16 GB)": ("Tesla V100-SXM2-16GB", 16384, 300),
    "H100 (80 GB PCIe)": ("NVIDIA H100 PCIe", 81559, 350),
    "H100 (80 GB SXM5)": ("NVIDIA H100 80GB HBM3", 81559, 700),
    "GH200 (96 GB)": ("NVIDIA GH200 480GB", 97871, 900),
    "B200 (180 GB SXM6)": ("NVIDIA B200", 183359, 1000),
}

# Regions in which each type has capacity after a reset. Launching does not consume capacity.
DEFAULT_CAPACITY: dict[str, list[str]] = {
    "gpu_1x_a10": ["us-east-1", "us-west-1"],
    "gpu_1x_a6000": ["us-west-1", "us-south-1"],
    "gpu_1x_a100": ["us-south-1"],
    "gpu_1x_a100_sxm4": ["us-west-2", "us-east-1"],
    "gpu_2x_a100": [],
    "gpu_4x_a100": [],
    "gpu_8x_a100": ["us-west-2"],
    "gpu_8x_a100_80gb_sxm4": [],
    "gpu_8x_v100": ["us-south-1"],
    "gpu_1x_h100_pcie": [],
    "gpu_1x_h100_sxm5": ["us-south-1", "us-east-3"],
    "gpu_2x_h100_sxm5": ["us-south-1"],
    "gpu_4x_h100_sxm5": [],
    "gpu_8x_h100_sxm5": ["us-south-1"],
    "gpu_1x_gh200": ["us-east-3"],
    "gpu_8x_b200_sxm6": ["us-south-2"],
}

# family: (description, version, name pattern); every family exists for both architectures in every region.
_IMAGE_FAMILIES: dict[str, tuple[str, str, str]] = {
    "lambda-stack-24-04": ("Lambda Stack 24.04", "24.04.2", "lambda-stack-24.04.2"),
    "lambda-stack-22-04": ("Lambda Stack 22.04", "22.04.5", "lambda-stack-22.04.5"),
    "ubuntu-24-04": ("Ubuntu LTS", "24.04.2", "ubuntu-24.04.2"),
    "ubuntu-22-04": ("Ubuntu LTS", "22.04.5", "ubuntu-22.04.5"),
}
DEFAULT_IMAGE_FAMILY = "lambda-stack-24-04"
ARCHITECTURES = ("x86_64", "arm64")
_IMAGE_TIMESTAMP = "2025-06-02T17:04:11.520871Z"
_IMAGE_NAMESPACE = uuid.UUID("6f1d3c8e-8a55-4a9f-9d43-2f3c2f1b7e10")

REGION_OBJECTS: dict[str, dict[str, str]] = {
    name: {"name": name, "description": desc} for name, desc in REGIONS.items()
}

INSTANCE_TYPES: dict[str, dict[str, Any]] = {
    name: {
        "name": name,
        "description": spec[0],
        "gpu_description": spec[1],
        "price_cents_per_hour": spec[2],
        "specs": {"vcpus": spec[3], "memory_gib": spec[4], "storage_gib": spec[5], "gpus": spec[6]},
    }
    for name, spec in _TYPES.items()
}

TYPE_ARCHITECTURE: dict[str, str] = {name: spec[7] for name, spec in _TYPES.items()}


def build_images() -> list[dict[str, Any]]:
    """The image catalogue: one image per family, architecture and region, with stable ids."""
    images = []
    for region in REGIONS:
        for family, (description, version, name) in _IMAGE_FAMILIES.items():
            for arch in ARCHITECTURES:
                image_id = str(uuid.uuid5(_IMAGE_NAMESPACE, f"{family}/{arch}/{region}"))
                images.append(
                    {
                        "id": image_id,
                        "created_time": _IMAGE_TIMESTAMP,
                        "updated_time": _IMAGE_TIMESTAMP,
                        "name": name if arch == "x86_64" else f"{name}-arm64",
                        "description": description,
                        "family": family,
                        "version": version,
                        "architecture": arch,
                        "region": REGION_OBJECTS[region],
                    }
                )
    return images


IMAGES: list[dict[str, Any]] = build_images()
IMAGES_BY_ID: dict[str, dict[str, Any]] = {image["id"]: image for image in IMAGES}
IMAGE_FAMILIES: frozenset[str] = frozenset(_IMAGE_FAMILIES)


def find_image(family: str, region: str, arch: str) -> dict[str, Any] | None:
    """The image of a family for a region and architecture, if there is one."""
    for image in IMAGES:
        if image["family"] == family and image["region"]["name"] == region and image["architecture"] == arch:
            return image
    return None


def default_firewall_rules() -> list[dict[str, Any]]:
    """The inbound rules of a new account: SSH and ping from anywhere."""
    return [
        {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "Allow SSH"},
        {"protocol": "icmp", "source_network": "0.0.0.0/0", "description": "Allow ping"},
    ]
