"""Plan import (整改方案/规划文本导入, DESIGN §7): a plan like 003 becomes tasks with their history.

``parse_plan`` is pure: numbered items ``（四）…（四十）`` become groups (所属问题); every responsibility
clause at the end of a paragraph (``（省生态环境厅牵头，省水利厅等参与）``, ``（…按职责分工负责）`` …) becomes
one task with its lead and participant bodies; ``到20XX年（年）底，…`` sentences become milestones.
``import_plan`` checks the whole plan against the database (units by name or alias, free codes)
before it writes anything, then registers and assigns every task as of the plan's issue date.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from tracker import schedule
from tracker.accounts import create_unit
from tracker.audit import ActionError, record_event
from tracker.models import (
    Channel,
    ChannelAlias,
    Membership,
    Milestone,
    Region,
    Round,
    RoundAlias,
    Task,
    TaskUnit,
    Unit,
    UnitKind,
)
from tracker.operations import find_or_create_problem
from tracker.permissions import can_register
from tracker.timeutil import local_date
from tracker.workflow import State

TITLE_MAX = 60
SOURCE = "整改方案导入"
# A plan is a document of some pages (003 is about 60 KB); a larger file is refused before it is read.
MAX_PLAN_BYTES = 5 * 1024 * 1024

_CN_DIGITS = {d: i for i, d in enumerate("一二三四五六七八九", start=1)}
_ITEM = re.compile(r"^[（(](?P<num>[一二三四五六七八九十]{1,4})[）)]\s*(?P<rest>.*)$")
_SECTION = re.compile(r"^[一二三四五六七八九十]{1,3}、")
_CLAUSE = re.compile(r"[（(](?P<body>[^（）()]*?(?:牵头|负责|参与)[^（）()]*?)[）)]")
_LEAD = re.compile(r"^(?P<bodies>.+?)等?(?:按照?职责分工)?(?:牵头|负责)$")
_PARTICIPANT = re.compile(r"^(?P<bodies>.+?)等?(?:配合|参与)$")
_GENERIC = re.compile(r"^(?:有关|相关|各相关|各有关|地方各级|各级|各地|各市州)")
_STANDING = re.compile(r"^以下均需(?P<what>.+)$")
_MILESTONE = re.compile(r"到\s*(?P<year>20\d{2})\s*年(?:年)?底[，,][^。；;]*[。；;]?")
_EXPIRY = re.compile(r"有效期至\s*(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日")
_TITLE_IN_NOTICE = re.compile(r"印发《(?P<title>[^《》]+?)》")
_SIGNED_ON = re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日$")
_SIGNATORY = re.compile(r"^(?:湖南省|国家)[\u4e00-\u9fff]+(?:厅|院|局|委员会|委|办公室|办)$")
_PARTS = re.compile(r"[，,；;。]")
_TITLE_END = re.compile(r"[，,。；;：:]")


def chinese_number(text: str) -> int:
    """一 … 九十九 as written in item numbers (十, 十五, 二十, 四十, 三十七)."""
    if "十" not in text:
        return _CN_DIGITS[text]
    tens, _, ones = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


# --- the parsed plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanMilestone:
    due_on: dt.date
    description: str


@dataclass
class PlanTask:
    """One responsibility clause and the text it covers."""

    group: int  # the item number (4 for （四）)
    index: int  # 1, 2 … within the item
    line: int  # where the clause is (1-based)
    title: str
    description: str
    clause: str
    leads: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    milestones: list[PlanMilestone] = field(default_factory=list)

    @property
    def code(self) -> str:
        return f"{self.group}-{self.index}"


@dataclass
class PlanGroup:
    number: int
    label: str  # （四）
    title: str  # 巩固提升饮用水安全保障水平
    line: int
    tasks: list[PlanTask] = field(default_factory=list)


@dataclass
class Plan:
    title: str | None
    signatories: list[str]
    signed_on: dt.date | None
    expires: dt.date | None
    expires_text: str
    groups: list[PlanGroup]

    @property
    def tasks(self) -> list[PlanTask]:
        return [t for g in self.groups for t in g.tasks]

    @property
    def milestones(self) -> list[PlanMilestone]:
        return [m for t in self.tasks for m in t.milestones]

    @property
    def bodies(self) -> list[str]:
        """Every unit named as lead or participant, in order of first mention."""
        return list(dict.fromkeys(b for t in self.tasks for b in (*t.leads, *t.participants)))


class PlanError(ActionError):
    """The plan cannot be imported; ``unknown`` lists bodies not found when that is the reason."""

    def __init__(self, message: str, unknown: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.unknown = list(unknown)


# --- parsing --------------------------------------------------------------------------------------


def _split_bodies(text: str) -> list[str]:
    return [b.strip() for b in text.split("、") if b.strip()]


@dataclass
class _Clause:
    leads: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    standing: str | None = None  # 以下均需…: a remark for this and every later task


def _add_bodies(clause: _Clause, bodies: list[str], suffix: str, target: list[str]) -> None:
    for body in bodies:
        if _GENERIC.match(body):
            clause.remarks.append(f"{body}{suffix}")
        else:
            target.append(body)


def _clause_part(clause: _Clause, part: str, line: int) -> None:
    standing = _STANDING.match(part)
    if standing:
        clause.standing = standing.group("what")
    elif part in ("不再列出", "不再一一列出"):
        return
    elif (m := _PARTICIPANT.match(part)) is not None:
        _add_bodies(clause, _split_bodies(m.group("bodies")), "参与", clause.participants)
    elif (m := _LEAD.match(part)) is not None:
        _add_bodies(clause, _split_bodies(m.group("bodies")), part[len(m.group("bodies")):], clause.leads)
    elif _GENERIC.match(part):
        clause.remarks.append(part)
    else:
        raise PlanError(f"第{line}行：无法识别的责任分工“{part}”")


def parse_clause(text: str, line: int = 0) -> _Clause:
    """The bodies of ``省生态环境厅、省水利厅按职责分工牵头，省发展改革委等参与，…``."""
    clause = _Clause()
    for part in _PARTS.split(text):
        if part.strip():
            _clause_part(clause, part.strip(), line)
    if not clause.leads:
        raise PlanError(f"第{line}行：责任分工“{text}”中没有牵头或负责单位")
    return clause


def _short_title(text: str) -> str:
    head = _TITLE_END.split(text.strip(), maxsplit=1)[0].strip()
    return head if len(head) <= TITLE_MAX else head[: TITLE_MAX - 1] + "…"


def _milestones(text: str) -> list[PlanMilestone]:
    return [PlanMilestone(dt.date(int(m.group("year")), 12, 31), m.group(0).strip()) for m in _MILESTONE.finditer(text)]


class _Parser:
    """Walks the paragraphs (lines) of the plan, keeping the current item and text not yet covered."""

    def __init__(self) -> None:
        self.groups: list[PlanGroup] = []
        self.group: PlanGroup | None = None
        self.pending = ""
        self.standing: list[str] = []

    def line(self, number: int, raw: str) -> None:
        text = raw.strip()
        if not text:
            return
        if _SECTION.match(text):
            self._close()
            return
        item = _ITEM.match(text)
        if item:
            self._open(number, item.group("num"), item.group("rest"))
            return
        if self.group is not None:
            self.paragraph(number, text)

    def _open(self, number: int, num: str, rest: str) -> None:
        self._close()
        heading, _, body = rest.partition("。")
        self.group = PlanGroup(chinese_number(num), f"（{num}）", heading.strip(), number)
        if body.strip():
            self.paragraph(number, body.strip())

    def _close(self) -> None:
        if self.group is not None and self.group.tasks:
            self.groups.append(self.group)
        self.group, self.pending = None, ""

    def paragraph(self, number: int, text: str) -> None:
        start = 0
        for match in _CLAUSE.finditer(text):
            segment = (self.pending + text[start:match.start()]).strip()
            self.pending = ""
            start = match.end()
            self._task(number, segment, match.group("body"))
        rest = text[start:].strip()
        self.pending += rest

    def _task(self, number: int, segment: str, body: str) -> None:
        group = self.group
        clause = parse_clause(body, number)
        if clause.standing and clause.standing not in self.standing:
            self.standing.append(clause.standing)
        remarks = list(dict.fromkeys([*clause.remarks, *self.standing]))
        leads = list(dict.fromkeys(clause.leads))
        participants = [p for p in dict.fromkeys(clause.participants) if p not in leads]
        group.tasks.append(PlanTask(
            group=group.number, index=len(group.tasks) + 1, line=number, title=_short_title(segment or group.title),
            description=segment, clause=f"（{body}）", leads=leads, participants=participants, remarks=remarks,
            milestones=_milestones(segment),
        ))

    def finish(self) -> list[PlanGroup]:
        self._close()
        return self.groups


def _header(lines: list[str]) -> tuple[list[str], dt.date | None]:
    """The signatories (the block of unit names above the signing date) and that date."""
    signatories: list[str] = []
    for line in lines:
        text = line.strip()
        date = _SIGNED_ON.match(text)
        if date:
            return signatories, dt.date(int(date["y"]), int(date["m"]), int(date["d"]))
        names = text.split()
        if names and all(_SIGNATORY.match(n) for n in names):
            signatories.extend(names)
    return [], None


def parse_plan(text: str) -> Plan:
    """Read a plan's text (pure). Raises ``PlanError`` on a responsibility clause it cannot read."""
    lines = text.splitlines()
    parser = _Parser()
    for number, line in enumerate(lines, start=1):
        parser.line(number, line)
    groups = parser.finish()
    signatories, signed_on = _header(lines)
    head = re.sub(r"\s+", "", "".join(lines[:40]))
    title = _TITLE_IN_NOTICE.search(head)
    expiry = _EXPIRY.search(text)
    expires = dt.date(int(expiry["y"]), int(expiry["m"]), int(expiry["d"])) if expiry else None
    expires_text = f"有效期至{expires.year}年{expires.month}月{expires.day}日" if expires else ""
    return Plan(title["title"] if title else None, signatories, signed_on, expires, expires_text, groups)


