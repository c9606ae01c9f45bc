# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options, authors and the action group shared by every module of the collection that calls the API.
    DOCUMENTATION = r"""
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
attributes:
  action_group:
    description: Use C(group/lambdalabs.cloud.lambda) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - lambdalabs.cloud.lambda
options:
  api_key:
    description:
      - The Lambda Cloud API key.
      - If not set, the value of the E(LAMBDA_API_KEY) environment variable is used.
      - Set it once for every module of the collection with
        C(module_defaults) and the action group C(group/lambdalabs.cloud.lambda).
    type: str
    aliases: [api_token]
  api_url:
    description:
      - The base URL of the Lambda Cloud API, including the C(/api/v1) path.
      - If not set, the value of the E(LAMBDA_API_URL) environment variable is used,
        and then C(https://cloud.lambda.ai/api/v1).
      - Point it at the collection's simulator to test without an account.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of O(api_url).
      - Turn this off only for a trusted test endpoint.
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds to wait for an answer to one HTTP request before giving up on it.
    type: float
    default: 30
requirements:
  - requests
notes:
  - Calls that are safe to repeat are retried on network errors, HTTP 429, 500, 502, 503 and 504
    and C(provider/*) errors, with exponential backoff and full jitter, honouring C(Retry-After).
  - Creating calls are repeated only when the API provably did not process them.
"""

    # Attributes of the modules that only read.
    INFO_MODULE = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the same result as without it.
    support: full
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: N/A
    details: The module only reads.
