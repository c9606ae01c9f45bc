# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection version, kept in one place (a unit test checks it against galaxy.yml)."""

from __future__ import annotations

COLLECTION_VERSION = "1.0.0"
