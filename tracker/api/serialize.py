"""Rows to API schemas. Scope is applied here as on the task page: linked, parent and child tasks only
when visible; never 信访人信息 (DESIGN §3: not in the API, whoever asks; it can be entered, not read)."""

from __future__ import annotations

from sqlalchemy.orm import selectinload

from tracker import calendars, schedule
from tracker.api import schemas as out
from tracker.api.registry import PREFIX, ApiContext
from tracker.models import (
    EVIDENCE_KINDS,
    ROLE_LABELS,
    ApiToken,
    Channel,
    EscalationRecord,
    LedgerArchive,
    Membership,
    Region,
    Round,
    Task,
    TaskUnit,
    Unit,
)
from tracker.permissions import available_actions, visible_tasks
from tracker.queries import deadline_facts, linked_tasks, timeline
from tracker.templating import action_label
from tracker.timeutil import local_date
from tracker.workflow import STATE_LABELS, State


def ref(row) -> out.Ref | None:
    return None if row is None else out.Ref(id=row.id, name=getattr(row, "name", None) or row.title)


def task_ref(task: Task | None) -> out.Ref | None:
    return None if task is None else out.Ref(id=task.id, name=f"{task.code} {task.title}")


def region(r: Region) -> out.RegionOut:
    return out.RegionOut(id=r.id, name=r.name, level=r.level, is_zone=r.is_zone, parent_id=r.parent_id)


def unit(u: Unit) -> out.UnitOut:
    return out.UnitOut(id=u.id, name=u.name, kind=u.kind, region=ref(u.region), aliases=[a.alias for a in u.aliases])


def channel(c: Channel) -> out.ChannelOut:
    return out.ChannelOut(id=c.id, name=c.name, closing_level=c.closing_level, pre_verify_level=c.pre_verify_level,
                          aliases=sorted(a.alias for a in c.aliases))


def round_(r: Round) -> out.RoundOut:
    return out.RoundOut(id=r.id, name=r.name, aliases=sorted(a.alias for a in r.aliases))


def membership(m: Membership) -> out.MembershipOut:
    return out.MembershipOut(id=m.id, role=m.role, role_label=ROLE_LABELS.get(m.role, m.role), unit=ref(m.unit),
                             region=region(m.unit.region))


def token(t: ApiToken) -> out.TokenOut:
    return out.TokenOut(id=t.id, name=t.name, prefix=t.prefix, created_at=t.created_at, last_used_at=t.last_used_at)


def task_summary(task: Task) -> out.TaskSummary:
    return out.TaskSummary(**_summary_fields(task))


def _summary_fields(task: Task) -> dict:
    return {
        "id": task.id, "code": task.code, "title": task.title, "kind": task.kind, "category": task.category,
        "state": task.state, "state_label": STATE_LABELS[State(task.state)], "channel": ref(task.channel),
        "round": ref(task.round), "region": ref(task.region),
        "lead_units": [ref(tu.unit) for tu in task.task_units if tu.role == "lead"],
        "participant_units": [ref(tu.unit) for tu in task.task_units if tu.role == "participant"],
        "deadline": task.deadline, "deadline_text": task.deadline_text, "deadline_kind": task.deadline_kind,
        "assigned_on": task.assigned_on, "closed_on": task.closed_on, "escalation_level": task.escalation_level,
        "schedule": task.schedule, "overdue": task.overdue, "not_reported": task.not_reported,
        "version": task.version, "updated_at": task.updated_at,
    }


