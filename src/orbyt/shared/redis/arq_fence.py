"""Every arq internal Orbyt relies on, in one place, so an arq upgrade breaks here (and in
tests/unit/shared/test_arq_fence.py) rather than somewhere in the worker.

Orbyt keeps arq's worker (run loop, signal handling, health key) and job format, but
claims and runs jobs itself (`worker.app.OrbytWorker`), overriding arq's `main` and
`_poll_iteration` and driving its `job_counter`, `jobs_complete`, `jobs_failed` and `tasks`.
pyproject pins arq to the minor version these were checked against.
"""

from __future__ import annotations

from arq.connections import ArqRedis as ArqRedis
from arq.constants import health_check_key_suffix, in_progress_key_prefix, job_key_prefix
from arq.jobs import deserialize_job_raw as deserialize_job_raw
from arq.jobs import serialize_job as serialize_job
from arq.utils import timestamp_ms as timestamp_ms
from arq.worker import Worker as Worker
from arq.worker import func as func

JOB_PREFIX = job_key_prefix  # "arq:job:" + job id: the serialized job
IN_PROGRESS_PREFIX = in_progress_key_prefix  # "arq:in-progress:" + job id: claimed marker
HEALTH_SUFFIX = health_check_key_suffix  # queue name + this: the workers' health record

# What OrbytWorker overrides or drives on arq's Worker; the fence test checks each exists.
WORKER_METHODS = ("main", "_poll_iteration", "heart_beat", "close", "run_check")
WORKER_ATTRIBUTES = (
    "job_counter",
    "jobs_complete",
    "jobs_failed",
    "tasks",
    "allow_pick_jobs",
    "queue_read_limit",
    "in_progress_timeout_s",
    "poll_delay_s",
    "job_timeout_s",
    "functions",
    "burst",
    "queue_name",
    "max_jobs",
    "_pool",
    "health_check_key",
)


def health_key(queue: str) -> str:
    """The key arq's workers refresh while alive (`/readyz` reads it)."""
    return queue + HEALTH_SUFFIX
