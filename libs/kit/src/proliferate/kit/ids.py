"""Identifiers: UUIDv7 (time-ordered) for rows and events; request ids as they travel."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

# An edge takes the caller's `x-request-id` when it looks like one; it travels on as gRPC
# metadata under the same name and is bound into every log line as `request_id`.
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a counter seeded randomly per
    millisecond so ids made in one process are strictly increasing."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x01FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0x0FFF:  # more than 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def derived_id(namespace: uuid.UUID | str, *parts: object) -> uuid.UUID:
    """A stable id derived from others (e.g. an event id from a request id), so a retried
    write or publish carries the same id and is de-duplicated."""
    ns = namespace if isinstance(namespace, uuid.UUID) else uuid.uuid5(uuid.NAMESPACE_URL, namespace)
    return uuid.uuid5(ns, "/".join(str(p) for p in parts))


def valid_request_id(value: str) -> bool:
    return bool(_REQUEST_ID_RE.match(value))