# --- importing ------------------------------------------------------------------------------------


@dataclass
class PlanReport:
    groups: int
    tasks: int
    milestones: int
    created_units: list[str]
    unknown_bodies: list[str]
    remarks: list[str]
    title: str = ""
    round_name: str = ""
    codes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"已导入《{self.title}》（批次：{self.round_name}）：" if self.title else
                 f"已导入整改方案（批次：{self.round_name}）：",
                 f"共{self.groups}个问题、{self.tasks}项任务、{self.milestones}个阶段目标"]
        if self.created_units:
            lines.append(f"新建单位{len(self.created_units)}个：" + "、".join(self.created_units))
        if self.remarks:
            lines.append("写入备注：" + "；".join(self.remarks))
        return "\n".join(lines)


def find_channel(s: Session, name: str) -> Channel:
    """问题来源 by name or alias; an unknown one names the closest known channel."""
    name = name.strip()
    channel = s.scalar(select(Channel).where(Channel.name == name)) or s.scalar(
        select(Channel).join(ChannelAlias).where(ChannelAlias.alias == name))
    if channel is not None:
        return channel
    known = list(s.scalars(select(Channel.name))) + list(s.scalars(select(ChannelAlias.alias)))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    if close:
        raise ActionError("问题来源“{name}”不存在，是否为“{close}”？", name=name, close=close[0])
    raise ActionError("问题来源“{name}”不存在", name=name)


