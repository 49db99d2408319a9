"""Moved to `orbyt.shared.redis.fast` and `orbyt.shared.redis.link`; kept for code written
against the old path."""

from orbyt.shared.redis.fast import PipelinedConnection, publish, reply_error, send_and_forget
from orbyt.shared.redis.link import command, open_connection

__all__ = [
    "PipelinedConnection",
    "command",
    "open_connection",
    "publish",
    "reply_error",
    "send_and_forget",
]
