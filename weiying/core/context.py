"""Who is acting and from where, for the audit trail, without passing the request down."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_ip", default=None)
current_channel: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_channel", default="system"
)


@contextmanager
def acting_from(ip: str | None, channel: str) -> Iterator[None]:
    ip_token = current_ip.set(ip)
    channel_token = current_channel.set(channel)
    try:
        yield
    finally:
        current_ip.reset(ip_token)
        current_channel.reset(channel_token)
