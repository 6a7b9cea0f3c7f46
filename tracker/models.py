"""Typed SQLAlchemy 2.0 tables of the ledger (DESIGN §2–§3).

No Flask request state, no mail, no views here. ``db.py`` binds sessions; operations change rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tracker.i18n import N_
from tracker.timeutil import utcnow
from tracker.workflow import State

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, list[dict[str, Any]]: JSON}


class RegionLevel(enum.IntEnum):
    """Depth in the region tree; smaller is higher."""

    province = 0  # 省
    city = 1  # 市州
    county = 2  # 县市区 / 功能区（高新区、经开区）
    township = 3  # 乡镇


REGION_LEVEL_LABELS = {0: N_("省"), 1: N_("市州"), 2: N_("县市区"), 3: N_("乡镇")}


class Region(Base):
    """A node of 湖南省 → 市州 → 县市区/功能区 → 乡镇. ``path`` is the ids from the root, for subtree queries."""

    __tablename__ = "region"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer)
    # 功能区 (高新区, 经开区 管委会) sit at county level but are not counties.
    is_zone: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    # "/1/4/27/": the ids from the root to this node, so a subtree is ``path LIKE '/1/4/%'``.
    path: Mapped[str] = mapped_column(String(255), index=True, default="")

    parent: Mapped[Region | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Region {self.name}>"


class UnitKind(enum.StrEnum):
    coordinating = "coordinating"  # 突改办 / 督察办: supervises, never the same unit as a department it supervises
    department = "department"  # 政府部门 (省生态环境厅, 市水利局 …)
    government = "government"  # 县市区人民政府 / 管委会 / 乡镇人民政府
    enterprise = "enterprise"  # 企业
    third_party = "third_party"  # 第三方专业机构 (may verify without logging in)


UNIT_KIND_LABELS = {
    "coordinating": N_("督办机构"),
    "department": N_("政府部门"),
    "government": N_("地方政府/管委会"),
    "enterprise": N_("企业"),
    "third_party": N_("第三方机构"),
}


class Unit(Base):
    """A body that holds memberships or responsibility: unique by (name, region)."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("name", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    region: Mapped[Region] = relationship()
    aliases: Mapped[list[UnitAlias]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitAlias.alias"
    )

    def __repr__(self) -> str:
        return f"<Unit {self.name}>"


