"""The worker's running jobs, and the one way to cancel one.

Every cancellation goes through `Jobs.cancel(rid)`: a message on the cancel channel, a reply
frame nobody received, a heartbeat nobody received. A running job's task is cancelled; a rid
with no running task yet is remembered for `memory` seconds (bounded), because the cancel
can race the claim: published after the Lua claim took the job, before its task registered.
The job then checks `cancelled(rid)` when it starts (`register`) and once more right before
its first upstream call, so such a job never calls the upstream.

A rid that runs here, or ran here within `memory` seconds, is never started again: after a
failover to a Redis replica that had not yet seen the claim, the same job may be claimed a
second time (a job claimed by another worker is not covered: see README, Redis outages).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

log = logging.getLogger("orbyt.worker")


class JobCancelled(Exception):
    """The job was cancelled before it could call its upstream."""


class Jobs:
    def __init__(self, memory: float = 60.0, limit: int = 10_000) -> None:
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._recent: OrderedDict[str, float] = OrderedDict()  # rid -> monotonic time
        self._ran: OrderedDict[str, float] = OrderedDict()  # rids that ran here, when they ended
        self._memory = memory
        self._limit = limit

    def register(self, rid: str, task: asyncio.Task[Any]) -> bool:
        """Track a starting job; False if it was already cancelled (it must not start)."""
        if self.cancelled(rid):
            return False
        if rid in self._running or self._ran_lately(rid):
            log.warning("request %s was claimed again (a Redis failover?); not run twice", rid)
            return False
        self._running[rid] = task
        return True

    def unregister(self, rid: str) -> None:
        if self._running.pop(rid, None) is not None:
            self._ran[rid] = time.monotonic()
            self._ran.move_to_end(rid)
            while len(self._ran) > self._limit:
                self._ran.popitem(last=False)

    def _ran_lately(self, rid: str) -> bool:
        ran = self._ran
        now = time.monotonic()
        while ran:
            oldest, at = next(iter(ran.items()))
            if now - at < self._memory:
                break
            del ran[oldest]
        return rid in ran

    def cancel(self, rid: str) -> None:
        """Cancel the job `rid`: its task if it runs here, else remember the rid."""
        task = self._running.get(rid)
        if task is not None:
            if not task.done():
                task.cancel()
            return
        self._forget_old(time.monotonic())
        self._recent[rid] = time.monotonic()
        self._recent.move_to_end(rid)
        while len(self._recent) > self._limit:
            self._recent.popitem(last=False)

    def cancelled(self, rid: str) -> bool:
        """Whether `rid` was cancelled (recently) while no task of it was running."""
        if not self._recent:
            return False
        self._forget_old(time.monotonic())
        return rid in self._recent

    def check(self, rid: str) -> None:
        """Raise JobCancelled if `rid` was cancelled before its task registered."""
        if self._recent and self.cancelled(rid):
            raise JobCancelled(rid)

    def _forget_old(self, now: float) -> None:
        while self._recent:
            rid, at = next(iter(self._recent.items()))
            if now - at < self._memory:
                return
            del self._recent[rid]
