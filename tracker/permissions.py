"""Scope and permission, in one place (DESIGN §2).

``visible_tasks(membership)`` is the only query that decides which tasks a membership sees; every
page, download, export and job starts from it. ``can(membership, action, task)`` decides whether a
membership may take a workflow action on a task now, and says why not (a Chinese msgid, ``tracker.i18n``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, or_, select

from tracker.i18n import Msg
from tracker.models import Membership, Region, Role, Task, TaskUnit, Unit
from tracker.workflow import (
    OPEN_STATES,
    PARENT_ACTIONS,
    STATE_LABELS,
    TRANSITIONS,
    Party,
    State,
    transition,
)

# Roles that see a whole region subtree.
SUBTREE_ROLES = frozenset({Role.admin.value, Role.supervisor.value, Role.viewer.value})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def region_prefix(membership: Membership) -> str:
    """The path prefix of the membership's region subtree."""
    return membership.unit.region.path


def visible_tasks(membership: Membership | None) -> Select[tuple[Task]]:
    """Every task this membership may read, as a query to filter further."""
    query = select(Task)
    if membership is None or not membership.active or not membership.user.active:
        return query.where(False)
    if membership.role in SUBTREE_ROLES:
        return query.join(Region, Task.region_id == Region.id).where(
            Region.path.startswith(region_prefix(membership), autoescape=True)
        )
    involved = exists().where(TaskUnit.task_id == Task.id, TaskUnit.unit_id == membership.unit_id)
    return query.where(involved)


def visible_regions(membership: Membership) -> Select[tuple[Region]]:
    """Regions in the membership's subtree (its own region and below)."""
    return select(Region).where(Region.path.startswith(region_prefix(membership), autoescape=True))


def concerning_regions(membership: Membership) -> Select[tuple[int]]:
    """Ids of the regions whose region-wide measures (区域限批) concern the membership: its subtree and the
    regions above it (a measure against 湘潭市 concerns 雨湖区), never a neighbour's."""
    prefix = region_prefix(membership)
    above = [int(part) for part in prefix.strip("/").split("/") if part]
    return select(Region.id).where(or_(Region.path.startswith(prefix, autoescape=True), Region.id.in_(above)))


def visible_units(membership: Membership) -> Select[tuple[Unit]]:
    """Units whose region lies in the membership's subtree."""
    return (
        select(Unit)
        .join(Region, Unit.region_id == Region.id)
        .where(Region.path.startswith(region_prefix(membership), autoescape=True))
    )


def in_subtree(membership: Membership, region: Region) -> bool:
    return region.path.startswith(region_prefix(membership))


def in_scope(membership: Membership, task: Task) -> bool:
    """The object-level twin of ``visible_tasks`` (tested to agree with it)."""
    if not membership.active or not membership.user.active:
        return False
    if membership.role in SUBTREE_ROLES:
        return in_subtree(membership, task.region)
    return any(tu.unit_id == membership.unit_id for tu in task.task_units)


def parties(membership: Membership, task: Task) -> set[Party]:
    """What this membership is to the task: supervisor, lead unit, participant unit."""
    found: set[Party] = set()
    if not in_scope(membership, task):
        return found
    if membership.role == Role.supervisor.value:
        found.add(Party.supervisor)
    if membership.role == Role.unit.value:
        for tu in task.task_units:
            if tu.unit_id == membership.unit_id:
                found.add(Party.lead if tu.role == "lead" else Party.participant)
    return found


def closing_level(task: Task) -> int:
    """The lowest region level allowed to close (销号) the task (DESIGN §4)."""
    if task.channel.closing_level is not None:
        return task.channel.closing_level
    assigner = task.assigned_by_unit or task.registered_by_unit
    return assigner.region.level


def needs_pre_verify(task: Task) -> bool:
    """初验 is required when the channel names a 初验 level and the task lies at or below it."""
    level = task.channel.pre_verify_level
    return level is not None and task.region.level >= level > closing_level(task)


def is_involved_user(membership: Membership, task: Task) -> bool:
    """Four-eyes: the actor's user applied for closure, or belongs to a lead or participant unit."""
    if task.closure_applied_by_id == membership.user_id:
        return True
    task_unit_ids = {tu.unit_id for tu in task.task_units}
    return any(m.unit_id in task_unit_ids for m in membership.user.memberships)


def can_see_complainant(membership: Membership, task: Task) -> bool:
    """信访人信息: supervisors of the assigning level only — never units, viewers or admins."""
    if membership.role != Role.supervisor.value or not in_scope(membership, task):
        return False
    assigner = task.assigned_by_unit or task.registered_by_unit
    return membership.unit.region_id == assigner.region_id