class UnitAlias(Base):
    """Another name of a unit (省发展改革委 for 湖南省发展和改革委员会); imports match either."""

    __tablename__ = "unit_alias"
    __table_args__ = (UniqueConstraint("alias", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(200), index=True)

    unit: Mapped[Unit] = relationship(back_populates="aliases")


class Role(enum.StrEnum):
    admin = "admin"  # 管理员: users, units, regions, calendar, rules within the subtree
    supervisor = "supervisor"  # 督办人员: assigns, reviews, verifies and closes within the subtree
    unit = "unit"  # 责任单位: acts on tasks where the unit is lead or participant
    viewer = "viewer"  # 领导/查阅: reads the subtree


ROLE_LABELS = {"admin": N_("管理员"), "supervisor": N_("督办"), "unit": N_("责任单位"), "viewer": N_("查阅")}


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to end every existing session (deactivation, password or role change).
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Set by an admin's forced reset: the user must choose a new password before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The user's language: zh_Hans_CN (default) or en; switchable from the top bar.
    locale: Mapped[str] = mapped_column(String(16), default="zh_Hans_CN", server_default="zh_Hans_CN")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", order_by="Membership.id", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class Membership(Base):
    """A user's (unit, role); a user acts through one at a time and every event records it."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("user_id", "unit_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    user: Mapped[User] = relationship(back_populates="memberships")
    unit: Mapped[Unit] = relationship()

    @property
    def label(self) -> str:
        return f"{self.unit.name} · {ROLE_LABELS.get(self.role, self.role)}"


class Channel(Base):
    """问题来源 (中央生态环境保护督察, 长江经济带生态环境警示片 …), an admin-kept short list."""

    __tablename__ = "channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Lowest region level allowed to close (销号) its tasks; None: the level that assigned the task.
    closing_level: Mapped[int | None] = mapped_column(Integer)
    # Level that must do 初验 first when the task's region lies below the closing level; None: no 初验.
    pre_verify_level: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)

    aliases: Mapped[list[ChannelAlias]] = relationship(cascade="all, delete-orphan")


class ChannelAlias(Base):
    __tablename__ = "channel_alias"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(100), unique=True)


class Round(Base):
    """批次/轮次 (第一轮, 第一轮“回头看”, 2019年), an admin-kept list."""

    __tablename__ = "round"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    aliases: Mapped[list[RoundAlias]] = relationship(cascade="all, delete-orphan")


class RoundAlias(Base):
    __tablename__ = "round_alias"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(100), unique=True)


class Problem(Base):
    """所属问题: the inspection problem or plan item that one or more tasks belong to."""

    __tablename__ = "problem"
    __table_args__ = (UniqueConstraint("channel_id", "round_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)


# Stored as these Chinese words (the sheets' own); pages translate them where they show them.
TASK_KINDS = [N_("反馈问题"), N_("交办信访件"), N_("典型案例"), N_("披露问题"), N_("指出问题"), N_("其他")]
CATEGORIES = [N_("水"), N_("大气"), N_("土壤"), N_("固废"), N_("生态"), N_("噪声"), N_("辐射"), N_("其他")]
DEADLINE_KINDS = {"date": N_("限期"), "long_term": N_("长期坚持"), "date_and_long_term": N_("限期完成并长期坚持")}


class Task(Base):
    """一问题一台账: one rectification task with every ledger field (DESIGN §3).

    State, deadline and units change only through ``operations.perform``; every change writes an
    ``Event``. ``version`` guards concurrent edits (已被他人修改，请刷新后重试).
    """

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("channel_id", "round_id", "region_id", "code"),
        Index("ix_task_region_state_deadline", "region_id", "state", "deadline", "id"),
        Index("ix_task_state_deadline", "state", "deadline", "id"),
        Index("ix_task_channel_round_state", "channel_id", "round_id", "state"),
        Index("ix_task_schedule", "schedule", "overdue"),
        # Today's figures (dashboard, today's report) count the values kept on each task, by region: every
        # column they read is here, so PostgreSQL counts from the index alone (index-only scans, 0009).
        Index("ix_task_kept_values", "region_id", "schedule", "overdue", "not_reported", "state", "escalation_level",
              "channel_id", "round_id", "extension_count", "closed_on", "next_check_on", "id"),
        # The list's other sorts (最近更新, 问题编号): keyset pages walk these instead of sorting the ledger.
        Index("ix_task_updated_at_id", "updated_at", "id"),
        Index("ix_task_code_id", "code", "id"),
        # 总览's oldest overdue tasks: walked in deadline order among the overdue ones only (0011).
        Index("ix_task_overdue_deadline", "deadline", "id", postgresql_where=text("overdue IS true"),
              sqlite_where=text("overdue IS true")),
        # The list's default sort (按整改时限, no deadline last: ``queries.DEADLINE_ORDER``, the same text): the
        # whole province's first page walks this instead of sorting 10⁶ rows (0012).
        Index("ix_task_deadline_order", text("coalesce(deadline, '9999-12-31')"), "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100))  # 问题编号
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))  # 问题来源
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id"), index=True)  # 批次/轮次
    kind: Mapped[str] = mapped_column(String(20), default="反馈问题")  # 问题类型
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problem.id"), index=True)  # 所属问题
    # The task this one was split from (分解交办); the parent closes when every child has.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))  # 问题名称
    description: Mapped[str] = mapped_column(Text, default="")  # 问题描述
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))  # 所在地区
    category: Mapped[str] = mapped_column(String(10), default="其他")  # 问题领域
    responsible_leader: Mapped[str] = mapped_column(String(200), default="")  # 责任领导
    contact: Mapped[str] = mapped_column(String(200), default="")  # 联系人及电话
    target: Mapped[str] = mapped_column(Text, default="")  # 整改目标
    measures: Mapped[str] = mapped_column(Text, default="")  # 整改措施
    deadline_text: Mapped[str] = mapped_column(String(200), default="")  # 时限要求, as written
    deadline: Mapped[dt.date | None] = mapped_column(Date)  # the date in force (None: 长期坚持)
    deadline_kind: Mapped[str] = mapped_column(String(20), default="date")
    original_deadline: Mapped[dt.date | None] = mapped_column(Date)  # the deadline first set at 交办
    state: Mapped[str] = mapped_column(String(20), default=State.pending.value)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)  # 督办等级 (DESIGN §6)
    registered_by_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    # The supervising unit that handed the task out; its region is "the assigning level".
    assigned_by_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    assigned_on: Mapped[dt.date | None] = mapped_column(Date)  # 交办日期
    signed_on: Mapped[dt.date | None] = mapped_column(Date)  # 签收日期
    plan_submitted_on: Mapped[dt.date | None] = mapped_column(Date)  # 整改方案报送 (waiting for review)
    plan_approved_on: Mapped[dt.date | None] = mapped_column(Date)
    latest_report_on: Mapped[dt.date | None] = mapped_column(Date)
    latest_percent: Mapped[int | None] = mapped_column(Integer)
    # Start of the current escalation cycle: 交办, an approved extension, a deadline change or a reopen.
    cycle_started_on: Mapped[dt.date | None] = mapped_column(Date)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)  # approved extensions (经批准延期)
    # Times the task was reopened after 销号 (返黑返臭, 回头看); kept on the task for reopen rates per unit.
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Today's 序时进度, kept on the task so lists and dashboards need not replay history (DESIGN §5):
    # completed 已完成 / on_schedule 达到序时进度 / behind 滞后; None while not counted (待交办, 作废).
    schedule: Mapped[str | None] = mapped_column(String(20))
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)  # 逾期 (a subset of behind)
    not_reported: Mapped[bool] = mapped_column(Boolean, default=False)  # 本期未报送
    schedule_as_of: Mapped[dt.date | None] = mapped_column(Date)  # the day those values hold for
    # The first day the values above can change without an action; the daily refresh starts there.
    next_check_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    # The first day the escalation scan must look at the task again (a level or reminder may fall due,
    # or the task changed); only the scan moves it forward, so no refresh can hide a due level.
    escalation_check_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    # Closure (申请销号 / 初验 / 验收意见 / 销号日期 / 验收单位 / 销号文号)
    closure_applied_on: Mapped[dt.date | None] = mapped_column(Date)
    closure_applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    closure_report: Mapped[str] = mapped_column(Text, default="")
    pre_verified_on: Mapped[dt.date | None] = mapped_column(Date)
    pre_verify_opinion: Mapped[str] = mapped_column(Text, default="")
    verify_opinion: Mapped[str] = mapped_column(Text, default="")
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    verifier_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    closure_doc_no: Mapped[str] = mapped_column(String(100), default="")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))
    accountability: Mapped[str] = mapped_column(Text, default="")  # 问责情况
    remarks: Mapped[str] = mapped_column(Text, default="")  # 备注
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    channel: Mapped[Channel] = relationship()
    round: Mapped[Round] = relationship()
    region: Mapped[Region] = relationship()
    problem: Mapped[Problem | None] = relationship()
    parent: Mapped[Task | None] = relationship(remote_side=[id], foreign_keys=[parent_id], back_populates="children")
    children: Mapped[list[Task]] = relationship(
        foreign_keys=[parent_id], back_populates="parent", order_by="Task.id"
    )
    merged_into: Mapped[Task | None] = relationship(remote_side=[id], foreign_keys=[merged_into_id])
    registered_by_unit: Mapped[Unit] = relationship(foreign_keys=[registered_by_unit_id])
    assigned_by_unit: Mapped[Unit | None] = relationship(foreign_keys=[assigned_by_unit_id])
    verifier_unit: Mapped[Unit | None] = relationship(foreign_keys=[verifier_unit_id])
    task_units: Mapped[list[TaskUnit]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskUnit.position"
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="Milestone.due_on"
    )
    reports: Mapped[list[ProgressReport]] = relationship(
        back_populates="task", order_by="ProgressReport.id.desc()"
    )
    evidence: Mapped[list[Evidence]] = relationship(back_populates="task", order_by="Evidence.id")
    extension_requests: Mapped[list[ExtensionRequest]] = relationship(
        back_populates="task", order_by="ExtensionRequest.id"
    )

    @property
    def pending_extension(self) -> ExtensionRequest | None:
        return next((r for r in self.extension_requests if r.status == "pending"), None)

    @property
    def state_enum(self) -> State:
        return State(self.state)

    @property
    def lead_units(self) -> list[Unit]:
        return [tu.unit for tu in self.task_units if tu.role == "lead"]

    @property
    def participant_units(self) -> list[Unit]:
        return [tu.unit for tu in self.task_units if tu.role == "participant"]

    def __repr__(self) -> str:
        return f"<Task {self.code} {self.state}>"


class TaskUnit(Base):
    """A unit's part in a task: 牵头 (lead) or 参与 (participant)."""

    __tablename__ = "task_unit"
    __table_args__ = (
        CheckConstraint("role IN ('lead', 'participant')", name="role"),
        Index("ix_task_unit_unit_role_task", "unit_id", "role", "task_id"),
    )

    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)

    task: Mapped[Task] = relationship(back_populates="task_units")
    unit: Mapped[Unit] = relationship()


