#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_image_info
short_description: List the machine images available on Lambda Cloud
version_added: 0.1.0
description:
  - Lists the machine images that instances can be launched from, per region.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  region:
    description:
      - Only images available in this region, for example V(us-east-3).
    type: str
  family:
    description:
      - Only images of this family, for example V(lambda-stack-22-04).
      - The module fails when no image belongs to this family.
    type: str
  architecture:
    description:
      - Only images for this CPU architecture.
    type: str
    choices: [x86_64, arm64]
  name:
    description:
      - Only images with this name, for example V(ubuntu-22.04).
    type: str
"""

EXAMPLES = r"""
- name: Images of the Lambda Stack 22.04 family for arm64 (GH200) in us-east-3
  lambdalabs.cloud.lambda_image_info:
    family: lambda-stack-22-04
    architecture: arm64
    region: us-east-3
  register: images

- name: Launch from the first one
  lambdalabs.cloud.lambda_instance:
    name: gh200-node
    instance_type: gpu_1x_gh200
    region: us-east-3
    ssh_key_name: my-key
    image:
      id: "{{ images.images[0].id }}"
"""

RETURN = r"""
images:
  description: The images that match every filter.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The image's identifier, for O(lambdalabs.cloud.lambda_instance#module:image.id).
      type: str
      sample: 43336648-096d-4cba-9aa2-f9bb7727639d
    name:
      description: The image's name.
      type: str
      sample: lambda-stack-22.04
    description:
      description: A description of the image.
      type: str
      sample: Lambda Stack 22.04
    family:
      description: The image's family, for O(lambdalabs.cloud.lambda_instance#module:image.family).
      type: str
      sample: lambda-stack-22-04
    version:
      description: The image's version.
      type: str
      sample: 22.04.5
    architecture:
      description: The CPU architecture the image supports.
      type: str
      sample: x86_64
    region:
      description: The region of the image, with C(name) and C(description).
      type: dict
      sample: {"name": "us-west-1", "description": "California, USA"}
    created_time:
      description: When the image was created.
      type: str
      sample: "2024-05-01T00:00:00+00:00"
    updated_time:
      description: When the image was last updated.
      type: str
      sample: "2024-05-01T00:00:00+00:00"
"""

from functools import partial

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import IMAGE_ARCHITECTURES, list_images, region_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter, field_equals
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import check_region, check_text

check_short_text = partial(check_text, max_length=128)


def main():
    run_filter_info_module(
        "images",
        lambda client, params: list_images(client),
        {
            "region": Filter(check_region, field_equals(region_name)),
            "family": Filter(check_short_text, known_as="image family"),
            "architecture": Filter(spec={"type": "str", "choices": list(IMAGE_ARCHITECTURES)}),
            "name": Filter(check_short_text),
        },
    )


if __name__ == "__main__":
    main()