class _Units:
    """Active units by name and alias, resolving the names a plan writes (省发展改革委 …)."""

    def __init__(self, s: Session, region: Region) -> None:
        self.region = region
        self.province = s.scalar(select(Region).where(Region.level == 0))
        self.by_name: dict[str, list[Unit]] = {}
        units = s.scalars(select(Unit).where(Unit.active.is_(True)).options(selectinload(Unit.aliases)))
        for unit in units:
            for key in {unit.name, *(a.alias for a in unit.aliases)}:
                self.by_name.setdefault(key, []).append(unit)

    def full_name(self, body: str) -> str:
        """省卫生健康委 → 湖南省卫生健康委 (the province's name for the 省 of a short name)."""
        if body.startswith("省") and self.province is not None and self.province.name.endswith("省"):
            return self.province.name[:-1] + body
        return body

    def find(self, body: str) -> Unit | None:
        found = self.by_name.get(body) or self.by_name.get(self.full_name(body)) or []
        found = list(dict.fromkeys(found))
        if len(found) > 1:
            found = [u for u in found if u.region_id == self.region.id] or found
        if len(found) > 1:
            raise PlanError(f"单位“{body}”有重名：" + "、".join(f"{u.region.name}{u.name}" for u in found))
        return found[0] if found else None


def _unit_kind(name: str) -> str:
    if any(word in name for word in ("公司", "电视台")) or name.endswith("分行"):
        return UnitKind.enterprise.value
    return UnitKind.department.value


