"""Closure integrity (严防虚假整改、表面整改、假装整改): each channel's closure checklist (销号标准),
kept by administrators, and the checks a verifier sees before 验收销号.

- ``add_criterion`` / ``edit_criterion`` / ``set_criterion_active`` / ``move_criterion``: the admin's
  operations on a channel's checklist; each writes an event (entity ``closure_criterion``).
- ``checklist_for(s, task)``: the active items of the task's channel, each with the evidence kinds it
  asks for that the task does not hold yet.
- ``evidence_flags(s, membership, task)``: evidence whose SHA-256 already belongs to another task (named
  only when the membership can see that task), and 整改后 files equal to a 整改前 file of the same task.
- ``check_closure(s, task, ticked, new_kinds)``: what ``operations`` calls from the ``close`` handler, so
  the checklist holds in the domain and not only in the form.

Like ``operations``: actor and now come in, every change writes an ``Event``, nothing commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from tracker.audit import ActionError, record_event
from tracker.i18n import N_
from tracker.models import EVIDENCE_KINDS, Channel, ClosureCriterion, Evidence, Membership, Task
from tracker.permissions import can_admin_province, visible_tasks

MAX_TEXT = 500


# --- the checklist, kept by administrators -------------------------------------------------------------


def criteria(s: Session, channel_id: int, *, include_inactive: bool = False) -> list[ClosureCriterion]:
    """A channel's checklist in order; only the active items unless asked."""
    query = select(ClosureCriterion).where(ClosureCriterion.channel_id == channel_id)
    if not include_inactive:
        query = query.where(ClosureCriterion.active.is_(True))
    return list(s.scalars(query.order_by(ClosureCriterion.position, ClosureCriterion.id)))


def can_manage(actor: Membership | None) -> bool:
    """Channels are one list for the whole province, so their checklists are kept by its administrators
    (``None`` is the operator at the command line)."""
    return can_admin_province(actor)


def _require_manager(actor: Membership | None) -> None:
    if not can_manage(actor):
        raise ActionError("只有省级管理员可以维护销号标准")


def _clean(text: str, required_kinds: Iterable[str]) -> tuple[str, list[str]]:
    text = (text or "").strip()
    if not text:
        raise ActionError("请填写销号标准的内容")
    if len(text) > MAX_TEXT:
        raise ActionError("销号标准的内容不能超过{n}个字", n=MAX_TEXT)
    kinds = list(dict.fromkeys(required_kinds or []))
    unknown = [k for k in kinds if k not in EVIDENCE_KINDS]
    if unknown:
        raise ActionError("佐证材料类型“{kind}”无效", kind="、".join(unknown))
    # Kept in the order of EVIDENCE_KINDS, so the same choice always reads the same.
    return text, [k for k in EVIDENCE_KINDS if k in kinds]


def kind_labels(kinds: Iterable[str]) -> str:
    return "、".join(EVIDENCE_KINDS.get(k, k) for k in kinds)


def _describe(criterion: ClosureCriterion) -> dict[str, Any]:
    return {"channel": criterion.channel.name, "text": criterion.text,
            "required_kinds": list(criterion.required_kinds or []), "position": criterion.position,
            "active": criterion.active}


def add_criterion(s: Session, actor: Membership | None, now: dt.datetime, channel: Channel, text: str,
                  required_kinds: Sequence[str] = ()) -> ClosureCriterion:
    """Add an item at the end of the channel's checklist."""
    _require_manager(actor)
    text, kinds = _clean(text, required_kinds)
    if any(c.text == text for c in criteria(s, channel.id)):
        raise ActionError("“{channel}”的销号标准中已有“{text}”", channel=channel.name, text=text)
    last = s.scalar(select(func.max(ClosureCriterion.position)).where(ClosureCriterion.channel_id == channel.id))
    criterion = ClosureCriterion(channel_id=channel.id, channel=channel, position=(last or 0) + 1, text=text,
                                 required_kinds=kinds, active=True, created_at=now)
    s.add(criterion)
    s.flush()
    record_event(s, actor, now, "create", entity="closure_criterion", entity_id=criterion.id,
                 data=_describe(criterion))
    return criterion


