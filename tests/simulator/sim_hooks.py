# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the account tells the node fabric about its instances (the fabric's client is in fabric_client.py)."""

from __future__ import annotations

from typing import Any

from fabric_protocol import BootState


class InstanceHooks:
    """What the account tells the node fabric about instances. These defaults do nothing (no ``--nodes``).

    ``launched`` gets ``{"hostname", "ip", "private_ip", "public_key", "user_data", "mounts",
    "instance_type"}``; ``boot_state`` answers ``ready``, ``waiting`` or ``failed`` and holds a
    booting instance back until its node is ready; ``stopped`` holds a terminating one back until
    its node is gone.
    """

    def launch_refusal(self, count: int) -> str | None:
        """Why a launch of ``count`` instances must be refused before any is made (None: it may go ahead)."""
        return None

    def launched(self, instance_id: str, node: dict[str, Any]) -> None:
        pass

    def restarted(self, instance_id: str) -> None:
        pass

    def terminated(self, instance_id: str) -> None:
        pass

    def gone(self, instance_id: str) -> None:
        pass

    def boot_state(self, instance_id: str) -> str:
        return BootState.READY

    def stopped(self, instance_id: str) -> bool:
        return True

    def reset(self) -> None:
        pass

    def file_system_deleted(self, fs_id: str) -> None:
        pass
