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
