"""The API's request and response schemas (pydantic v2). The same models validate every request and,
through their JSON Schema (2020-12, as OpenAPI 3.1 uses), make ``/api/v1/openapi.json``: the document
cannot drift from the code.

Descriptions are Chinese first, then English. Plain dates are ``YYYY-MM-DD`` (Asia/Shanghai business
dates); instants are ISO 8601 with the Asia/Shanghai offset (``2026-03-02T09:00:00+08:00``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from tracker.models import CATEGORIES, DEADLINE_KINDS, EVIDENCE_KINDS, TASK_KINDS
from tracker.queries import SCHEDULE_FILTERS, SORTS
from tracker.reports import GROUPINGS
from tracker.timeutil import local_datetime
from tracker.workflow import State

MAX_ID = 2**31 - 1  # ids are 32-bit in the database
# PostgreSQL text cannot hold NUL characters. Said in the schema as "not: pattern" rather than a pattern
# for the whole string, which generators (schemathesis) handle many times faster.
NOT_NUL = {"not": {"pattern": "\\x00"}}
FIRST_YEAR, LAST_YEAR = 2000, 2099  # business dates outside these years are typing errors


def _in_range(value: dt.date) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"date must lie in the years {FIRST_YEAR}–{LAST_YEAR}")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _shanghai(value: dt.datetime) -> str:
    return local_datetime(value).isoformat()


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, AfterValidator(_no_nul)]
Date = Annotated[dt.date, AfterValidator(_in_range)]
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(_shanghai, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time",
                    "description": "ISO 8601，含东八区时差 / ISO 8601 with the Asia/Shanghai offset"}),
]


def text(max_length: int, description: str, *, required: bool = False) -> Any:
    """A string field without NUL characters; ``required`` ones may not be empty."""
    if required:
        return Field(min_length=1, max_length=max_length, description=description, json_schema_extra=NOT_NUL)
    return Field("", max_length=max_length, description=description, json_schema_extra=NOT_NUL)


StateName = Literal[tuple(s.value for s in State)]  # type: ignore[valid-type]
EvidenceKind = Literal[tuple(EVIDENCE_KINDS)]  # type: ignore[valid-type]
DeadlineKind = Literal[tuple(DEADLINE_KINDS)]  # type: ignore[valid-type]
TaskKind = Literal[tuple(TASK_KINDS)]  # type: ignore[valid-type]
Category = Literal[tuple(CATEGORIES)]  # type: ignore[valid-type]
ScheduleFilter = Literal[tuple(SCHEDULE_FILTERS)]  # type: ignore[valid-type]
SortName = Literal[tuple(SORTS)]  # type: ignore[valid-type]
Grouping = Literal[tuple(GROUPINGS)]  # type: ignore[valid-type]


class Input(BaseModel):
    """Request bodies and query strings: unknown fields are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- errors ---------------------------------------------------------------------------------------------


class FieldError(Output):
    field: str = Field(description="出错的字段（嵌套字段以点分隔）/ the field, dotted when nested")
    code: str = Field(description="错误类型 / error type")
    message: str = Field(description="中文说明 / the reason, in Chinese")


class Problem(Output):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="问题类型URI / problem type URI")
    title: str = Field(description="简短标题 / short title")
    status: int = Field(description="HTTP状态码 / HTTP status")
    code: str = Field(description="机器可读的错误代码 / machine-readable code, e.g. VERSION_CONFLICT")
    detail: str = Field(description="中文说明 / what went wrong, in Chinese")
    errors: list[FieldError] | None = Field(None, description="逐字段的校验错误 / per-field validation errors")


# --- reference data -------------------------------------------------------------------------------------


class Ref(Output):
    id: int
    name: str


class RegionOut(Output):
    id: int
    name: str
    level: int = Field(description="0 省, 1 市州, 2 县市区/功能区, 3 乡镇 / 0 province … 3 township")
    is_zone: bool = Field(description="功能区（高新区、经开区）/ development zone")
    parent_id: int | None