def _deadline(plan: Plan, expires: dt.date | None, issued: dt.date) -> tuple[dt.date, str]:
    if expires is not None:
        deadline, text = expires, f"有效期至{expires.year}年{expires.month}月{expires.day}日"
    elif plan.expires is not None:
        deadline, text = plan.expires, plan.expires_text
    else:
        raise PlanError("方案中没有写明有效期（有效期至YYYY年M月D日），请用 --expires 指定整改时限")
    if deadline < issued:
        raise PlanError(f"整改时限{deadline.isoformat()}早于交办日期{issued.isoformat()}")
    return deadline, text


def _round_name(plan: Plan, issued: dt.date, round_name: str | None) -> str:
    name = (round_name or plan.title or f"{issued.year}年整改方案").strip()
    if len(name) > 100:
        raise PlanError(f"批次名称“{name}”过长")
    return name


def _find_round(s: Session, name: str) -> Round | None:
    return s.scalar(select(Round).where(Round.name == name)) or s.scalar(
        select(Round).join(RoundAlias).where(RoundAlias.alias == name))


def _taken_codes(s: Session, channel: Channel, round_: Round | None, region: Region, codes: list[str]) -> list[str]:
    if round_ is None:
        return []
    taken = set(s.scalars(select(Task.code).where(
        Task.channel_id == channel.id, Task.round_id == round_.id, Task.region_id == region.id,
        Task.code.in_(codes))))
    return [c for c in codes if c in taken]


def _resolve(plan: Plan, units: _Units) -> tuple[dict[str, Unit], list[str]]:
    resolved: dict[str, Unit] = {}
    unknown: list[str] = []
    for body in plan.bodies:
        unit = units.find(body)
        if unit is None:
            unknown.append(body)
        else:
            resolved[body] = unit
    return resolved, unknown


@dataclass(frozen=True)
class _Issue:
    """Where and when the plan's tasks are put on the books."""

    channel: Channel
    round: Round
    issuer: Unit
    issued: dt.date
    deadline: dt.date
    deadline_text: str
    actor: Membership | None
    now: dt.datetime
    plan_title: str


