"""Idempotency keys (``Idempotency-Key`` on POST): a retried call answers as the first one did and acts once.

The stored answer is written in the same transaction as the action it answers, under a unique
(token, key): of two concurrent calls with one key, the second fails to commit, rolls back whatever it
did, and replays the first one's answer. Only successful answers are stored; a refused call changed
nothing, so retrying it simply asks again. Keys are remembered for ``KEEP``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from flask import Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.api.problems import ApiError
from tracker.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEEP = dt.timedelta(hours=24)
KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # visible ASCII, as HTTP headers carry it
_KEY = re.compile(KEY_PATTERN)


def check_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY.match(value):
        raise ApiError("VALIDATION_ERROR", f"{HEADER}须为1至200个可见ASCII字符")
    return value


def fingerprint(method: str, path: str, query: str, body: str) -> str:
    """What makes two calls "the same call": method, path, query and the parsed body."""
    digest = hashlib.sha256()
    for part in (method, path, query, body):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def lookup(s: Session, token_id: int, key: str, fp: str, now: dt.datetime) -> IdempotencyRecord | None:
    """The stored answer of an earlier call with this key; an error when the key was used for another call."""
    record = s.scalar(select(IdempotencyRecord).where(IdempotencyRecord.token_id == token_id,
                                                      IdempotencyRecord.key == key))
    if record is None:
        return None
    created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=dt.UTC)
    if created < now - KEEP:
        s.delete(record)
        s.flush()
        return None
    if record.fingerprint != fp:
        raise ApiError("IDEMPOTENCY_KEY_REUSED", f"该{HEADER}已用于另一个不同的请求，请换一个新的键")
    return record


def replay(record: IdempotencyRecord) -> Response:
    response = Response(record.body, status=record.status_code, content_type=record.content_type)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def remember(s: Session, token_id: int, key: str, fp: str, response: Response, now: dt.datetime) -> None:
    """Store the answer with the action (the caller commits both); forget this token's expired keys."""
    s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.token_id == token_id,
                                              IdempotencyRecord.created_at < now - KEEP))
    s.add(IdempotencyRecord(token_id=token_id, key=key, fingerprint=fp, status_code=response.status_code,
                            content_type=response.content_type or "application/json",
                            body=response.get_data(as_text=True), created_at=now))
    s.flush()