def task_detail(ctx: ApiContext, task: Task) -> out.TaskDetail:
    """Every ledger field, milestones, reports, evidence metadata, links, children and the timeline."""
    s, m = ctx.s, ctx.membership
    visible = visible_tasks(m)
    children = s.scalars(visible.where(Task.parent_id == task.id).order_by(Task.id).options(
        selectinload(Task.task_units).selectinload(TaskUnit.unit))).all()
    parent = s.scalar(visible.where(Task.id == task.parent_id)) if task.parent_id else None
    merged = s.scalar(visible.where(Task.id == task.merged_into_id)) if task.merged_into_id else None
    timing = deadline_facts(calendars.load(s), task, local_date(ctx.now))
    return out.TaskDetail(
        **_summary_fields(task),
        description=task.description, problem=out.Ref(id=task.problem.id, name=task.problem.title)
        if task.problem else None, parent=task_ref(parent), children=[task_summary(c) for c in children],
        merged_into=task_ref(merged), responsible_leader=task.responsible_leader, contact=task.contact,
        target=task.target, measures=task.measures, original_deadline=task.original_deadline,
        signed_on=task.signed_on, plan_submitted_on=task.plan_submitted_on, plan_approved_on=task.plan_approved_on,
        latest_report_on=task.latest_report_on, latest_percent=task.latest_percent,
        extension_count=task.extension_count, reopen_count=task.reopen_count, accountability=task.accountability,
        remarks=task.remarks, closure=_closure(task), timing=out.TimingOut(**timing),
        milestones=[out.MilestoneOut.model_validate(ms) for ms in task.milestones],
        reports=progress_reports(task), evidence=[_evidence(e) for e in task.evidence],
        links=[out.LinkOut(task_id=t.id, code=t.code, title=t.title, kind=kind, note=note)
               for t, kind, note in linked_tasks(s, m, task)],
        extension_requests=[out.ExtensionOut.model_validate(r) for r in task.extension_requests],
        events=events(s, task), available_actions=available_actions(m, task),
    )


def _closure(task: Task) -> out.ClosureOut:
    return out.ClosureOut(applied_on=task.closure_applied_on, report=task.closure_report,
                          pre_verified_on=task.pre_verified_on, pre_verify_opinion=task.pre_verify_opinion,
                          verify_opinion=task.verify_opinion, closed_on=task.closed_on,
                          verifier_unit=ref(task.verifier_unit), doc_no=task.closure_doc_no)


def _evidence(e) -> out.EvidenceOut:
    return out.EvidenceOut(id=e.id, kind=e.kind, kind_label=EVIDENCE_KINDS.get(e.kind, e.kind),
                           original_name=e.original_name, size=e.size, sha256=e.sha256, content_type=e.content_type,
                           report_id=e.report_id, uploaded_by=e.membership.unit.name, uploaded_at=e.uploaded_at,
                           download=f"{PREFIX}/evidence/{e.id}/file")


def progress_reports(task: Task) -> list[out.ProgressReportOut]:
    return [out.ProgressReportOut(id=r.id, reported_on=r.reported_on, purpose=r.purpose, text=r.text,
                                  percent=r.percent, unit=r.membership.unit.name,
                                  evidence_ids=[e.id for e in r.evidence], created_at=r.created_at)
            for r in task.reports]


def events(s, task: Task) -> list[out.EventOut]:
    rows = timeline(s, task)
    return [out.EventOut(id=e.id, action=e.action, action_label=action_label(e.action), from_state=e.from_state,
                         to_state=e.to_state, data=e.data or {}, actor=e.membership.label if e.membership else None,
                         user=e.user.display_name if e.user else None, recorded_at=e.recorded_at,
                         effective_on=e.effective_on) for e in rows]


def escalation(s, record: EscalationRecord, m: Membership, names: dict[int, str]) -> out.EscalationOut:
    deciding = s.get(Region, record.deciding_region_id) if record.deciding_region_id else None
    may_decide = (m.role == "supervisor" and record.status == "proposed"
                  and record.deciding_region_id == m.unit.region_id)
    return out.EscalationOut(
        id=record.id, task_id=record.task_id, level=record.level, measure=names.get(record.level, str(record.level)),
        status=record.status, reason=record.reason, overdue_workdays=record.overdue_workdays,
        cycle_started_on=record.cycle_started_on, scan_date=record.scan_date, decided_on=record.decided_on,
        doc_no=record.doc_no, deciding_region=ref(deciding), may_decide=may_decide, created_at=record.created_at)


def level_names(s) -> dict[int, str]:
    return {r.level: r.name for r in schedule.load_rules(s).values()}


def archive(a: LedgerArchive) -> out.ArchiveOut:
    return out.ArchiveOut(id=a.id, region=ref(a.region), month=a.month, as_of=a.as_of, rows=a.rows, size=a.size,
                          sha256=a.sha256, created_at=a.created_at, download=f"{PREFIX}/archives/{a.id}/file")
