"""Moved to `orbyt.shared.redis.queue` (the queue protocol of API and workers); kept for code
written against the old path."""

from orbyt.shared.redis.queue import abandon, enqueue, withdraw

__all__ = ["abandon", "enqueue", "withdraw"]