class Milestone(Base):
    """阶段目标: a dated step of the timetable, with an optional planned percent."""

    __tablename__ = "milestone"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)
    planned_percent: Mapped[int | None] = mapped_column(Integer)
    met_on: Mapped[dt.date | None] = mapped_column(Date)  # when a report said it was met

    task: Mapped[Task] = relationship(back_populates="milestones")


class ProgressReport(Base):
    """整改进展: dated text with an optional percent, by a lead or participant unit."""

    __tablename__ = "progress_report"
    __table_args__ = (Index("ix_progress_report_task_reported", "task_id", "reported_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    reported_on: Mapped[dt.date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    percent: Mapped[int | None] = mapped_column(Integer)
    # 'progress' (报送进展), 'plan' (整改方案), 'closure' (申请销号报告)
    purpose: Mapped[str] = mapped_column(String(20), default="progress")
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    task: Mapped[Task] = relationship(back_populates="reports")
    membership: Mapped[Membership] = relationship()
    evidence: Mapped[list[Evidence]] = relationship(back_populates="report")


EVIDENCE_KINDS = {"before": N_("整改前"), "after": N_("整改后"), "document": N_("文件"), "monitoring": N_("监测报告")}


class Evidence(Base):
    """佐证材料: a file kept outside ``static/`` under a random name."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("progress_report.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    task: Mapped[Task] = relationship(back_populates="evidence")
    report: Mapped[ProgressReport | None] = relationship(back_populates="evidence")
    membership: Mapped[Membership] = relationship()


class TaskLink(Base):
    """举一反三 and reopen history: a link between two tasks, stored once per ordered pair."""

    __tablename__ = "task_link"
    __table_args__ = (UniqueConstraint("task_id", "other_task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    other_task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="similar")  # similar 举一反三 / duplicate 重复
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    other_task: Mapped[Task] = relationship(foreign_keys=[other_task_id])


class Complainant(Base):
    """信访人信息 of a 交办信访件: shown only to supervisors of the assigning level (《信访工作条例》).

    A table of its own so that no query for tasks brings it along by accident.
    """

    __tablename__ = "complainant"

    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    content: Mapped[str] = mapped_column(Text, default="")


class Event(Base):
    """The append-only history (履责留痕): every change of data, on tasks and elsewhere.

    ``recorded_at`` is when it was written (UTC); ``effective_on`` the business date it took effect
    (Asia/Shanghai) — the same day unless history is imported or a verifier enters a 销号日期.
    """

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_task_id_id", "task_id", "id"),
        Index("ix_event_entity", "entity", "entity_id", "id"),  # a chain without a task, in order
        Index("ix_event_effective_on", "effective_on"),
        # A task's history in replay order; and whether it has an event after D, from the index alone.
        Index("ix_event_task_effective", "task_id", "effective_on", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))
    entity: Mapped[str] = mapped_column(String(30))  # task, user, unit, region, membership, …
    entity_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("membership.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    effective_on: Mapped[dt.date] = mapped_column(Date)
    # Tamper evidence: SHA-256 over the previous event's hash in the same chain (per task, or per
    # entity for events without a task) and this event's fields; PostgreSQL refuses UPDATE/DELETE.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    membership: Mapped[Membership | None] = relationship()
    user: Mapped[User | None] = relationship()


class SecurityLog(Base):
    """Security-relevant events (logins, membership and role changes, exports and downloads),
    kept at least six months and shown to admins. Not business history: that is ``Event``."""

    __tablename__ = "security_log"
    __table_args__ = (
        Index("ix_security_log_at", "at"),
        Index("ix_security_log_kind_at", "kind", "at"),
        Index("ix_security_log_user_id_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))  # login_ok, login_failed, membership_added, export, download, …
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(80), default="")
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("membership.id", ondelete="SET NULL"))
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    membership: Mapped[Membership | None] = relationship()  # the one acted through (shown on the admin page)


class LoginAttempt(Base):
    """Every login attempt, kept in the database so throttling holds across worker processes."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_remote_addr_at", "remote_addr", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExtensionRequest(Base):
    """申请延期 by a lead unit and its decision (审批延期); the original deadline stays on the task."""

    __tablename__ = "extension_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"))
    requested_on: Mapped[dt.date] = mapped_column(Date)
    old_deadline: Mapped[dt.date | None] = mapped_column(Date)
    new_deadline: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending / approved / denied
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("membership.id"))
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    decision_note: Mapped[str] = mapped_column(Text, default="")

    task: Mapped[Task] = relationship(back_populates="extension_requests")
    membership: Mapped[Membership] = relationship(foreign_keys=[membership_id])