class UnitOut(Output):
    id: int
    name: str
    kind: str = Field(description="coordinating 督办机构, department 政府部门, government 地方政府, enterprise 企业, "
                                  "third_party 第三方机构")
    region: Ref
    aliases: list[str]


class ChannelOut(Output):
    id: int
    name: str = Field(description="问题来源 / source of the problem")
    closing_level: int | None = Field(description="可销号的最低层级（空：交办层级）/ lowest level that may close")
    pre_verify_level: int | None = Field(description="初验层级 / level of the preliminary check")
    aliases: list[str]


class RoundOut(Output):
    id: int
    name: str = Field(description="批次/轮次 / round")
    aliases: list[str]


class RegionQuery(Input):
    q: Text = text(100, "名称包含 / name contains")
    level: int | None = Field(None, ge=0, le=3, description="层级 / level")
    parent: Id | None = Field(None, description="上级地区ID / parent region id")


class UnitQuery(Input):
    q: Text = text(100, "名称或简称包含 / name or alias contains")
    region: Id | None = Field(None, description="地区ID（含下级）/ region id, subtree included")


class MembershipOut(Output):
    id: int
    role: str = Field(description="admin 管理员, supervisor 督办, unit 责任单位, viewer 查阅")
    role_label: str
    unit: Ref
    region: RegionOut


class TokenOut(Output):
    id: int
    name: str
    prefix: str = Field(description="令牌前缀 / the token's first characters")
    created_at: Timestamp
    last_used_at: Timestamp | None


class MeOut(Output):
    user: Ref
    username: str
    membership: MembershipOut
    token: TokenOut


# --- tasks: reading -----------------------------------------------------------------------------------


class TaskQuery(Input):
    """The task list's filters and sort, as on the web list (all optional)."""

    channel: Id | None = Field(None, description="问题来源ID / channel id")
    round: Id | None = Field(None, description="批次ID / round id")
    region: Id | None = Field(None, description="地区ID（含下级）/ region id, subtree included")
    subtree: bool = Field(True, description="false：只含该地区本级，不含下级 / false: the region itself only")
    unit: Id | None = Field(None, description="牵头或参与单位ID / lead or participant unit id")
    lead_unit: Id | None = Field(None, description="牵头单位ID（仅牵头）/ lead unit id (as lead only)")
    state: list[StateName] = Field(default_factory=list, description="状态（可多选）/ states")
    deadline_from: Date | None = Field(None, description="整改时限起 / deadline from")
    deadline_to: Date | None = Field(None, description="整改时限止 / deadline to")
    q: Text = text(100, "编号、名称或描述包含 / code, title or description contains")
    schedule: ScheduleFilter | None = Field(
        None, description="序时进度：counted 纳入统计, completed 已完成, on_schedule 达到序时进度, behind 滞后, "
                          "overdue 逾期, not_reported 本期未报送 / today's schedule values")
    level: int | None = Field(None, ge=0, le=9, description="督办等级 / escalation level")
    proposal: bool = Field(False, description="有待确认的督办建议 / with an open escalation proposal")
    closed_from: Date | None = Field(None, description="销号日期起 / closed from")
    closed_to: Date | None = Field(None, description="销号日期止 / closed to")
    reopened: bool = Field(False, description="曾重新整改 / reopened at least once")
    sort: SortName = Field("deadline", description="deadline 按整改时限, updated 按最近更新, code 按问题编号")
    cursor: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9_-]+$",
                               description="上一页返回的 next_cursor / the next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=200, description="每页条数 / page size")


