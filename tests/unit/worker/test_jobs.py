import asyncio
import time

import pytest

from orbyt.worker.jobs import JobCancelled, Jobs


async def _forever() -> None:
    await asyncio.sleep(3600)


async def test_cancel_of_a_running_job_cancels_its_task() -> None:
    jobs = Jobs()
    task = asyncio.create_task(_forever())
    assert jobs.register("r1", task)
    jobs.cancel("r1")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not jobs.cancelled("r1")  # a running job is cancelled, not remembered


async def test_a_cancel_before_the_task_registers_stops_the_job() -> None:
    jobs = Jobs()
    jobs.cancel("r1")
    task = asyncio.create_task(_forever())
    assert not jobs.register("r1", task)
    assert jobs.cancelled("r1")
    with pytest.raises(JobCancelled):
        jobs.check("r1")
    jobs.check("r2")  # others are unaffected
    task.cancel()


def test_the_memory_is_bounded_in_size() -> None:
    jobs = Jobs(limit=3)
    for i in range(5):
        jobs.cancel(f"r{i}")
    assert [jobs.cancelled(f"r{i}") for i in range(5)] == [False, False, True, True, True]


def test_the_memory_forgets_after_its_window() -> None:
    jobs = Jobs(memory=0.05)
    jobs.cancel("r1")
    assert jobs.cancelled("r1")
    time.sleep(0.1)
    assert not jobs.cancelled("r1")


async def test_unregistered_jobs_are_no_longer_cancelled_through_their_task() -> None:
    jobs = Jobs()
    task = asyncio.create_task(_forever())
    jobs.register("r1", task)
    jobs.unregister("r1")
    jobs.cancel("r1")
    assert not task.cancelled()
    task.cancel()


async def test_a_job_claimed_again_never_runs_twice() -> None:
    jobs = Jobs()
    task = asyncio.create_task(_forever())
    assert jobs.register("r1", task)
    assert not jobs.register("r1", task)  # claimed again while it runs here
    jobs.unregister("r1")
    assert not jobs.register("r1", task)  # ... or just after it ran here
    assert jobs.register("r2", task)
    task.cancel()
