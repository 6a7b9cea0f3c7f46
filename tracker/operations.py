"""One function per verb that changes data (STYLE: operations).

Each takes the acting ``Membership`` and ``now`` (aware UTC) from its boundary, validates everything
before it changes anything, changes rows, writes an ``Event`` and flushes. The caller commits, or
rolls back when an ``ActionError`` is raised. ``perform`` applies the workflow table and is the only
code that sets ``Task.state``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from tracker import calendars, closure, notify, schedule, settings
from tracker.audit import ActionError, ConflictError, record_event
from tracker.deadlines import DeadlineError, parse_deadline
from tracker.i18n import N_, Msg
from tracker.models import (
    CATEGORIES,
    DEADLINE_KINDS,
    EVIDENCE_KINDS,
    TASK_KINDS,
    Channel,
    Complainant,
    EscalationRecord,
    Evidence,
    ExtensionRequest,
    Membership,
    Milestone,
    Problem,
    ProgressReport,
    Region,
    Round,
    Task,
    TaskLink,
    TaskUnit,
    Unit,
)
from tracker.permissions import can, can_edit, can_register, in_scope, in_subtree
from tracker.storage import StoredFile
from tracker.timeutil import local_date
from tracker.workflow import FINAL_STATES, State, next_state, transition

# --- registering and editing ------------------------------------------------------------------

# Ledger fields a supervisor may edit directly; state, deadline and units change only by actions.
EDITABLE_FIELDS = (
    "code",
    "title",
    "description",
    "kind",
    "category",
    "responsible_leader",
    "contact",
    "target",
    "measures",
    "accountability",
    "remarks",
)
REQUIRED_TEXT = {"title": N_("问题名称"), "code": N_("问题编号")}


@dataclass
class TaskFields:
    """What a supervisor enters when registering (登记) a problem."""

    title: str
    channel_id: int
    round_id: int
    region_id: int
    kind: str = "反馈问题"
    code: str = ""
    description: str = ""
    category: str = "其他"
    problem_title: str = ""
    responsible_leader: str = ""
    contact: str = ""
    target: str = ""
    measures: str = ""
    remarks: str = ""
    complainant: dict[str, str] = field(default_factory=dict)


def register_task(s: Session, actor: Membership, now: dt.datetime, fields: TaskFields) -> Task:
    """登记: put a problem on the books as a pending task."""
    region = s.get(Region, fields.region_id)
    channel = s.get(Channel, fields.channel_id)
    round_ = s.get(Round, fields.round_id)
    if region is None or channel is None or round_ is None:
        raise ActionError("所在地区、问题来源或批次不存在")
    decision = can_register(actor, region)
    if not decision:
        raise ActionError(decision.reason)
    title = fields.title.strip()
    if not title:
        raise ActionError("请填写问题名称")
    _check_choice(fields.kind, TASK_KINDS, N_("问题类型"))
    _check_choice(fields.category, CATEGORIES, N_("问题领域"))
    code = fields.code.strip() or _next_code(s, channel.id, round_.id, region.id, local_date(now))
    _check_code_free(s, channel.id, round_.id, region.id, code)
    complainant = {k: v.strip() for k, v in fields.complainant.items() if v and v.strip()}
    if complainant and fields.kind != "交办信访件":
        raise ActionError("信访人信息只能登记在交办信访件上")
    task = Task(
        code=code,
        channel_id=channel.id,
        round_id=round_.id,
        region_id=region.id,
        kind=fields.kind,
        title=title,
        description=fields.description.strip(),
        category=fields.category,
        responsible_leader=fields.responsible_leader.strip(),
        contact=fields.contact.strip(),
        target=fields.target.strip(),
        measures=fields.measures.strip(),
        remarks=fields.remarks.strip(),
        registered_by_unit_id=actor.unit_id,
        state=State.pending.value,
    )
    if fields.problem_title.strip():
        task.problem = find_or_create_problem(s, channel.id, round_.id, fields.problem_title.strip())
    s.add(task)
    s.flush()
    if complainant:
        s.add(Complainant(task_id=task.id, **complainant))
    record_event(s, actor, now, "register", task=task, to_state=task.state, data={"code": code, "title": title})
    s.flush()
    return task


def find_or_create_problem(s: Session, channel_id: int, round_id: int, title: str) -> Problem:
    """所属问题 by its title within (channel, round)."""
    problem = s.scalar(
        select(Problem).where(Problem.channel_id == channel_id, Problem.round_id == round_id, Problem.title == title)
    )
    if problem is None:
        count = s.scalar(
            select(func.count()).select_from(Problem).where(
                Problem.channel_id == channel_id, Problem.round_id == round_id
            )
        )
        problem = Problem(channel_id=channel_id, round_id=round_id, code=f"P{count + 1:03d}", title=title)
        s.add(problem)
        s.flush()
    return problem


def _next_code(s: Session, channel_id: int, round_id: int, region_id: int, today: dt.date) -> str:
    """A readable code for a problem entered by hand: YYYY-NNNN within (channel, round, region)."""
    count = s.scalar(
        select(func.count()).select_from(Task).where(
            Task.channel_id == channel_id, Task.round_id == round_id, Task.region_id == region_id
        )
    ) or 0
    n = count + 1
    while True:
        code = f"{today.year}-{n:04d}"
        if not _code_taken(s, channel_id, round_id, region_id, code):
            return code
        n += 1


def _code_taken(s: Session, channel_id: int, round_id: int, region_id: int, code: str, exclude: int | None = None):
    query = select(Task.id).where(
        Task.channel_id == channel_id, Task.round_id == round_id, Task.region_id == region_id, Task.code == code
    )
    if exclude is not None:
        query = query.where(Task.id != exclude)
    return s.scalar(query.limit(1)) is not None


def _check_code_free(s, channel_id, round_id, region_id, code, exclude=None) -> None:
    if _code_taken(s, channel_id, round_id, region_id, code, exclude):
        raise ActionError("问题编号“{code}”在同一来源、批次和地区内已存在", code=code)


def _check_choice(value: str, choices, label: str) -> None:
    if value not in choices:
        raise ActionError("{label}“{value}”无效", label=Msg(label), value=value)


def edit_task(
    s: Session, task: Task, actor: Membership, now: dt.datetime, expected_version: int, changes: dict[str, str]
) -> Task:
    """修改台账字段 with before/after in the history; no event when nothing changed."""
    _check_version(task, expected_version)
    decision = can_edit(actor, task)
    if not decision:
        raise ActionError(decision.reason)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ActionError("这些字段只能通过办理操作修改：{fields}", fields="、".join(sorted(unknown)))
    cleaned = {k: (v or "").strip() for k, v in changes.items()}
    for name, label in REQUIRED_TEXT.items():
        if name in cleaned and not cleaned[name]:
            raise ActionError("请填写{label}", label=Msg(label))
    if "kind" in cleaned:
        _check_choice(cleaned["kind"], TASK_KINDS, N_("问题类型"))
    if "category" in cleaned:
        _check_choice(cleaned["category"], CATEGORIES, N_("问题领域"))
    if "code" in cleaned and cleaned["code"] != task.code:
        _check_code_free(s, task.channel_id, task.round_id, task.region_id, cleaned["code"], exclude=task.id)
    before = {k: getattr(task, k) for k in cleaned if getattr(task, k) != cleaned[k]}
    if not before:
        return task
    for name in before:
        setattr(task, name, cleaned[name])
    after = {k: cleaned[k] for k in before}
    record_event(s, actor, now, "edit", task=task, data={"before": before, "after": after})
    s.flush()
    return task


# --- the workflow -------------------------------------------------------------------------------


def _check_version(task: Task, expected_version: int | None) -> None:
    if expected_version is not None and int(expected_version) != task.version:
        raise ConflictError()


Handler = Callable[[Session, Task, Membership, dt.datetime, dict[str, Any]], dict[str, Any]]


def perform(
    s: Session,
    task: Task,
    action: str,
    actor: Membership,
    now: dt.datetime,
    *,
    expected_version: int | None = None,
    **params: Any,
) -> Task:
    """Apply one workflow action: check who and when, validate, change, record, flush."""
    _check_version(task, expected_version)
    decision = can(actor, action, task)
    if not decision:
        raise ActionError(decision.reason)
    handler = HANDLERS[action]
    from_state = task.state
    data, effective_on = handler(s, task, actor, now, params)
    _set_state(task, next_state(action, State(from_state)))
    # Every action bumps the version, also one that changes only other rows (改派 from 已交办, a second
    # report on the same day): a form made before it must get the conflict message.
    flag_modified(task, "state")
    record_event(
        s, actor, now, action, task=task, data=data, from_state=from_state, to_state=task.state,
        effective_on=effective_on,
    )
    _after_close_or_reopen(s, task, action, actor, now)
    _refresh_schedules(s, task, _today(now))
    notify.notice(s, task, action, actor, now, _notice_detail(data))
    s.flush()
    return task


def _notice_detail(data: dict[str, Any]) -> str:
    """The line of an immediate notice that says what was decided or asked."""
    parts = []
    for key, label in (("measure", "措施"), ("doc_no", "文号"), ("reason", "理由"), ("opinion", "意见"),
                       ("note", "说明"), ("deadline_text", "时限"), ("new_deadline", "延期至")):
        if data.get(key):
            value = data[key].isoformat() if isinstance(data[key], dt.date) else str(data[key])
            parts.append(f"{label}：{value}")
    if "approved" in data:
        parts.insert(0, "同意延期" if data["approved"] else "不同意延期")
    return "；".join(parts)


def _refresh_schedules(s: Session, task: Task, today: dt.date) -> None:
    """Keep today's 序时进度 on the task (and its split family) current after every action."""
    with s.no_autoflush:  # one flush for the whole action: the version moves by one
        ctx = schedule.load_context(s)
        for t in {task, *task.children, *([task.parent] if task.parent else [])}:
            schedule.refresh(t, today, ctx)