class TaskSummary(Output):
    id: int
    code: str = Field(description="问题编号 / code")
    title: str = Field(description="问题名称 / title")
    kind: str = Field(description="问题类型 / kind")
    category: str = Field(description="问题领域 / category")
    state: StateName
    state_label: str = Field(description="状态（中文）/ state label")
    channel: Ref
    round: Ref
    region: Ref
    lead_units: list[Ref] = Field(description="牵头单位 / lead units")
    participant_units: list[Ref] = Field(description="参与单位 / participant units")
    deadline: dt.date | None = Field(description="现行整改时限（空：长期坚持）/ deadline in force")
    deadline_text: str = Field(description="时限要求原文 / deadline as written")
    deadline_kind: DeadlineKind
    assigned_on: dt.date | None = Field(description="交办日期 / assigned on")
    closed_on: dt.date | None = Field(description="销号日期 / closed on")
    escalation_level: int = Field(description="督办等级 / escalation level")
    schedule: str | None = Field(description="今日序时进度 / today's schedule bucket")
    overdue: bool = Field(description="逾期 / overdue")
    not_reported: bool = Field(description="本期未报送 / no report this period")
    version: int = Field(description="版本号，办理时原样提交 / version, send it back with every action")
    updated_at: Timestamp


class TaskPage(Output):
    items: list[TaskSummary]
    next_cursor: str | None = Field(description="下一页游标（空：没有下一页）/ cursor of the next page")
    total: int = Field(description="符合条件的任务数 / tasks matching")
    by_state: dict[str, int] = Field(description="按状态计数 / counts by state")


class MilestoneOut(Output):
    id: int
    due_on: dt.date
    description: str
    planned_percent: int | None
    met_on: dt.date | None


class EvidenceOut(Output):
    id: int
    kind: str = Field(description="before 整改前, after 整改后, document 文件, monitoring 监测报告")
    kind_label: str
    original_name: str
    size: int
    sha256: str
    content_type: str
    report_id: int | None
    uploaded_by: str = Field(description="上传单位 / uploading unit")
    uploaded_at: Timestamp
    download: str = Field(description="下载地址 / download path")


class ProgressReportOut(Output):
    """整改进展: a progress report or the closure application's report."""

    id: int
    reported_on: dt.date
    purpose: str = Field(description="progress 进展, closure 销号申请")
    text: str
    percent: int | None
    unit: str = Field(description="报送单位 / reporting unit")
    evidence_ids: list[int]
    created_at: Timestamp


class LinkOut(Output):
    task_id: int
    code: str
    title: str
    kind: str = Field(description="similar 举一反三, duplicate 重复（合并）")
    note: str


class ExtensionOut(Output):
    id: int
    requested_on: dt.date
    old_deadline: dt.date | None
    new_deadline: dt.date
    reason: str
    status: str = Field(description="pending 待审批, approved 同意, denied 不同意")
    decided_on: dt.date | None
    decision_note: str


class EventOut(Output):
    id: int
    action: str
    action_label: str
    from_state: str | None
    to_state: str | None
    data: dict[str, Any]
    actor: str | None = Field(description="办理身份（单位 · 角色）/ acting membership")
    user: str | None = Field(description="办理人 / user")
    recorded_at: Timestamp
    effective_on: dt.date = Field(description="生效日期 / business date it took effect")


class ClosureOut(Output):
    applied_on: dt.date | None = Field(description="申请销号日期 / closure applied on")
    report: str = Field(description="整改完成情况 / closure report")
    pre_verified_on: dt.date | None = Field(description="初验日期 / preliminary check on")
    pre_verify_opinion: str
    verify_opinion: str = Field(description="验收意见 / verification opinion")
    closed_on: dt.date | None
    verifier_unit: Ref | None = Field(description="验收单位 / verifying unit")
    doc_no: str = Field(description="销号文号 / document number")


class TimingOut(Output):
    workdays_left: int | None = None
    overdue_workdays: int | None = None
    provisional: bool | None = Field(None, description="暂定：该年节假日未确认 / the year's calendar is unconfirmed")


