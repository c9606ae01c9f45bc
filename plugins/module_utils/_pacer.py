# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pacing launches to the API's limit of one per 12 seconds, across every module run of one user."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator


class LaunchPacer:
    """Keeps launches from one controller at least ``interval`` seconds apart.

    Several module runs at once (forks, loops) share a lock file that holds the
    time of the last launch, so they take turns instead of provoking a storm of
    429 answers. Runs by other users or on other machines are not paced by it;
    the launch protocol in ``_launch.py`` copes with those.
    """

    def __init__(
        self,
        api_url: str,
        interval: float,
        directory: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        digest = hashlib.sha256(api_url.encode("utf-8")).hexdigest()[:16]
        directory = directory or self.shared_directory()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, f"lambdalabs-cloud-launch-{digest}.lock")
        self.interval = interval
        self._clock = clock
        self._sleep = sleep

    @staticmethod
    def shared_directory() -> str:
        """A directory that every module run of this user sees.

        Not ``tempfile.gettempdir()``: Ansible points that at a per-task directory.
        """
        candidate = os.path.join(os.path.expanduser("~"), ".ansible", "tmp")
        try:
            os.makedirs(candidate, mode=0o700, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            pass
        return f"/tmp/lambdalabs-cloud-{os.getuid()}"

    def wait_before(self, last: float, now: float) -> float:
        """Seconds to wait when the last launch was at ``last``.

        A stamp up to a second ahead is a rounding of the stamp just written by another run: wait the interval.
        One further ahead (or not a number) cannot be trusted and counts as no launch.
        """
        wait = last + self.interval - now
        if not wait <= self.interval + 1.0:
            return 0.0
        return min(max(wait, 0.0), self.interval)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the lock, wait until the interval since the last launch has passed, then yield."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).decode("ascii", "ignore").strip()
            try:
                last = float(raw)
            except ValueError:
                last = 0.0
            wait = self.wait_before(last, self._clock())
            if wait:
                self._sleep(wait)
            try:
                yield
            finally:
                # The end of the turn, after the launch's answer: the API counts its interval from when it handled
                # the launch, which the controller knows to be past only then. A stamp taken as the request went
                # out was earlier than that by the request's way to the API, and a busy API then refused the next
                # launch (429).
                stamp = f"{self._clock():.3f}".encode("ascii").ljust(32)
                os.pwrite(fd, stamp, 0)
        finally:
            os.close(fd)  # also releases the lock