"""

    # Attributes of the modules that change resources.
    RESOURCE_MODULE = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: No request that changes anything is sent; the result says what would happen.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
"""

    # The rules option of the firewall modules: how one inbound rule is written.
    FIREWALL_RULES = r"""
options:
  rules:
    description:
      - The inbound rules. Traffic that no rule allows is dropped.
    type: list
    elements: dict
    suboptions:
      protocol:
        description:
          - The protocol the rule allows.
        type: str
        required: true
        choices: [tcp, udp, icmp, all]
      port:
        description:
          - One port, for example V(8888). Not for V(icmp).
        type: int
      port_range:
        description:
          - An inclusive range of ports as V([min, max]), for example V([29500, 29600]). Not for V(icmp).
          - For V(all) without a port, every port.
        type: list
        elements: int
      source_network:
        description:
          - The IPv4 network traffic may come from, in CIDR notation, for example V(203.0.113.0/24), or V(0.0.0.0/0)
            for anywhere. An address without a mask means that address alone.
        type: str
        required: true
      description:
        description:
          - What the rule is for, at most 128 characters.
        type: str
        default: ""
"""

    # The connection options of the inventory plugin.
    # The launch options of lambda_instance (_launch_request.LAUNCH_OPTIONS): what to launch and how.
    LAUNCH_OPTIONS = r"""
options:
  instance_type:
    description:
      - The instance type, or a list of them in order of preference, for example V(gpu_1x_a100_sxm4). Required to
        launch.
      - The first (type, region) pair, in the order of O(instance_type) then O(region), that has capacity is
        launched. When the launch still meets insufficient capacity, the next pair is tried.
    type: list
    elements: str
  region:
    description:
      - The region, or a list of them in order of preference, for example V(us-west-1).
      - When not set, every region with capacity for the type is eligible. With file systems, only their region is.
    type: list
    elements: str
  min_gpus:
    description:
      - Never launch a type with fewer GPUs than this, whatever O(instance_type) lists; applied before any launch.
    type: int
  max_price_cents_per_hour:
    description:
      - Never launch a type that costs more than this many US cents per hour; applied before any launch.
    type: int
  capacity_timeout:
    description:
      - Seconds to keep looking for capacity among the allowed types and regions when none has any.
      - V(0) fails at once. The instance types are read again at a pace the API's rate limit allows, and each look
        is logged.
    type: int
    default: 0
  ssh_key_name:
    description:
      - The name of the SSH key to install on the instance. Required to launch. The API takes exactly one key.
    type: list
    elements: str
    aliases: [ssh_key_names]
  file_system_names:
    description:
      - Names of persistent file systems to mount, at their default mount point.
    type: list
    elements: str
  file_system_mounts:
    description:
      - File systems to mount at a chosen path.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The file system's name. One of O(file_system_mounts[].name) and O(file_system_mounts[].file_system_id) is
            required.
        type: str
      file_system_id:
        description:
          - The file system's id.
        type: str
      mount_point:
        description:
          - Where to mount it; under V(/home), V(/lambda/nfs) or V(/data).
        type: str
        required: true
  image:
    description:
      - The machine image to launch, by O(image.id) or by O(image.family). The default is the latest Lambda Stack.
    type: dict
    suboptions:
      id:
        description:
          - The image id, see M(lambdalabs.cloud.lambda_image_info).
        type: str
      family:
        description:
          - The image family, for example V(lambda-stack-22-04).
        type: str
  user_data:
    description:
      - A cloud-init user-data document, at most 1 MB.
    type: str
  tags:
    description:
      - Tags for the instance, as a dictionary. Keys start with a lowercase letter and hold lowercase letters,
        digits, V(-) and V(:); values are strings, numbers or booleans.
      - The module adds the tag C(launch-id), the key of the launch, by which a run whose launch answer was lost
        knows its own instance, and C(launched-at), the UTC time of the launch (the API does not return it), from
        which uptime and cost so far are counted. A C(launch-id) or C(launched-at) given here is replaced.
    type: dict
  hostname:
    description:
      - The hostname to give the instance, for example V(headnode-1).
    type: str
  firewall_ruleset_ids:
    description:
      - Ids of firewall rulesets, in the instance's region, to associate with the instance.
    type: list
    elements: str
  firewall_ruleset_names:
    description:
      - Names of firewall rulesets to associate with the instance, see M(lambdalabs.cloud.lambda_firewall_ruleset).
      - Rulesets belong to a region. Only regions that have a ruleset of every name given are eligible, and the
        instance gets the rulesets of the region it launches in, so one name can stand for a ruleset in each region.
    type: list
    elements: str
  launch_interval:
    description:
      - Least number of seconds between two launches from this controller (the API allows one per 12 seconds).
      - A launch answered with HTTP 429 is retried after C(Retry-After) seconds, or after this many, until
        O(wait_timeout) has passed.
    type: float
    default: 12
  launch_confirm_timeout:
    description:
      - When the answer to a launch is lost (a timeout, a dropped connection, a server error, a garbled success), no
        other launch is sent; the module looks for its instance (by name and its C(launch-id) tag) for at most this
        many seconds. When it appears, the module keeps it, or ends it when another run's instance of the name was
        made first (by the account's audit trail); when it does not, the module adopts another run's instance of
        the name, or fails. A re-run then adopts the instance if it appears later.
      - At least 4 times O(request_timeout), and at least 10; a smaller value is refused. Unset, 180, or that floor
        when it is longer.
    type: int
"""

    INVENTORY = r"""
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
options:
  api_key:
    description:
      - The Lambda Cloud API key.
      - May be a template, for example a variable given with C(-e) or a lookup, and may be vault-encrypted.
        Variables given with C(-e), including a vault-encrypted vars file, can be used in this template.
      - The key is never written to the inventory cache.
    type: str
    aliases: [api_token]
    env:
      - name: LAMBDA_API_KEY
  api_url:
    description:
      - The base URL of the Lambda Cloud API, including the C(/api/v1) path.
      - Defaults to C(https://cloud.lambda.ai/api/v1).
    type: str
    env:
      - name: LAMBDA_API_URL
  validate_certs:
    description: Whether to verify the TLS certificate of O(api_url).
    type: bool
    default: true
  request_timeout:
    description: Seconds to wait for an answer to the HTTP request, more than 0 and at most 3600.
    type: float
    default: 30
requirements:
  - requests
"""