class TaskDetail(TaskSummary):
    description: str
    problem: Ref | None = Field(description="所属问题 / the inspection problem")
    parent: Ref | None = Field(description="分解前的母任务 / the task it was split from")
    children: list[TaskSummary] = Field(description="分解出的子任务 / split children")
    merged_into: Ref | None
    responsible_leader: str
    contact: str
    target: str = Field(description="整改目标 / target")
    measures: str = Field(description="整改措施 / measures")
    original_deadline: dt.date | None
    signed_on: dt.date | None
    plan_submitted_on: dt.date | None
    plan_approved_on: dt.date | None
    latest_report_on: dt.date | None
    latest_percent: int | None
    extension_count: int
    reopen_count: int
    accountability: str = Field(description="问责情况 / accountability")
    remarks: str = Field(description="备注 / remarks")
    closure: ClosureOut
    timing: TimingOut
    milestones: list[MilestoneOut]
    reports: list[ProgressReportOut]
    evidence: list[EvidenceOut]
    links: list[LinkOut]
    extension_requests: list[ExtensionOut]
    events: list[EventOut]
    available_actions: list[str] = Field(description="当前身份现在可办理的操作 / actions this membership may take now")


class EscalationOut(Output):
    id: int
    task_id: int | None
    level: int
    measure: str = Field(description="督办措施 / measure")
    status: str = Field(description="proposed 待确认, confirmed 已确认, applied 已实施, implied 跨级, "
                                    "baseline 导入基线")
    reason: str
    overdue_workdays: int | None
    cycle_started_on: dt.date | None
    scan_date: dt.date | None
    decided_on: dt.date | None
    doc_no: str
    deciding_region: Ref | None
    may_decide: bool = Field(description="当前身份可确认 / this membership decides it")
    created_at: Timestamp


class TaskEscalations(Output):
    records: list[EscalationOut]
    open_proposals: list[EscalationOut]


class ProposalOut(Output):
    record: EscalationOut
    task: TaskSummary


class ProposalList(Output):
    items: list[ProposalOut]


# --- tasks: registering and editing -----------------------------------------------------------------------


class ComplainantIn(Input):
    name: Text = text(100, "信访人姓名 / name")
    phone: Text = text(50, "信访人电话 / phone")
    address: Text = text(300, "信访人地址 / address")
    content: Text = text(20000, "信访内容 / content")


class RegisterIn(Input):
    """登记: the ledger fields of a new problem."""

    title: Text = text(300, "问题名称 / title", required=True)
    channel_id: Id = Field(description="问题来源ID / channel id")
    round_id: Id = Field(description="批次ID / round id")
    region_id: Id = Field(description="所在地区ID / region id")
    kind: TaskKind = Field("反馈问题", description="问题类型 / kind")
    category: Category = Field("其他", description="问题领域 / category")
    code: Text = text(100, "问题编号（留空自动生成）/ code, generated when empty")
    description: Text = text(20000, "问题描述 / description")
    problem_title: Text = text(2000, "所属问题 / inspection problem")
    responsible_leader: Text = text(200, "责任领导 / responsible leader")
    contact: Text = text(200, "联系人及电话 / contact")
    target: Text = text(20000, "整改目标 / target")
    measures: Text = text(20000, "整改措施 / measures")
    remarks: Text = text(20000, "备注 / remarks")
    complainant: ComplainantIn | None = Field(
        None, description="信访人信息（仅交办信访件；只写入，API不返回）/ complainant, 信访件 only; never returned")


class EditIn(Input):
    """修改台账字段: only the fields given change; state, deadline and units change only by actions."""

    version: int = Field(ge=0, le=MAX_ID, description="任务版本号 / the task's version")
    code: Text | None = Field(None, min_length=1, max_length=100, json_schema_extra=NOT_NUL)
    title: Text | None = Field(None, min_length=1, max_length=300, json_schema_extra=NOT_NUL)
    description: Text | None = Field(None, max_length=20000, json_schema_extra=NOT_NUL)
    kind: TaskKind | None = None
    category: Category | None = None
    responsible_leader: Text | None = Field(None, max_length=200, json_schema_extra=NOT_NUL)
    contact: Text | None = Field(None, max_length=200, json_schema_extra=NOT_NUL)
    target: Text | None = Field(None, max_length=20000, json_schema_extra=NOT_NUL)
    measures: Text | None = Field(None, max_length=20000, json_schema_extra=NOT_NUL)
    accountability: Text | None = Field(None, max_length=20000, json_schema_extra=NOT_NUL)
    remarks: Text | None = Field(None, max_length=20000, json_schema_extra=NOT_NUL)