def can_register(membership: Membership, region: Region) -> Decision:
    if membership.role != Role.supervisor.value:
        return _deny("只有督办人员可以登记问题")
    if not in_subtree(membership, region):
        return _deny("所在地区不在您的管辖范围内")
    return ALLOW


def can_edit(membership: Membership, task: Task) -> Decision:
    if Party.supervisor not in parties(membership, task):
        return _deny("只有督办人员可以修改台账字段")
    if task.state == State.cancelled.value:
        return _deny("已作废的任务不能修改")
    return ALLOW


def can(membership: Membership, action: str, task: Task) -> Decision:
    """Whether ``membership`` may take ``action`` on ``task`` now; the reason when not."""
    row = transition(action)
    if not in_scope(membership, task):
        return _deny("该任务不在您的管辖范围内")
    state = State(task.state)
    if state not in row.sources:
        return _deny(Msg("当前状态为“{state}”，不能{action}", state=Msg(STATE_LABELS[state]), action=Msg(row.label)))
    if not parties(membership, task) & row.parties:
        return _deny(Msg("您的身份不能{action}", action=Msg(row.label)))
    if task.children and action not in PARENT_ACTIONS:
        return _deny("该任务已分解交办，由各子任务办理")
    guard = _GUARDS.get(action)
    return guard(membership, task) if guard else ALLOW


def _guard_submit_plan(membership: Membership, task: Task) -> Decision:
    if task.plan_submitted_on is not None:
        return _deny("整改方案已报送，正在审核")
    return ALLOW


def _guard_review_plan(membership: Membership, task: Task) -> Decision:
    if task.plan_submitted_on is None:
        return _deny("尚未报送整改方案")
    return ALLOW


def _guard_pre_verify(membership: Membership, task: Task) -> Decision:
    if is_involved_user(membership, task):
        return _deny("申请销号人及责任单位人员不能初验本任务")
    level = membership.unit.region.level
    if level <= closing_level(task):
        return _deny("您所在层级可直接验收销号，无需初验")
    pre_level = task.channel.pre_verify_level
    if pre_level is not None and level > pre_level:
        return _deny("该来源的问题须由市州初验")
    if task.pre_verified_on is not None:
        return _deny("已初验，等待验收销号")
    return ALLOW


def _guard_close(membership: Membership, task: Task) -> Decision:
    if is_involved_user(membership, task):
        return _deny("申请销号人及责任单位人员不能验收销号本任务")
    if membership.unit.region.level > closing_level(task):
        return _deny("该任务须由上级验收销号，您可以初验")
    if needs_pre_verify(task) and task.pre_verified_on is None:
        return _deny("该任务须先经初验")
    return ALLOW


def _guard_cancel(membership: Membership, task: Task) -> Decision:
    if any(child.state in {s.value for s in OPEN_STATES} for child in task.children):
        return _deny("子任务尚未全部办结，不能作废")
    return ALLOW


def _guard_request_extension(membership: Membership, task: Task) -> Decision:
    if task.deadline is None:
        return _deny("长期坚持的任务没有时限，无需申请延期")
    if task.pending_extension is not None:
        return _deny("已有延期申请正在审批")
    return ALLOW


def _guard_decide_extension(membership: Membership, task: Task) -> Decision:
    if task.pending_extension is None:
        return _deny("没有待审批的延期申请")
    return ALLOW


_GUARDS = {
    "request_extension": _guard_request_extension,
    "decide_extension": _guard_decide_extension,
    "submit_plan": _guard_submit_plan,
    "approve_plan": _guard_review_plan,
    "return_plan": _guard_review_plan,
    "pre_verify": _guard_pre_verify,
    "close": _guard_close,
    "cancel": _guard_cancel,
}


def available_actions(membership: Membership, task: Task) -> list[str]:
    """The actions this membership may take on the task now, in table order."""
    return [name for name in TRANSITIONS if name != "register" and can(membership, name, task)]


def blocked_actions(membership: Membership, task: Task) -> list[tuple[str, str]]:
    """Actions this membership would take from the task's state but may not now, with the reason
    (e.g. 验收销号 before 初验), so a page can say why instead of silently leaving a button out."""
    mine = parties(membership, task)
    result = []
    for name, row in TRANSITIONS.items():
        if name == "register" or State(task.state) not in row.sources or not mine & row.parties:
            continue
        decision = can(membership, name, task)
        if not decision:
            result.append((row.label, decision.reason))
    return result


def can_admin_province(membership: Membership | None) -> bool:
    """Nation- or province-wide settings (calendar, reporting period): a province admin, or the CLI."""
    return membership is None or (membership.role == Role.admin.value and membership.unit.region.level == 0)