class CalendarYear(Base):
    """A year of the working-day calendar; confirmed once the State Council's notice is loaded."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(200), default="")


class CalendarDay(Base):
    """A day that differs from the weekday rule: a public holiday (off) or a 调休 make-up working day."""

    __tablename__ = "calendar_day"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), default="")


class Setting(Base):
    """Admin-kept settings (reporting period, 立行立改 days, tolerance …) as JSON values."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EscalationRule(Base):
    """One rung of the ladder (DESIGN §6): its measure, threshold in working days and how it applies."""

    __tablename__ = "escalation_rule"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))  # 预警, 函告, 通报, 督办, 挂牌督办, 约谈, 曝光, 区域限批, 调查问责
    # Working days overdue that reach this level; None: never reached by the scan (manual measures).
    threshold_workdays: Mapped[int | None] = mapped_column(Integer)
    # scan: applied by the scan (预警); proposed: proposed, takes effect when confirmed with a 文号;
    # auto: applied at once by the scan; manual: only confirmed by hand.
    mode: Mapped[str] = mapped_column(String(20))
    # Decided by the supervisors of the region above the task's region (挂牌督办, 约谈).
    decided_above: Mapped[bool] = mapped_column(Boolean, default=False)
    province_only: Mapped[bool] = mapped_column(Boolean, default=False)  # 区域限批
    against_region: Mapped[bool] = mapped_column(Boolean, default=False)  # recorded against a region