def edit_criterion(s: Session, actor: Membership | None, now: dt.datetime, criterion: ClosureCriterion,
                   text: str, required_kinds: Sequence[str] = ()) -> ClosureCriterion:
    """Change an item's wording or the evidence kinds it asks for; no event when nothing changed."""
    _require_manager(actor)
    text, kinds = _clean(text, required_kinds)
    before = {"text": criterion.text, "required_kinds": list(criterion.required_kinds or [])}
    after = {"text": text, "required_kinds": kinds}
    if before == after:
        return criterion
    if text != criterion.text and any(c.text == text for c in criteria(s, criterion.channel_id)):
        raise ActionError("“{channel}”的销号标准中已有“{text}”", channel=criterion.channel.name,
                              text=text)
    criterion.text, criterion.required_kinds = text, kinds
    record_event(s, actor, now, "edit", entity="closure_criterion", entity_id=criterion.id,
                 data={"channel": criterion.channel.name, "before": before, "after": after})
    s.flush()
    return criterion


def set_criterion_active(s: Session, actor: Membership | None, now: dt.datetime, criterion: ClosureCriterion,
                         active: bool) -> ClosureCriterion:
    """停用 / 启用 an item. A stopped item is no longer asked for; past closures keep what was ticked."""
    _require_manager(actor)
    if criterion.active == active:
        raise ActionError(N_("该销号标准已启用") if active else N_("该销号标准已停用"))
    criterion.active = active
    record_event(s, actor, now, "activate" if active else "deactivate", entity="closure_criterion",
                 entity_id=criterion.id, data=_describe(criterion))
    s.flush()
    return criterion


def move_criterion(s: Session, actor: Membership | None, now: dt.datetime, criterion: ClosureCriterion,
                   offset: int) -> ClosureCriterion:
    """Move an item up (-1) or down (+1) among its channel's items; positions are renumbered 1, 2, 3 …"""
    _require_manager(actor)
    items = criteria(s, criterion.channel_id, include_inactive=True)
    index = items.index(criterion)
    target = index + offset
    if offset not in (-1, 1) or not 0 <= target < len(items):
        raise ActionError(N_("已在最前，不能再上移") if offset < 0 else N_("已在最后，不能再下移"))
    items[index], items[target] = items[target], items[index]
    for position, item in enumerate(items, start=1):
        item.position = position
    record_event(s, actor, now, "reorder", entity="closure_criterion", entity_id=criterion.id,
                 data={"channel": criterion.channel.name, "order": [c.text for c in items]})
    s.flush()
    return criterion


# --- what the verifier sees -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    """One active item of a task's checklist, and the evidence kinds it asks for that are missing."""

    id: int
    text: str
    required_kinds: list[str]
    missing_kinds: list[str]

    @property
    def ready(self) -> bool:
        return not self.missing_kinds


def held_kinds(task: Task) -> set[str]:
    return {e.kind for e in task.evidence}


def checklist_for(s: Session, task: Task, extra_kinds: Iterable[str] = ()) -> list[ChecklistItem]:
    """The task's checklist: its channel's active items, each with the kinds still missing (counting
    files of ``extra_kinds`` about to be attached, e.g. the verifier's own upload in the close form)."""
    held = held_kinds(task) | set(extra_kinds)
    return [ChecklistItem(c.id, c.text, list(c.required_kinds or []),
                          [k for k in c.required_kinds or [] if k not in held])
            for c in criteria(s, task.channel_id)]


@dataclass(frozen=True)
class EvidenceFlag:
    """Something about a file the verifier must look at before 销号.

    ``kind``: ``duplicate`` — the same bytes (SHA-256) are evidence of another task; ``after_is_before`` —
    an 整改后 file is byte for byte a 整改前 file of the same task. ``other_task`` is set only when the
    membership may see it; ``hidden`` says the other task lies outside the membership's scope.
    """

    kind: str
    evidence_id: int | None
    evidence_name: str
    evidence_kind: str
    other_name: str = ""
    other_kind: str = ""
    other_task: Task | None = None
    hidden: bool = False
    message: str = field(default="", compare=False)