def import_plan(
    s: Session,
    text: str,
    *,
    channel: Channel,
    issuer: Unit,
    issued: dt.date,
    expires: dt.date | None,
    actor: Membership | None,
    now: dt.datetime,
    create_missing: bool = False,
    round_name: str | None = None,
) -> PlanReport:
    """Register and assign (as of ``issued``) one task per responsibility clause of the plan.

    Everything is checked before anything is written; the caller commits, or rolls back on an
    ``ActionError`` (``PlanError.unknown`` lists the bodies that match no unit).
    """
    plan = parse_plan(text)
    if not plan.tasks:
        raise PlanError("方案中没有找到带责任分工的编号条目（如（四）…（省生态环境厅牵头，…等参与））")
    if issued > local_date(now):
        raise PlanError("交办日期不能晚于今天")
    region = issuer.region
    if actor is not None and not (decision := can_register(actor, region)):
        raise PlanError(decision.reason)
    deadline, deadline_text = _deadline(plan, expires, issued)
    name = _round_name(plan, issued, round_name)
    units = _Units(s, region)
    resolved, unknown = _resolve(plan, units)
    if unknown and not create_missing:
        raise PlanError(f"方案中有{len(unknown)}个单位在系统中不存在：" + "、".join(unknown)
                        + "（可先添加单位或别名，或使用 --create-missing 自动创建）", unknown)
    round_ = _find_round(s, name)
    codes = [t.code for t in plan.tasks]
    taken = _taken_codes(s, channel, round_, region, codes)
    if taken:
        raise PlanError(f"问题编号已存在（{channel.name} · {name} · {region.name}），该方案可能已导入："
                        + "、".join(taken[:10]) + ("等" if len(taken) > 10 else ""))
    # Valid: from here on everything is written.
    created = []
    for body in unknown:
        full = units.full_name(body)
        resolved[body] = create_unit(s, actor, now, full, region, _unit_kind(full), [body])
        created.append(full)
    if round_ is None:
        round_ = _create_round(s, actor, now, name)
    issue = _Issue(channel, round_, issuer, issued, deadline, deadline_text, actor, now, plan.title or name)
    tasks = [_create_task(s, issue, group, pt, resolved) for group in plan.groups for pt in group.tasks]
    ctx = schedule.load_context(s)
    today = local_date(now)
    for task in tasks:
        schedule.refresh(task, today, ctx)
    s.flush()
    remarks = list(dict.fromkeys(r for t in plan.tasks for r in t.remarks))
    return PlanReport(len(plan.groups), len(tasks), len(plan.milestones), created, unknown, remarks,
                      title=plan.title or "", round_name=round_.name, codes=codes)


def _create_round(s: Session, actor: Membership | None, now: dt.datetime, name: str) -> Round:
    position = (s.scalar(select(func.max(Round.position))) or 0) + 1
    round_ = Round(name=name, position=position)
    s.add(round_)
    s.flush()
    record_event(s, actor, now, "create", entity="round", entity_id=round_.id, data={"name": name, "source": SOURCE})
    return round_


def _create_task(s: Session, issue: _Issue, group: PlanGroup, pt: PlanTask, units: dict[str, Unit]) -> Task:
    problem = find_or_create_problem(s, issue.channel.id, issue.round.id, group.title)
    task = Task(
        code=pt.code, channel_id=issue.channel.id, round_id=issue.round.id, region_id=issue.issuer.region_id,
        kind="其他", problem_id=problem.id, title=pt.title, description=pt.description, category="其他",
        remarks="；".join(pt.remarks), registered_by_unit_id=issue.issuer.id, state=State.pending.value,
        created_at=issue.now,
    )
    s.add(task)
    s.flush()
    record_event(s, issue.actor, issue.now, "register", task=task, to_state=State.pending.value,
                 effective_on=issue.issued,
                 data={"code": task.code, "title": task.title, "source": SOURCE, "plan": issue.plan_title,
                       "problem": f"{group.label}{group.title}", "clause": pt.clause, "line": pt.line})
    leads = list(dict.fromkeys(units[b] for b in pt.leads))
    participants = [u for u in dict.fromkeys(units[b] for b in pt.participants) if u not in leads]
    for position, (unit, role) in enumerate([(u, "lead") for u in leads] + [(u, "participant") for u in participants]):
        task.task_units.append(TaskUnit(unit_id=unit.id, role=role, position=position))
    for m in pt.milestones:
        task.milestones.append(Milestone(due_on=m.due_on, description=m.description))
    task.deadline = task.original_deadline = issue.deadline
    task.deadline_kind, task.deadline_text = "date", issue.deadline_text
    task.assigned_on = task.cycle_started_on = issue.issued
    task.assigned_by_unit_id = issue.issuer.id
    task.state = State.assigned.value
    record_event(s, issue.actor, issue.now, "assign", task=task, from_state=State.pending.value,
                 to_state=task.state, effective_on=issue.issued,
                 data={"leads": [u.name for u in leads], "participants": [u.name for u in participants],
                       "deadline": issue.deadline, "deadline_kind": "date", "deadline_text": issue.deadline_text,
                       "assigned_on": issue.issued, "source": SOURCE,
                       "milestones": [{"due_on": m.due_on, "description": m.description} for m in pt.milestones]})
    s.flush()
    return task