class EscalationRecord(Base):
    """A level reached or a measure taken, at most once per task, cycle and level (the database says so)."""

    __tablename__ = "escalation_record"
    __table_args__ = (
        UniqueConstraint("task_id", "cycle_started_on", "level"),
        Index("ix_escalation_record_status_region", "status", "deciding_region_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))  # 区域限批: the region
    level: Mapped[int] = mapped_column(Integer)
    cycle_started_on: Mapped[dt.date | None] = mapped_column(Date)
    # proposed 待确认 / confirmed 已确认 / applied 已实施 (by the scan) / implied 已跨越 / baseline 导入基线
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")  # 逾期N个工作日, 未签收, 未报方案 …
    overdue_workdays: Mapped[int | None] = mapped_column(Integer)
    deciding_region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))  # whose supervisors decide
    scan_date: Mapped[dt.date | None] = mapped_column(Date)
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    doc_no: Mapped[str] = mapped_column(String(100), default="")  # 文号
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("membership.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    task: Mapped[Task | None] = relationship()
    region: Mapped[Region | None] = relationship(foreign_keys=[region_id])


class Notification(Base):
    """消息: what a user is told — in the app always, by mail when they have an address.

    ``notified_at`` marks it as sent in a digest (or an immediate mail) in the same transaction
    that wrote the mail to the outbox, so a rerun never tells anyone twice.
    """

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("user_id", "record_id"),
        Index("ix_notification_user_read", "user_id", "read_at"),
        Index("ix_notification_pending", "notified_at", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # escalation 督办 / reminder 提醒 / notice 通知
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_record.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    task: Mapped[Task | None] = relationship()
    record: Mapped[EscalationRecord | None] = relationship()


class OutboxMail(Base):
    """A mail written in the same transaction as its cause, delivered later and retried with backoff."""

    __tablename__ = "outbox_mail"
    __table_args__ = (Index("ix_outbox_mail_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)  # stable across retries
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text, default="")
    # Files to attach: [{"path": ..., "name": ..., "content_type": ...}] under the configured folders.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ScanRun(Base):
    """One escalation scan per date; its row is locked while the scan runs, so scans of a date queue."""

    __tablename__ = "scan_run"

    scan_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LedgerArchive(Base):
    """An archived monthly ledger (月度台账归档): the official figure of a region for a month, never
    changed once written (one per region and month — the database says so)."""

    __tablename__ = "ledger_archive"
    __table_args__ = (UniqueConstraint("region_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    as_of: Mapped[dt.date] = mapped_column(Date)
    stored_name: Mapped[str] = mapped_column(String(200), unique=True)  # under LEDGER_FOLDER
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    # The 汇总 figures by channel × round at archiving, to compare with today's live figures.
    figures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()


class SavedFilter(Base):
    """A user's named task-list filter (保存的筛选): the list's query string, replayed as a link."""

    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(Text, default="")  # the list's URL query string
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClosureCriterion(Base):
    """One item of a channel's closure checklist (销号标准), kept by admins and completed by the
    verifier in the ``close`` form. ``required_kinds`` are evidence kinds (EVIDENCE_KINDS) the task
    must hold before the item can be ticked."""

    __tablename__ = "closure_criterion"
    __table_args__ = (Index("ix_closure_criterion_channel_position", "channel_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    required_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    channel: Mapped[Channel] = relationship()


class RecheckSample(Base):
    """回头看抽查: a random sample of closed tasks drawn by a supervisor for re-inspection."""

    __tablename__ = "recheck_sample"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)  # the scope drawn from
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"))
    drawn_on: Mapped[dt.date] = mapped_column(Date)
    population: Mapped[int] = mapped_column(Integer)  # closed tasks the sample was drawn from
    size: Mapped[int] = mapped_column(Integer)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # filters used to draw
    seed: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
    membership: Mapped[Membership] = relationship()
    items: Mapped[list[RecheckItem]] = relationship(
        back_populates="sample", cascade="all, delete-orphan", order_by="RecheckItem.id"
    )


class RecheckItem(Base):
    """One sampled task and its re-inspection result: pending 待复查 / passed 通过 / regressed 返黑返臭."""

    __tablename__ = "recheck_item"
    __table_args__ = (UniqueConstraint("sample_id", "task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("recheck_sample.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    result: Mapped[str] = mapped_column(String(20), default="pending")
    note: Mapped[str] = mapped_column(Text, default="")
    checked_on: Mapped[dt.date | None] = mapped_column(Date)
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("membership.id"))

    sample: Mapped[RecheckSample] = relationship(back_populates="items")
    task: Mapped[Task] = relationship()
    membership: Mapped[Membership | None] = relationship()


class BackgroundJob(Base):
    """A long operation (import, large export) run outside the request: queued → running → done/failed,
    with progress the user can leave and come back to."""

    __tablename__ = "background_job"
    __table_args__ = (
        Index("ix_background_job_state_id", "state", "id"),
        Index("ix_background_job_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # ledger_export, task_export, intake, …
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"))
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued running done failed
    progress: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stored_name: Mapped[str | None] = mapped_column(String(200))  # the produced file, under JOBS folder
    download_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()
    membership: Mapped[Membership] = relationship()


class ApiToken(Base):
    """A personal API token: shown once, stored as its SHA-256, bound to one membership."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists so a user can tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()
    membership: Mapped[Membership] = relationship()


class IdempotencyRecord(Base):
    """The stored answer to a POST made with an ``Idempotency-Key``, replayed when the call is retried."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_token.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100), default="application/json")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


# --- tallies: today's figures kept as counts (DESIGN §9) -----------------------------------------------
# Database triggers (migration 0011) append a −1 row for a task's old values and a +1 row for its new ones
# whenever a counted column changes, so the sums per key are always the live counts of ``task`` with no
# writer having to remember them; ``tracker.tally`` reads them and folds the rows together now and then.
# Append-only: concurrent writers never wait on each other's counters. A task is counted under its own
# region and under every region above it (``scope_id``): a region's figures are the rows of its scope.

TALLY_ID = BigInteger().with_variant(Integer, "sqlite")  # many rows a day; SQLite's rowid is 64-bit anyway


class TaskTally(Base):
    """Tasks per (scope, channel, round, state and today's kept values): Σn is the count."""

    __tablename__ = "task_tally"
    __table_args__ = (Index("ix_task_tally_scope_id", "scope_id"),)

    id: Mapped[int] = mapped_column(TALLY_ID, primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer)  # the task's region or one above it
    channel_id: Mapped[int] = mapped_column(Integer)
    round_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    schedule: Mapped[str | None] = mapped_column(String(20))
    overdue: Mapped[bool | None] = mapped_column(Boolean)
    not_reported: Mapped[bool | None] = mapped_column(Boolean)
    escalation_level: Mapped[int | None] = mapped_column(Integer)
    extended: Mapped[bool | None] = mapped_column(Boolean)  # extension_count > 0 (经批准延期)
    n: Mapped[int] = mapped_column(Integer)


class LeadTally(Base):
    """Tasks per lead unit (a task counts under each of its lead units), scope and values."""

    __tablename__ = "lead_tally"
    __table_args__ = (Index("ix_lead_tally_scope_id", "scope_id"),)

    id: Mapped[int] = mapped_column(TALLY_ID, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer)
    scope_id: Mapped[int] = mapped_column(Integer)  # the task's region or one above it
    state: Mapped[str] = mapped_column(String(20))
    schedule: Mapped[str | None] = mapped_column(String(20))
    overdue: Mapped[bool | None] = mapped_column(Boolean)
    not_reported: Mapped[bool | None] = mapped_column(Boolean)
    extended: Mapped[bool | None] = mapped_column(Boolean)
    n: Mapped[int] = mapped_column(Integer)


class ClosureTally(Base):
    """Tasks 已完成 per scope and month of their 销号日期 (the dashboard's closures per month)."""

    __tablename__ = "closure_tally"
    __table_args__ = (Index("ix_closure_tally_scope_id_month", "scope_id", "month"),)

    id: Mapped[int] = mapped_column(TALLY_ID, primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer)  # the task's region or one above it
    month: Mapped[dt.date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer)


class TaskPeriod(Base):
    """序时进度 over time: a span of days over which a counted task's bucket, 逾期 and 延期 held, as the
    replay of its events gives them for every day of it (``progress.periods``). A report as of a past
    date reads the spans that contain it instead of replaying every history (``tracker.periods``)."""

    __tablename__ = "task_period"

    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)  # the first day it no longer holds; None: from then on
    bucket: Mapped[str] = mapped_column(String(20))
    overdue: Mapped[bool] = mapped_column(Boolean)
    extended: Mapped[bool] = mapped_column(Boolean)


class PeriodStale(Base):
    """Tasks whose spans are out of date: appended by triggers on ``event`` and ``milestone`` in the
    writer's own transaction (and for every task when the time settings change); a report replays these
    tasks, and ``periods.catch_up`` recomputes their spans and takes them off."""

    __tablename__ = "period_stale"
    __table_args__ = (Index("ix_period_stale_task_id", "task_id"),)

    id: Mapped[int] = mapped_column(TALLY_ID, primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer)