# --- workflow actions (DESIGN §4) --------------------------------------------------------------------------


class ActionIn(Input):
    """Every action carries the version of the task it was decided on (已被他人修改，请刷新后重试)."""

    version: int = Field(ge=0, le=MAX_ID, description="任务版本号（取自任务详情）/ the task's version, from its detail")


class DeadlineFields(ActionIn):
    deadline_kind: DeadlineKind = Field("date", description="date 限期, long_term 长期坚持, "
                                                            "date_and_long_term 限期完成并长期坚持")
    deadline: Date | None = Field(None, description="整改时限 / deadline")
    deadline_text: Text = text(200, "时限要求原文，如“2026年6月底前”“15个工作日内” / deadline as written")


class AssignIn(DeadlineFields):
    leads: list[Id] = Field(min_length=1, max_length=20, description="牵头单位ID / lead unit ids")
    participants: list[Id] = Field(default_factory=list, max_length=50, description="参与单位ID / participants")
    assigned_on: Date | None = Field(None, description="交办日期（默认今天）/ assigned on, default today")


class SplitChildIn(Input):
    region_id: Id = Field(description="子任务所在地区ID / the child's region id")
    title: Text = text(300, "子任务名称（留空按地区命名）/ title, default by region")
    leads: list[Id] = Field(min_length=1, max_length=20, description="牵头单位ID / lead unit ids")
    participants: list[Id] = Field(default_factory=list, max_length=50)
    deadline_kind: DeadlineKind = "date"
    deadline: Date | None = None
    deadline_text: Text = text(200, "时限要求原文 / deadline as written")


class SplitIn(ActionIn):
    children: list[SplitChildIn] = Field(min_length=2, max_length=50, description="子任务 / children")


class ReasonIn(ActionIn):
    reason: Text = text(5000, "理由 / reason", required=True)


class EmptyIn(ActionIn):
    pass


class OpinionIn(ActionIn):
    opinion: Text = text(5000, "意见 / opinion")


class MilestoneIn(Input):
    due_on: Date = Field(description="日期 / due on")
    description: Text = text(2000, "内容 / description", required=True)
    planned_percent: int | None = Field(None, ge=0, le=100, description="计划进度 / planned percent")


class PlanIn(ActionIn):
    target: Text = text(20000, "整改目标 / target", required=True)
    measures: Text = text(20000, "整改措施 / measures", required=True)
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=100, description="阶段目标 / milestones")
    responsible_leader: Text = text(200, "责任领导 / responsible leader")
    contact: Text = text(200, "联系人及电话 / contact")


class EvidenceFields(ActionIn):
    """Actions that may carry evidence files (multipart/form-data ``files``); JSON bodies carry none."""

    evidence_kind: EvidenceKind = Field("after", description="材料类型 / kind of the files uploaded")


class ReportIn(EvidenceFields):
    text: Text = text(20000, "进展情况 / progress", required=True)
    percent: int | None = Field(None, ge=0, le=100, description="完成进度（%）/ percent done")
    milestones_met: list[Id] = Field(default_factory=list, max_length=100,
                                     description="本次完成的阶段目标ID / milestones met")


class SubmitIn(EvidenceFields):
    text: Text = text(20000, "整改完成情况（销号申请）/ closure report", required=True)


class PreVerifyIn(EvidenceFields):
    opinion: Text = text(5000, "初验意见 / opinion", required=True)


class CloseIn(EvidenceFields):
    opinion: Text = text(5000, "验收意见 / verification opinion", required=True)
    closed_on: Date | None = Field(None, description="销号日期（默认今天）/ closed on, default today")
    verifier_unit_id: Id | None = Field(None, description="验收单位ID（默认本单位，可为第三方）/ verifying unit")
    closure_doc_no: Text = text(100, "销号文号 / document number")
    checklist: list[Id] = Field(default_factory=list, max_length=100,
                                description="已核对的销号标准条目ID / closure checklist items ticked")


