"""What Orbyt relies on in arq. A new arq that changes any of it fails here, loudly, before
the worker misbehaves (the version pin in pyproject keeps upgrades deliberate)."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import orjson
from arq.worker import Worker

from orbyt.shared.contract import ARQ_JOB_PREFIX
from orbyt.shared.redis import arq_fence, queue
from orbyt.shared.settings import Settings
from orbyt.worker.app import OrbytWorker, build_worker


def test_the_installed_arq_is_the_pinned_minor_version() -> None:
    assert version("arq").startswith("0.28."), "re-check arq_fence against the new arq"


def test_key_names() -> None:
    assert arq_fence.JOB_PREFIX == "arq:job:" == ARQ_JOB_PREFIX
    assert arq_fence.IN_PROGRESS_PREFIX == "arq:in-progress:"
    assert arq_fence.health_key("orbyt:chat") == "orbyt:chat:health-check"
    assert queue.job_key("r1") == "arq:job:r1"
    assert queue.in_progress_key("r1") == "arq:in-progress:r1"


def test_job_wire_format() -> None:
    """The job record the API writes is what arq writes: JSON with these fields."""
    job: dict[str, object] = {"rid": "r1", "stream": True}
    data = queue.encode_job(job, 1234)  # type: ignore[arg-type]
    assert orjson.loads(data) == {"t": 1, "f": "chat", "a": [job], "k": {}, "et": 1234}
    assert queue.decode_job(data) == (job, 1234)
    raw = arq_fence.deserialize_job_raw(data, deserializer=orjson.loads)
    assert raw == ("chat", [job], {}, 1, 1234)  # JSON: args come back as a list


def test_serializer_signatures() -> None:
    params = inspect.signature(arq_fence.serialize_job).parameters
    assert list(params)[:5] == ["function_name", "args", "kwargs", "job_try", "enqueue_time_ms"]
    assert "serializer" in params
    assert "deserializer" in inspect.signature(arq_fence.deserialize_job_raw).parameters


def test_worker_internals_orbyt_overrides_or_drives() -> None:
    for name in arq_fence.WORKER_METHODS:
        assert callable(getattr(Worker, name, None)), f"arq Worker lost {name}"
    assert inspect.iscoroutinefunction(Worker._poll_iteration)
    assert list(inspect.signature(Worker._poll_iteration).parameters) == ["self"]
    assert list(inspect.signature(Worker.heart_beat).parameters) == ["self"]
    loop = asyncio.new_event_loop()  # arq's Worker takes the current loop when built
    asyncio.set_event_loop(loop)
    try:
        worker = build_worker(Settings(redis_url="redis://127.0.0.1:1/0"))
        for name in arq_fence.WORKER_ATTRIBUTES:
            assert hasattr(worker, name), f"arq Worker lost the attribute {name}"
        assert worker.health_check_key == arq_fence.health_key(worker.queue_name)
        assert isinstance(worker.job_counter, int) and isinstance(worker.tasks, dict)
        assert isinstance(worker, OrbytWorker) and worker.loop is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