def _duplicate_message(e: Evidence, other: Evidence | None, task: Task | None) -> str:
    mine = f"{EVIDENCE_KINDS.get(e.kind, e.kind)}材料“{e.original_name}”"
    if task is None:
        return f"{mine}与您管辖范围以外的另一任务中的佐证材料完全相同（SHA-256一致）"
    return (f"{mine}与任务{task.code}“{task.title}”的{EVIDENCE_KINDS.get(other.kind, other.kind)}材料"
            f"“{other.original_name}”完全相同（SHA-256一致）")


def _duplicates(s: Session, membership: Membership, task: Task) -> list[EvidenceFlag]:
    by_hash: dict[str, list[Evidence]] = {}
    for e in task.evidence:
        by_hash.setdefault(e.sha256, []).append(e)
    if not by_hash:
        return []
    with s.no_autoflush:  # a check never writes: files being attached stay pending
        others = s.scalars(select(Evidence).where(Evidence.sha256.in_(by_hash), Evidence.task_id != task.id)
                           .order_by(Evidence.task_id, Evidence.id).options(selectinload(Evidence.task))).all()
        # which of those tasks the membership may see: one query, not a scope check per file
        seeable = set(s.scalars(visible_tasks(membership).with_only_columns(Task.id)
                                .where(Task.id.in_({o.task_id for o in others})))) if others else set()
    flags: list[EvidenceFlag] = []
    seen: set[tuple[int, int | None]] = set()
    for other in others:
        visible = other.task if other.task_id in seeable else None
        for e in by_hash[other.sha256]:
            key = (id(e), visible.id if visible else None)
            if key in seen:
                continue
            seen.add(key)
            flags.append(EvidenceFlag(
                "duplicate", e.id, e.original_name, e.kind,
                other_name=other.original_name if visible else "", other_kind=other.kind if visible else "",
                other_task=visible, hidden=visible is None, message=_duplicate_message(e, other, visible)))
    return flags


def _after_is_before(task: Task) -> list[EvidenceFlag]:
    before = {}
    for e in task.evidence:
        if e.kind == "before":
            before.setdefault(e.sha256, e)
    flags = []
    for e in task.evidence:
        if e.kind == "after" and e.sha256 in before:
            original = before[e.sha256]
            flags.append(EvidenceFlag(
                "after_is_before", e.id, e.original_name, e.kind, other_name=original.original_name,
                other_kind=original.kind,
                message=f"整改后材料“{e.original_name}”与本任务的整改前材料“{original.original_name}”完全相同"))
    return flags


def evidence_flags(s: Session, membership: Membership, task: Task) -> list[EvidenceFlag]:
    """The flags a verifier must see on this task's evidence (see ``EvidenceFlag``)."""
    return _after_is_before(task) + _duplicates(s, membership, task)


def check_closure(s: Session, task: Task, ticked: Iterable[Any] | None,
                  new_kinds: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The ``close`` handler's check: every active item of the channel ticked, and the evidence each asks
    for held (or being attached now). Returns the completed checklist to record; raises ``ActionError``
    naming what is missing."""
    items = checklist_for(s, task, new_kinds)
    try:
        ticked_ids = {int(i) for i in ticked or []}
    except (TypeError, ValueError):
        raise ActionError("销号标准的勾选项无效") from None
    if ticked_ids - {item.id for item in items}:
        raise ActionError("所勾选的销号标准不属于该问题来源或已停用，请刷新后重试")
    unticked = [item.text for item in items if item.id not in ticked_ids]
    if unticked:
        raise ActionError("请逐项核对销号标准，尚未勾选：{items}", items="；".join(unticked))
    missing = [item for item in items if item.missing_kinds]
    if missing:
        raise ActionError("佐证材料不齐，不能销号：{items}", items="；".join(
            f"“{item.text}”缺少{kind_labels(item.missing_kinds)}材料" for item in missing))
    return [{"id": item.id, "text": item.text} for item in items]
