"""Task endpoints: the list (same filters and keyset cursor as the web list), the ledger record, registering
and editing, one endpoint per workflow action (through ``operations.perform`` and the one transition
table), progress reports, evidence downloads and escalation records. Out-of-scope tasks answer 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, send_file
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tracker import storage
from tracker.api import schemas as sc
from tracker.api import serialize
from tracker.api.problems import ApiError
from tracker.api.registry import ApiContext, Endpoint, add, endpoint
from tracker.models import EscalationRecord, Evidence, Role, Task
from tracker.operations import TaskFields, edit_task, perform, register_task
from tracker.permissions import parties, visible_tasks
from tracker.queries import LIST_OPTIONS, TaskFilter, decode_cursor, task_page, visible_task
from tracker.securitylog import WHAT_EVIDENCE
from tracker.workflow import TRANSITIONS, Party

TAG = "tasks"
ACTIONS_TAG = "actions"
READ_ERRORS = (401, 404, 422, 429)
NOT_IN_SCOPE = "任务不存在，或不在您的管辖范围内"


def task_or_404(ctx: ApiContext, task_id: int) -> Task:
    """The task within scope with what its detail shows loaded (``queries.visible_task``), else 404."""
    task = visible_task(ctx.s, ctx.membership, task_id)
    if task is None:
        raise ApiError("NOT_FOUND", NOT_IN_SCOPE)
    return task


@endpoint("GET", "/tasks", name="list_tasks", tag=TAG, query=sc.TaskQuery, response=sc.TaskPage,
          summary="任务列表 · List tasks", errors=READ_ERRORS,
          description="按来源、批次、地区（含下级）、单位、状态、时限、序时进度等筛选并排序，游标分页：把 next_cursor "
                      "作为 cursor 传回即得下一页，翻到多深都一样快。\n\nFilters and sorting as on the web list; "
                      "keyset pagination: pass next_cursor back as cursor (with the same filters) for the next page.")
def list_tasks(ctx: ApiContext, query: sc.TaskQuery) -> sc.TaskPage:
    f = TaskFilter(channel_id=query.channel, round_id=query.round, region_id=query.region, subtree=query.subtree,
                   unit_id=query.unit, lead_unit_id=query.lead_unit, states=list(query.state),
                   deadline_from=query.deadline_from, deadline_to=query.deadline_to,
                   q=query.q.strip(), schedule=query.schedule or "", level=query.level, proposal=query.proposal,
                   closed_from=query.closed_from, closed_to=query.closed_to, reopened=query.reopened, sort=query.sort)
    if query.cursor and decode_cursor(query.cursor, f.sort) is None:
        raise ApiError("VALIDATION_ERROR", "cursor 无效：请使用上一页返回的 next_cursor，并保持排序方式不变")
    page = task_page(ctx.s, ctx.membership, f, query.cursor, query.limit)
    return sc.TaskPage(items=[serialize.task_summary(t) for t in page.tasks], next_cursor=page.next_cursor,
                       total=page.total, by_state=page.by_state)


@endpoint("GET", "/tasks/{task_id}", name="get_task", tag=TAG, response=sc.TaskDetail, errors=(401, 404, 429),
          summary="任务详情 · A task's ledger record",
          description="全部台账字段、阶段目标、整改进展、佐证材料（元数据）、举一反三关联、子任务和办理记录；"
                      "信访人信息仅对交办层级的督办人员返回。\n\nEvery ledger field, milestones, reports, evidence "
                      "metadata, links, split children and the timeline; the complainant only for supervisors of "
                      "the assigning level.")
def get_task(ctx: ApiContext, task_id: int) -> sc.TaskDetail:
    return serialize.task_detail(ctx, task_or_404(ctx, task_id))


@endpoint("POST", "/tasks", name="register_task", tag=ACTIONS_TAG, body=sc.RegisterIn, response=sc.TaskDetail,
          status=201, errors=(401, 403, 415, 422, 429), summary="登记问题 · Register a problem (register)",
          description="督办人员登记问题，任务处于待交办。\n\nA supervisor puts a problem on the books (pending).")
def register(ctx: ApiContext, body: sc.RegisterIn) -> sc.TaskDetail:
    if ctx.membership.role != Role.supervisor.value:
        raise ApiError("FORBIDDEN", "只有督办人员可以登记问题")
    complainant = body.complainant.model_dump() if body.complainant else {}
    fields = TaskFields(**body.model_dump(exclude={"complainant"}), complainant=complainant)
    task = register_task(ctx.s, ctx.membership, ctx.now, fields)
    return serialize.task_detail(ctx, task)


@endpoint("PATCH", "/tasks/{task_id}", name="edit_task", tag=TAG, body=sc.EditIn, response=sc.TaskDetail,
          errors=(401, 403, 404, 409, 415, 422, 429), summary="修改台账字段 · Edit ledger fields",
          description="只修改提交的字段；状态、时限和责任单位只能通过办理操作改变。\n\nChanges only the fields given; "
                      "state, deadline and units change only through actions.")
def edit(ctx: ApiContext, task_id: int, body: sc.EditIn) -> sc.TaskDetail:
    task = task_or_404(ctx, task_id)
    if Party.supervisor not in parties(ctx.membership, task):
        raise ApiError("FORBIDDEN", "只有督办人员可以修改台账字段")
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"version"})
    edit_task(ctx.s, task, ctx.membership, ctx.now, body.version, changes)
    return serialize.task_detail(ctx, task)


@endpoint("GET", "/tasks/{task_id}/reports", name="list_reports", tag=TAG, response=sc.ProgressReportList,
          errors=(401, 404, 429), summary="整改进展 · A task's progress reports",
          description="最新的在前，含销号申请报告及其佐证材料ID。\n\nNewest first, closure reports included.")
def list_reports(ctx: ApiContext, task_id: int) -> sc.ProgressReportList:
    return sc.ProgressReportList(items=serialize.progress_reports(task_or_404(ctx, task_id)))


@endpoint("GET", "/evidence/{evidence_id}/file", name="download_evidence", tag=TAG, errors=(401, 404, 429),
          download=("application/octet-stream", "image/jpeg", "image/png", "application/pdf"),
          summary="下载佐证材料 · Download an evidence file",
          description="仅限可查看该任务的身份。\n\nOnly for memberships that can see the task.")
def download_evidence(ctx: ApiContext, evidence_id: int):
    evidence = ctx.s.get(Evidence, evidence_id)
    if evidence is None:
        raise ApiError("NOT_FOUND", "佐证材料不存在，或不在您的管辖范围内")
    task_or_404(ctx, evidence.task_id)
    path = storage.path_of(current_app.config["UPLOAD_FOLDER"], evidence.stored_name)
    if not path.is_file():
        raise ApiError("NOT_FOUND", "佐证材料文件不存在")
    mimetype = storage.served_type(evidence.content_type, path)
    ctx.security_log("download", what=WHAT_EVIDENCE, task=evidence.task_id, file=evidence.original_name)
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=evidence.original_name)


@endpoint("GET", "/tasks/{task_id}/escalations", name="task_escalations", tag=TAG, response=sc.TaskEscalations,
          errors=(401, 404, 429), summary="督办记录与待确认建议 · Escalation records and open proposals",
          description="该任务各轮次的督办等级记录，以及待确认的督办建议（函告至约谈，确认时调用 confirm-measure）。"
                      "\n\nEvery escalation record of the task, and its open proposals (confirm them with "
                      "confirm-measure and a 文号).")
def task_escalations(ctx: ApiContext, task_id: int) -> sc.TaskEscalations:
    task = task_or_404(ctx, task_id)
    records = ctx.s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == task.id)
                            .order_by(EscalationRecord.id)).all()
    names = serialize.level_names(ctx.s)
    shown = [serialize.escalation(ctx.s, r, ctx.membership, names) for r in records]
    return sc.TaskEscalations(records=shown, open_proposals=[r for r in shown if r.status == "proposed"])


@endpoint("GET", "/proposals", name="list_proposals", tag=TAG, response=sc.ProposalList, errors=(401, 429),
          summary="待我确认的督办建议 · Proposals this membership decides",
          description="督办人员：由本级决定、尚未确认的督办建议（函告、通报、督办、挂牌督办、约谈）。\n\n"
                      "Supervisors: proposed measures their region decides, not yet confirmed.")
def list_proposals(ctx: ApiContext) -> sc.ProposalList:
    m = ctx.membership
    if m.role != Role.supervisor.value:
        return sc.ProposalList(items=[])
    visible = visible_tasks(m).with_only_columns(Task.id)
    records = ctx.s.scalars(select(EscalationRecord).where(
        EscalationRecord.status == "proposed", EscalationRecord.deciding_region_id == m.unit.region_id,
        EscalationRecord.task_id.in_(visible)).order_by(EscalationRecord.id).limit(500)
        .options(selectinload(EscalationRecord.task).options(*LIST_OPTIONS))).all()
    names = serialize.level_names(ctx.s)
    return sc.ProposalList(items=[sc.ProposalOut(record=serialize.escalation(ctx.s, r, m, names),
                                                 task=serialize.task_summary(r.task)) for r in records])


# --- one endpoint per workflow action ------------------------------------------------------------------------


def _plain(ctx: ApiContext, task: Task, body: sc.ActionIn) -> dict[str, Any]:
    return body.model_dump(exclude={"version", "evidence_kind"})


def _with_files(ctx: ApiContext, task: Task, body: sc.ActionIn) -> dict[str, Any]:
    return {**_plain(ctx, task, body), "files": list(ctx.files)}




# action -> (body model, English summary, takes files, params builder)
ACTIONS: dict[str, tuple[type[sc.ActionIn], str, bool, Callable[..., dict[str, Any]]]] = {
    "assign": (sc.AssignIn, "Assign to lead units", False, _plain),
    "split": (sc.SplitIn, "Split into one task per region or unit", False, _plain),
    "decline": (sc.ReasonIn, "Decline (return to the assigner)", False, _plain),
    "sign": (sc.EmptyIn, "Sign for the task", False, _plain),
    "submit_plan": (sc.PlanIn, "Submit the rectification plan", False, _plain),
    "approve_plan": (sc.OpinionIn, "Approve the plan", False, _plain),
    "return_plan": (sc.ReasonIn, "Return the plan", False, _plain),
    "report": (sc.ReportIn, "Report progress, with evidence", True, _with_files),
    "submit": (sc.SubmitIn, "Apply for closure, with evidence", True, _with_files),
    "pre_verify": (sc.PreVerifyIn, "Preliminary check before closure", True, _with_files),
    "return": (sc.ReasonIn, "Return for further rectification", False, _plain),
    "close": (sc.CloseIn, "Verify and close (four-eyes)", True, _with_files),
    "reopen": (sc.ReopenIn, "Reopen a closed task", False, _plain),
    "reassign": (sc.ReassignIn, "Reassign to other lead units", False, _plain),
    "cancel": (sc.ReasonIn, "Cancel", False, _plain),
    "merge": (sc.MergeIn, "Merge into another task (duplicate)", False, _plain),
    "request_extension": (sc.ExtensionRequestIn, "Request an extension", False, _plain),
    "decide_extension": (sc.ExtensionDecisionIn, "Decide an extension request", False, _plain),
    "change_deadline": (sc.ChangeDeadlineIn, "Change the deadline", False, _plain),
    "confirm_measure": (sc.ConfirmMeasureIn, "Confirm an escalation measure with its 文号", False, _plain),
}

PARTY_LABELS = {Party.supervisor: "督办人员", Party.lead: "牵头单位", Party.participant: "参与单位"}


def english_summary(action: str) -> str:
    return ACTIONS[action][1]


def action_path(action: str) -> str:
    return "/tasks/{task_id}/actions/" + action.replace("_", "-")


def _describe(action: str, files: bool) -> str:
    row = TRANSITIONS[action]
    sources = "、".join(sorted(s.value if s else "—" for s in row.sources))
    who = "、".join(PARTY_LABELS[p] for p in sorted(row.parties))
    zh = f"{sources} → {row.target.value}" if row.target else f"{sources}（状态不变）"
    en = f"from {sources} to {row.target.value}" if row.target else f"in {sources} (the state stays)"
    text = (f"{row.label}：{zh}；办理人：{who}。须提交任务的 version，版本不符返回409。\n\n"
            f"{english_summary(action)}: {en}; by {', '.join(sorted(row.parties))}. Send the task's version: a "
            f"stale one answers 409.")
    if files:
        text += ("\n\n可用 multipart/form-data 上传佐证材料（字段 files，可多个；材料类型 evidence_kind）。\n"
                 "Evidence files may be uploaded as multipart/form-data (repeated field files).")
    return text


def _action_handler(action: str, build: Callable[..., dict[str, Any]]) -> Callable[..., sc.TaskDetail]:
    def handler(ctx: ApiContext, task_id: int, body: sc.ActionIn) -> sc.TaskDetail:
        task = task_or_404(ctx, task_id)
        if not parties(ctx.membership, task) & TRANSITIONS[action].parties:
            raise ApiError("FORBIDDEN", f"您的身份不能{TRANSITIONS[action].label}")
        perform(ctx.s, task, action, ctx.membership, ctx.now, expected_version=body.version,
                **build(ctx, task, body))
        return serialize.task_detail(ctx, task)

    return handler


def register_actions() -> None:
    """One POST endpoint per action of the transition table (register has its own: POST /tasks)."""
    missing = set(TRANSITIONS) - set(ACTIONS) - {"register"}
    if missing:
        raise RuntimeError(f"API endpoints missing for actions: {sorted(missing)}")
    for action, (model, english, files, build) in ACTIONS.items():
        add(Endpoint("POST", action_path(action), f"task_{action}", f"{TRANSITIONS[action].label} · {english}",
                     _describe(action, files), ACTIONS_TAG, _action_handler(action, build), body=model,
                     multipart=files, response=sc.TaskDetail,
                     errors=(401, 403, 404, 409, 413, 415, 422, 429) if files else (401, 403, 404, 409, 415, 422, 429)))


register_actions()