class ReopenIn(DeadlineFields):
    reason: Text = text(5000, "重新整改理由 / reason", required=True)


class ReassignIn(ActionIn):
    leads: list[Id] = Field(min_length=1, max_length=20, description="新的牵头单位ID / new lead unit ids")
    participants: list[Id] | None = Field(None, max_length=50,
                                          description="参与单位ID（不填则不变）/ unchanged if absent")
    reason: Text = text(5000, "改派理由 / reason")


class MergeIn(ActionIn):
    merge_into: Id = Field(description="保留的任务ID / the task kept")
    reason: Text = text(5000, "合并理由 / reason", required=True)


class ExtensionRequestIn(ActionIn):
    new_deadline: Date = Field(description="申请延期至 / new deadline")
    reason: Text = text(5000, "延期理由 / reason", required=True)


class ExtensionDecisionIn(ActionIn):
    decision: Literal["approve", "deny"] = Field(description="approve 同意, deny 不同意")
    note: Text = text(5000, "说明（不同意时必填）/ note, required when denied")


class ChangeDeadlineIn(DeadlineFields):
    reason: Text = text(5000, "调整理由 / reason", required=True)


class ConfirmMeasureIn(ActionIn):
    level: int = Field(ge=2, le=9, description="督办等级：2函告 3通报 4督办 5挂牌督办 6约谈 7曝光 9调查问责 / level")
    doc_no: Text = text(100, "文号（函告至约谈必填）/ document number")
    decided_on: Date | None = Field(None, description="决定日期（默认今天）/ decided on")
    note: Text = text(5000, "说明 / note")


# --- reports, ledgers, archives ----------------------------------------------------------------------------


class ReportQuery(Input):
    as_of: Date | None = Field(None, description="截至日期（默认今天）/ as of, default today")
    by: Grouping = Field("channel-round", description="channel-round 按来源和批次, region 按地区, unit 按责任单位")
    region: Id | None = Field(None, description="地区ID（默认本身份所在地区）/ region, default the membership's")


class ReportRowOut(Output):
    """One row, in the shape of ``tracker report --json``."""

    group: list[str]
    total: int = Field(description="共 / total")
    completed: int = Field(description="已完成 / completed")
    on_schedule: int = Field(description="达到序时进度 / on schedule")
    behind: int = Field(description="滞后 / behind")
    overdue: int = Field(description="其中逾期 / of which overdue")
    extended: int = Field(description="其中经批准延期 / of which extended")
    closure_rate: float = Field(description="销号率（小数）/ closure rate, a fraction")


class ScheduleReportOut(Output):
    """The 序时进度 report (DESIGN §5)."""

    region: Ref
    as_of: dt.date
    by: Grouping
    rows: list[ReportRowOut]
    total: ReportRowOut


class LedgerQuery(Input):
    month: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="月份YYYY-MM（默认本月）/ month")
    region: Id | None = Field(None, description="地区ID（默认本身份所在地区）/ region")
    format: Literal["xlsx", "csv"] = Field("xlsx", description="xlsx 或 csv（UTF-8 BOM）")


class ArchiveOut(Output):
    id: int
    region: Ref
    month: str
    as_of: dt.date
    rows: int
    size: int
    sha256: str
    created_at: Timestamp
    download: str


class ArchiveQuery(Input):
    month: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="月份YYYY-MM / month")
    region: Id | None = Field(None, description="地区ID / region")


class ArchiveList(Output):
    items: list[ArchiveOut]


class RegionList(Output):
    items: list[RegionOut]


class UnitList(Output):
    items: list[UnitOut]


class ChannelList(Output):
    items: list[ChannelOut]


class RoundList(Output):
    items: list[RoundOut]


class ProgressReportList(Output):
    items: list[ProgressReportOut]