def _set_state(task: Task, state: State) -> None:
    task.state = state.value


def _text(params: dict[str, Any], name: str, label: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise ActionError("请填写{label}", label=Msg(label))
    return value


def _today(now: dt.datetime) -> dt.date:
    return local_date(now)


def _units(s: Session, ids: Sequence[int], label: str) -> list[Unit]:
    units = []
    for unit_id in dict.fromkeys(int(i) for i in ids):
        unit = s.get(Unit, unit_id)
        if unit is None or not unit.active:
            raise ActionError("{label}不存在或已停用", label=Msg(label))
        units.append(unit)
    return units


def _pick_units(s: Session, leads: Sequence[int], participants: Sequence[int]) -> tuple[list[Unit], list[Unit]]:
    """The lead and participant units of a form, checked (at least one lead, no unit in both)."""
    lead_units = _units(s, leads, N_("牵头单位"))
    if not lead_units:
        raise ActionError("请选择至少一个牵头单位")
    participant_units = _units(s, participants, N_("参与单位"))
    overlap = {u.id for u in lead_units} & {u.id for u in participant_units}
    if overlap:
        raise ActionError("同一单位不能既牵头又参与")
    return lead_units, participant_units


def _set_units(s: Session, task: Task, leads: Sequence[int], participants: Sequence[int]) -> dict[str, list[str]]:
    lead_units, participant_units = _pick_units(s, leads, participants)
    task.task_units.clear()
    s.flush()
    for i, unit in enumerate(lead_units):
        task.task_units.append(TaskUnit(unit_id=unit.id, role="lead", position=i))
    for i, unit in enumerate(participant_units):
        task.task_units.append(TaskUnit(unit_id=unit.id, role="participant", position=len(lead_units) + i))
    return {"leads": [u.name for u in lead_units], "participants": [u.name for u in participant_units]}


# The latest deadline accepted, in years from today: plans run to 2035 (“十四五” and beyond); a typo such as
# 2926年 must not make every working-day computation walk nine centuries.
MAX_DEADLINE_YEARS = 30


def _not_centuries_ahead(deadline: dt.date, today: dt.date) -> None:
    if deadline.year > today.year + MAX_DEADLINE_YEARS:
        raise ActionError("整改时限不能晚于{limit}年", limit=today.year + MAX_DEADLINE_YEARS)


def _deadline(s: Session, params: dict[str, Any], today: dt.date) -> tuple[dt.date | None, str, str]:
    """The (date, kind, text) of a deadline given in a form: a date, 长期坚持, or the text as the
    government sheet writes it (2026年6月底前, 15个工作日内, 长期坚持 …), read by ``deadlines``."""
    kind = params.get("deadline_kind") or "date"
    if kind not in DEADLINE_KINDS:
        raise ActionError("时限类型无效")
    deadline = params.get("deadline")
    text = (params.get("deadline_text") or "").strip()
    if kind == "long_term" and deadline is None and not text:
        return None, kind, "长期坚持"
    if deadline is None and text:
        deadline, kind = _parse_deadline_text(s, text, today)
        if deadline is None:
            return None, kind, text
    if deadline is None:
        raise ActionError("请填写整改时限")
    if not isinstance(deadline, dt.date):
        raise ActionError("整改时限不是有效日期")
    if deadline < today:
        raise ActionError("整改时限不能早于今天")
    _not_centuries_ahead(deadline, today)
    return deadline, kind, text or f"{deadline.year}年{deadline.month}月{deadline.day}日前"


def _parse_deadline_text(s: Session, text: str, assigned_on: dt.date) -> tuple[dt.date | None, str]:
    try:
        parsed = parse_deadline(text, assigned_on=assigned_on, add_workdays=calendars.load(s).add_workdays,
                                immediate_workdays=settings.time_settings(s).immediate_workdays)
    except DeadlineError as exc:
        raise ActionError(exc.args[0]) from None
    return parsed.date, parsed.kind


def _h_assign(s, task, actor, now, params):
    today = _today(now)
    assigned_on = params.get("assigned_on") or today
    if not isinstance(assigned_on, dt.date) or assigned_on > today:
        raise ActionError("交办日期无效或晚于今天")
    deadline, kind, text = _deadline(s, params, assigned_on)
    units = _set_units(s, task, params.get("leads") or [], params.get("participants") or [])
    task.deadline, task.deadline_kind, task.deadline_text = deadline, kind, text
    if task.original_deadline is None:
        task.original_deadline = deadline
    task.assigned_on = task.cycle_started_on = assigned_on
    task.assigned_by_unit = actor.unit
    return {**units, "deadline": deadline, "deadline_kind": kind, "deadline_text": text,
            "assigned_on": assigned_on}, assigned_on


def _h_split(s, task, actor, now, params):
    children = params.get("children") or []
    if len(children) < 2:
        raise ActionError("分解交办至少需要两个子任务")
    today = _today(now)
    planned = []
    for i, spec in enumerate(children, start=1):
        region = s.get(Region, int(spec.get("region_id") or 0))
        if region is None or not in_subtree(actor, region) or not region.path.startswith(task.region.path):
            raise ActionError("第{i}个子任务的地区不在本任务范围内", i=i)
        deadline, kind, text = _deadline(s, spec, today)
        if not spec.get("leads"):
            raise ActionError("第{i}个子任务请选择牵头单位", i=i)
        _pick_units(s, spec.get("leads") or [], spec.get("participants") or [])
        _check_code_free(s, task.channel_id, task.round_id, region.id, f"{task.code}-{i}")
        planned.append((region, spec, deadline, kind, text))
    names = []
    for i, (region, spec, deadline, kind, text) in enumerate(planned, start=1):
        child = _make_child(s, task, region, i, spec)
        record_event(s, actor, now, "register", task=child, to_state=State.pending.value,
                     data={"split_from": task.code, "code": child.code, "title": child.title})
        units = _set_units(s, child, spec.get("leads") or [], spec.get("participants") or [])
        child.deadline, child.deadline_kind, child.deadline_text = deadline, kind, text
        child.original_deadline = deadline
        child.assigned_on, child.assigned_by_unit, child.cycle_started_on = today, actor.unit, today
        _set_state(child, State.assigned)
        record_event(s, actor, now, "assign", task=child, from_state=State.pending.value, to_state=child.state,
                     data={**units, "deadline": deadline, "deadline_kind": kind, "deadline_text": text,
                           "assigned_on": today})
        notify.notice(s, child, "assign", actor, now, f"时限：{text}")
        names.append(f"{child.code} {region.name}")
    task.assigned_on, task.assigned_by_unit = today, actor.unit
    return {"children": names}, today


def _make_child(s: Session, parent: Task, region: Region, index: int, spec: dict[str, Any]) -> Task:
    code = f"{parent.code}-{index}"
    _check_code_free(s, parent.channel_id, parent.round_id, region.id, code)
    child = Task(
        code=code, channel_id=parent.channel_id, round_id=parent.round_id, region_id=region.id,
        kind=parent.kind, problem_id=parent.problem_id, parent=parent,
        title=(spec.get("title") or "").strip() or f"{parent.title}（{region.name}）",
        description=parent.description, category=parent.category, target=parent.target,
        measures=parent.measures, registered_by_unit_id=parent.registered_by_unit_id,
        state=State.pending.value,
    )
    s.add(child)
    s.flush()
    return child


def _h_decline(s, task, actor, now, params):
    reason = _text(params, "reason", N_("退办理由"))
    leads = [u.name for u in task.lead_units]
    task.task_units.clear()
    task.assigned_on = None
    return {"reason": reason, "leads": leads}, None


def _h_sign(s, task, actor, now, params):
    task.signed_on = _today(now)
    return {}, None


def _milestones(params: dict[str, Any], task: Task) -> list[Milestone]:
    result = []
    for i, m in enumerate(params.get("milestones") or [], start=1):
        description = (m.get("description") or "").strip()
        due_on = m.get("due_on")
        if not description or not isinstance(due_on, dt.date):
            raise ActionError("第{i}个阶段目标须有日期和内容", i=i)
        if task.deadline is not None and due_on > task.deadline:
            raise ActionError("第{i}个阶段目标的日期晚于整改时限", i=i)
        percent = m.get("planned_percent")
        if percent is not None and not 0 <= int(percent) <= 100:
            raise ActionError("第{i}个阶段目标的计划进度须在0到100之间", i=i)
        result.append(Milestone(due_on=due_on, description=description,
                                planned_percent=None if percent is None else int(percent)))
    return result


def _h_submit_plan(s, task, actor, now, params):
    target = _text(params, "target", N_("整改目标"))
    measures = _text(params, "measures", N_("整改措施"))
    milestones = _milestones(params, task)
    task.target, task.measures = target, measures
    for m in [m for m in task.milestones if m.met_on is None]:
        task.milestones.remove(m)
    task.milestones.extend(milestones)
    task.plan_submitted_on = _today(now)
    for key in ("responsible_leader", "contact"):
        if (params.get(key) or "").strip():
            setattr(task, key, params[key].strip())
    return {
        "target": target,
        "measures": measures,
        "milestones": [{"due_on": m.due_on, "description": m.description, "planned_percent": m.planned_percent}
                       for m in milestones],
    }, None


def _h_approve_plan(s, task, actor, now, params):
    task.plan_approved_on = _today(now)
    return {"opinion": (params.get("opinion") or "").strip()}, None


def _h_return_plan(s, task, actor, now, params):
    reason = _text(params, "reason", N_("退回理由"))
    task.plan_submitted_on = None
    return {"reason": reason}, None


def _check_files(files: Sequence[StoredFile]) -> None:
    for f in files:
        if f.kind not in EVIDENCE_KINDS:
            raise ActionError("佐证材料类型“{kind}”无效", kind=f.kind)


def _attach(task: Task, actor: Membership, now: dt.datetime, files: Sequence[StoredFile], report=None) -> list:
    _check_files(files)
    for f in files:
        task.evidence.append(Evidence(
            kind=f.kind, original_name=f.original_name, stored_name=f.stored_name, size=f.size,
            sha256=f.sha256, content_type=f.content_type, membership_id=actor.id, uploaded_at=now,
            report=report,
        ))
    return [{"name": f.original_name, "kind": f.kind, "size": f.size, "sha256": f.sha256} for f in files]


def _percent(params: dict[str, Any]) -> int | None:
    value = params.get("percent")
    if value in (None, ""):
        return None
    try:
        percent = int(value)
    except (TypeError, ValueError):
        raise ActionError("完成进度须是0到100之间的整数") from None
    if not 0 <= percent <= 100:
        raise ActionError("完成进度须是0到100之间的整数")
    return percent


def _h_report(s, task, actor, now, params):
    text = _text(params, "text", N_("进展情况"))
    percent = _percent(params)
    today = _today(now)
    met_ids = {int(i) for i in params.get("milestones_met") or []}
    by_id = {m.id: m for m in task.milestones}
    if met_ids - set(by_id):
        raise ActionError("所选阶段目标不属于本任务")
    if any(by_id[i].met_on is not None for i in met_ids):
        raise ActionError("所选阶段目标已报告完成")
    _check_files(params.get("files") or [])
    report = ProgressReport(reported_on=today, text=text, percent=percent, purpose="progress",
                            membership_id=actor.id, created_at=now)
    task.reports.append(report)
    files = _attach(task, actor, now, params.get("files") or [], report)
    for i in met_ids:
        by_id[i].met_on = today
    task.latest_report_on = today
    if percent is not None:
        task.latest_percent = percent
    met = [by_id[i].description for i in sorted(met_ids)]
    return {"text": text, "percent": percent, "milestones_met": met, "files": files}, None


def _h_submit(s, task, actor, now, params):
    text = _text(params, "text", N_("整改完成情况（销号申请）"))
    files = params.get("files") or []
    if not files:
        raise ActionError("申请销号须上传至少一份佐证材料")
    _check_files(files)
    today = _today(now)
    report = ProgressReport(reported_on=today, text=text, percent=100, purpose="closure",
                            membership_id=actor.id, created_at=now)
    task.reports.append(report)
    attached = _attach(task, actor, now, files, report)
    task.closure_report = text
    task.closure_applied_on = today
    task.closure_applied_by_id = actor.user_id
    task.pre_verified_on, task.pre_verify_opinion = None, ""
    task.latest_report_on, task.latest_percent = today, 100
    return {"text": text, "files": attached}, None


def _h_pre_verify(s, task, actor, now, params):
    opinion = _text(params, "opinion", N_("初验意见"))
    _check_files(params.get("files") or [])
    task.pre_verified_on, task.pre_verify_opinion = _today(now), opinion
    return {"opinion": opinion, "files": _attach(task, actor, now, params.get("files") or [])}, None


def _h_return(s, task, actor, now, params):
    reason = _text(params, "reason", N_("退回理由"))
    task.closure_applied_on = task.closure_applied_by_id = None
    task.pre_verified_on, task.pre_verify_opinion = None, ""
    return {"reason": reason}, None


def _h_close(s, task, actor, now, params):
    opinion = _text(params, "opinion", N_("验收意见"))
    today = _today(now)
    closed_on = params.get("closed_on") or today
    if not isinstance(closed_on, dt.date):
        raise ActionError("销号日期不是有效日期")
    if closed_on > today:
        raise ActionError("销号日期不能晚于今天")
    if task.closure_applied_on and closed_on < task.closure_applied_on:
        raise ActionError("销号日期不能早于申请销号日期")
    if task.pre_verified_on and closed_on < task.pre_verified_on:
        raise ActionError("销号日期不能早于初验日期")
    verifier = None
    if params.get("verifier_unit_id"):
        verifier = s.get(Unit, int(params["verifier_unit_id"]))
        if verifier is None:
            raise ActionError("验收单位不存在")
    doc_no = (params.get("closure_doc_no") or "").strip()
    _check_files(params.get("files") or [])
    # 销号标准: every active item of the channel ticked and the evidence it asks for held (the files of
    # this form count); the completed checklist and the flags the verifier saw go into the history.
    checklist = closure.check_closure(s, task, params.get("checklist"), {f.kind for f in params.get("files") or []})
    files = _attach(task, actor, now, params.get("files") or [])
    flags = [f.message for f in closure.evidence_flags(s, actor, task)]
    task.verify_opinion, task.closed_on, task.closure_doc_no = opinion, closed_on, doc_no
    task.verifier_unit_id = verifier.id if verifier else actor.unit_id
    return {"opinion": opinion, "closed_on": closed_on, "verifier": (verifier or actor.unit).name,
            "closure_doc_no": doc_no, "files": files, "checklist": checklist, "flags": flags}, closed_on


def _h_reopen(s, task, actor, now, params):
    reason = _text(params, "reason", N_("重新整改理由"))
    deadline, kind, text = _deadline(s, params, _today(now))
    previous = {"closed_on": task.closed_on, "closure_doc_no": task.closure_doc_no}
    task.deadline, task.deadline_kind, task.deadline_text = deadline, kind, text
    task.closed_on = task.closure_applied_on = task.closure_applied_by_id = task.pre_verified_on = None
    task.verify_opinion = task.pre_verify_opinion = task.closure_doc_no = ""
    task.verifier_unit_id = None
    task.latest_percent = None  # the 100% of the closure no longer holds; the reports stay in history
    task.cycle_started_on = _today(now)
    task.reopen_count = (task.reopen_count or 0) + 1
    return {"reason": reason, "deadline": deadline, "deadline_kind": kind, "deadline_text": text,
            "previous": previous}, None


def _h_reassign(s, task, actor, now, params):
    """改派: new lead units; participants not given (None) keep the task's own, less the new leads."""
    before = [u.name for u in task.lead_units]
    leads = params.get("leads") or []
    participants = params.get("participants")
    if participants is None:
        chosen = {int(i) for i in leads}
        participants = [u.id for u in task.participant_units if u.id not in chosen]
    units = _set_units(s, task, leads, participants)
    task.signed_on = task.plan_submitted_on = task.plan_approved_on = None
    reason = (params.get("reason") or "").strip()
    return {"before": before, **units, "reason": reason}, None


def _h_cancel(s, task, actor, now, params):
    return {"reason": _text(params, "reason", N_("作废理由"))}, None


def _h_merge(s, task, actor, now, params):
    reason = _text(params, "reason", N_("合并理由"))
    kept = s.get(Task, int(params.get("merge_into") or 0))
    if kept is None or not in_scope(actor, kept):
        raise ActionError("要保留的任务不存在")
    if kept.id == task.id or kept.state == State.cancelled.value:
        raise ActionError("只能合并到另一个未作废的任务")
    task.merged_into_id = kept.id
    s.add(TaskLink(task_id=task.id, other_task_id=kept.id, kind="duplicate", note=reason, created_at=now))
    return {"reason": reason, "merge_into": kept.code}, None


def _h_request_extension(s, task, actor, now, params):
    reason = _text(params, "reason", N_("延期理由"))
    new_deadline = params.get("new_deadline")
    today = _today(now)
    if not isinstance(new_deadline, dt.date):
        raise ActionError("请填写申请延期至的日期")
    if today > task.deadline:
        raise ActionError("已超过整改时限，不能再申请延期，请联系督办人员调整时限")
    if new_deadline <= task.deadline:
        raise ActionError("延期后的时限须晚于现行时限")
    _not_centuries_ahead(new_deadline, today)
    task.extension_requests.append(ExtensionRequest(
        membership_id=actor.id, requested_on=today, old_deadline=task.deadline, new_deadline=new_deadline,
        reason=reason, status="pending"))
    return {"reason": reason, "old_deadline": task.deadline, "new_deadline": new_deadline}, None


def _h_decide_extension(s, task, actor, now, params):
    request = task.pending_extension
    decision = params.get("decision")
    if decision not in ("approve", "deny"):
        raise ActionError("请选择同意或不同意延期")
    note = (params.get("note") or "").strip()
    if decision == "deny" and not note:
        raise ActionError("不同意延期须说明理由")
    today = _today(now)
    approved = decision == "approve"
    if approved and task.deadline is not None and request.new_deadline <= task.deadline:
        raise ActionError("申请延期至的日期已不晚于现行时限，请不同意本次申请")
    if approved and request.new_deadline < today:
        raise ActionError("申请延期至的日期已过，请不同意本次申请")
    request.status = "approved" if approved else "denied"
    request.decided_by_id, request.decided_on, request.decision_note = actor.id, today, note
    data = {"approved": approved, "old_deadline": task.deadline, "new_deadline": request.new_deadline,
            "reason": request.reason, "note": note}
    if approved:
        task.deadline = request.new_deadline
        task.extension_count += 1
        task.cycle_started_on = today
    return data, None


def _h_change_deadline(s, task, actor, now, params):
    reason = _text(params, "reason", N_("调整理由"))
    deadline, kind, text = _deadline(s, params, _today(now))
    if (deadline, kind) == (task.deadline, task.deadline_kind):
        raise ActionError("新的时限与现行时限相同")
    old = {"deadline": task.deadline, "deadline_kind": task.deadline_kind, "deadline_text": task.deadline_text}
    task.deadline, task.deadline_kind, task.deadline_text = deadline, kind, text
    if task.original_deadline is None and task.assigned_on is not None:  # the original is the one of 交办
        task.original_deadline = deadline
    task.cycle_started_on = _today(now)
    return {"reason": reason, "deadline": deadline, "deadline_kind": kind, "deadline_text": text,
            "old": old}, None


# Formal acts (函告 … 约谈) need a 文号; 曝光 and 调查问责 are recorded with one when there is one.
FORMAL_LEVELS = range(2, 7)
REGION_LEVEL = 8  # 区域限批 is recorded against a region (escalation.restrict_region), not a task


def _h_confirm_measure(s, task, actor, now, params):
    rules = schedule.load_rules(s)
    level = int(params.get("level") or 0)
    if level not in rules or level <= 1 or level == REGION_LEVEL:
        raise ActionError("请选择督办措施")
    rule = rules[level]
    doc_no = (params.get("doc_no") or "").strip()
    if level in FORMAL_LEVELS and not doc_no:
        raise ActionError("{measure}须填写文号", measure=Msg(rule.name))
    if rule.decided_above and actor.unit.region.level >= task.region.level:
        raise ActionError("{measure}须由上一级决定", measure=Msg(rule.name))
    today = _today(now)
    decided_on = params.get("decided_on") or today
    if not isinstance(decided_on, dt.date) or decided_on > today:
        raise ActionError("决定日期无效或晚于今天")
    note = (params.get("note") or "").strip()
    cycle = task.cycle_started_on or task.assigned_on
    record = s.scalar(select(EscalationRecord).where(
        EscalationRecord.task_id == task.id, EscalationRecord.cycle_started_on == cycle,
        EscalationRecord.level == level))
    if record is not None and record.status in ("confirmed", "applied"):
        raise ActionError("本轮已{measure}", measure=Msg(rule.name))
    if record is None:
        record = EscalationRecord(task_id=task.id, level=level, cycle_started_on=cycle, reason=note)
        s.add(record)
    record.status, record.doc_no, record.decided_on, record.membership_id = "confirmed", doc_no, decided_on, actor.id
    task.escalation_level = max(task.escalation_level, level)
    return {"level": level, "measure": rule.name, "doc_no": doc_no, "note": note,
            "decided_on": decided_on}, decided_on


HANDLERS: dict[str, Handler] = {
    "confirm_measure": _h_confirm_measure,
    "request_extension": _h_request_extension,
    "decide_extension": _h_decide_extension,
    "change_deadline": _h_change_deadline,
    "assign": _h_assign,
    "split": _h_split,
    "decline": _h_decline,
    "sign": _h_sign,
    "submit_plan": _h_submit_plan,
    "approve_plan": _h_approve_plan,
    "return_plan": _h_return_plan,
    "report": _h_report,
    "submit": _h_submit,
    "pre_verify": _h_pre_verify,
    "return": _h_return,
    "close": _h_close,
    "reopen": _h_reopen,
    "reassign": _h_reassign,
    "cancel": _h_cancel,
    "merge": _h_merge,
}


def _after_close_or_reopen(s: Session, task: Task, action: str, actor: Membership, now: dt.datetime) -> None:
    """A split parent closes when its last child closes, and reopens when a child does."""
    parent = task.parent
    if parent is None:
        return
    if action == "close" and parent.state not in {st.value for st in FINAL_STATES}:
        children = parent.children
        if all(c.state in {State.closed.value, State.cancelled.value} for c in children) and any(
            c.state == State.closed.value for c in children
        ):
            closed_on = max(c.closed_on for c in children if c.closed_on is not None)
            from_state = parent.state
            parent.closed_on = closed_on
            _set_state(parent, State.closed)
            record_event(s, actor, now, "close", task=parent, from_state=from_state, to_state=parent.state,
                         data={"auto": "全部子任务已销号", "closed_on": closed_on}, effective_on=closed_on)
    elif action == "reopen" and parent.state == State.closed.value:
        parent.closed_on = None
        _set_state(parent, State.rectifying)
        record_event(s, actor, now, "reopen", task=parent, from_state=State.closed.value, to_state=parent.state,
                     data={"auto": f"子任务{task.code}重新整改"})


def link_tasks(s: Session, task: Task, other: Task, actor: Membership, now: dt.datetime, note: str = "") -> TaskLink:
    """举一反三: link two tasks the actor can see (once per pair)."""
    if not in_scope(actor, task) or not in_scope(actor, other) or task.id == other.id:
        raise ActionError("无法关联该任务")
    if can_edit(actor, task).allowed is False:
        raise ActionError("只有督办人员可以关联任务")
    exists_ = s.scalar(select(TaskLink.id).where(
        ((TaskLink.task_id == task.id) & (TaskLink.other_task_id == other.id))
        | ((TaskLink.task_id == other.id) & (TaskLink.other_task_id == task.id))
    ).limit(1))
    if exists_:
        raise ActionError("两个任务已经关联")
    link = TaskLink(task_id=task.id, other_task_id=other.id, kind="similar", note=note.strip(), created_at=now)
    s.add(link)
    record_event(s, actor, now, "link", task=task, data={"other": other.code, "note": note.strip()})
    s.flush()
    return link


__all__ = [
    "ActionError",
    "ConflictError",
    "TaskFields",
    "edit_task",
    "link_tasks",
    "perform",
    "record_event",
    "register_task",
    "transition",
]
