"""保存的筛选: a user's named task-list filters, and the normal form of a list's query string.

A saved filter is the list's query string under a name, replayed as a link; it belongs to the user
(not the membership): applied under another membership it is narrowed by that membership's scope like
any list. Saving, renaming and deleting write an audit event.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.audit import ActionError, record_event
from tracker.i18n import N_
from tracker.models import Membership, SavedFilter

# The list's filter arguments (``queries.TaskFilter.from_args``), in the order a query string is written.
FILTER_KEYS = ("q", "channel", "round", "region", "subtree", "unit", "lead_unit", "state", "schedule",
               "deadline_from", "deadline_to", "level", "proposal", "closed_from", "closed_to", "reopened", "sort")
MAX_QUERY = 2000
MAX_NAME = 100
MAX_PER_USER = 50


def list_query(args) -> str:
    """The list's filters of request args (a MultiDict, or (key, value) pairs) as a normal query string:
    known keys only, empty values and the page cursor left out."""
    pairs = args.items(multi=True) if hasattr(args, "getlist") else args
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in FILTER_KEYS and str(value).strip():
            values.setdefault(key, []).append(str(value).strip())
    return urlencode([(key, v) for key in FILTER_KEYS for v in values.get(key, [])])


def filters_of(s: Session, user_id: int) -> list[SavedFilter]:
    return list(s.scalars(select(SavedFilter).where(SavedFilter.user_id == user_id)
                          .order_by(SavedFilter.name, SavedFilter.id)))


def filter_of(s: Session, user_id: int, filter_id: int) -> SavedFilter | None:
    """One of the user's own filters; None for another user's (the pages answer 404, as for a token)."""
    return s.scalar(select(SavedFilter).where(SavedFilter.id == filter_id, SavedFilter.user_id == user_id))


def save_filter(s: Session, actor: Membership, now: dt.datetime, name: str, query: str) -> SavedFilter:
    """保存筛选: the list's current query string under a name of the user's own."""
    name = _name(name)
    query = list_query(parse_qsl(query or ""))
    if not query:
        raise ActionError(N_("请先设置筛选条件再保存"))
    if len(query) > MAX_QUERY:
        raise ActionError(N_("筛选条件太长，无法保存"))
    count = s.scalar(select(func.count()).select_from(SavedFilter).where(SavedFilter.user_id == actor.user_id))
    if count >= MAX_PER_USER:
        raise ActionError("最多保存{n}个筛选，请先删除不用的", n=MAX_PER_USER)
    _check_name_free(s, actor.user_id, name)
    saved = SavedFilter(user_id=actor.user_id, name=name, query=query, created_at=now)
    _flush(s, saved, name)
    record_event(s, actor, now, "create", entity="saved_filter", entity_id=saved.id,
                 data={"name": name, "query": query})
    s.flush()
    return saved


def rename_filter(s: Session, actor: Membership, now: dt.datetime, filter_id: int, name: str) -> SavedFilter:
    saved = _own(s, actor, filter_id)
    name = _name(name)
    if name == saved.name:
        return saved
    _check_name_free(s, actor.user_id, name)
    before = saved.name
    saved.name = name
    _flush(s, saved, name)
    record_event(s, actor, now, "rename", entity="saved_filter", entity_id=saved.id,
                 data={"before": before, "after": name})
    s.flush()
    return saved


def delete_filter(s: Session, actor: Membership, now: dt.datetime, filter_id: int) -> None:
    saved = _own(s, actor, filter_id)
    record_event(s, actor, now, "delete", entity="saved_filter", entity_id=saved.id,
                 data={"name": saved.name, "query": saved.query})
    s.delete(saved)
    s.flush()


def _own(s: Session, actor: Membership, filter_id: int) -> SavedFilter:
    """The actor's user's filter; another user's is answered as missing."""
    saved = s.get(SavedFilter, int(filter_id))
    if saved is None or saved.user_id != actor.user_id:
        raise ActionError(N_("该筛选不存在"))
    return saved


def _name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ActionError(N_("请填写筛选名称"))
    if len(name) > MAX_NAME:
        raise ActionError("筛选名称不能超过{n}个字", n=MAX_NAME)
    return name


def _check_name_free(s: Session, user_id: int, name: str) -> None:
    taken = s.scalar(select(SavedFilter.id).where(SavedFilter.user_id == user_id, SavedFilter.name == name))
    if taken is not None:
        raise ActionError("已有名为“{name}”的筛选，请换一个名称", name=name)


def _flush(s: Session, saved: SavedFilter, name: str) -> None:
    """Flush in a savepoint: a name taken by a request at the same moment is refused, not a crash."""
    try:
        with s.begin_nested():
            s.add(saved)
    except IntegrityError:
        raise ActionError("已有名为“{name}”的筛选，请换一个名称", name=name) from None
