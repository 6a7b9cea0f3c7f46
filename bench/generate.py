"""The synthetic ledger the benchmarks run on: ``SCALE`` tasks of a province in the proportions of a
real one (DESIGN §9: a province holds about 10⁵ tasks, the design holds 10⁶ and 10⁷ events).

Every county-level division of Hunan with its office (突改办), government and bureaus; channels,
rounds, problems; tasks in every state with their whole history — register, 交办, 签收, 整改方案 and its
approval, monthly progress reports with percents, milestones (met or missed), extensions, 申请销号 with
evidence, 初验, 销号, 作废 — and the escalation records a daily scan would have left, about ten events
per task, hash-chained as ``audit.record_event`` links them (``tracker.chain``). Each task's kept values
(today's 序时进度, ``next_check_on``, ``escalation_check_on``) are computed by the app's own
``schedule.compute`` and ``schedule.escalation_check``, so the ledger looks as it does right after
today's scan: a scan of today finds nothing new until a benchmark changes a task.

Rows go in with PostgreSQL ``COPY`` (the bulk tables' secondary indexes are dropped during the load and
rebuilt after it, and foreign-key triggers are skipped where the role may), or with ``executemany`` on
SQLite, in chunks of ``CHUNK`` tasks. The same ``seed`` and ``today`` give the same ledger.

    python -m bench.generate --database-url postgresql://postgres@127.0.0.1:5432/tracker_bench --scale 100000
"""

from __future__ import annotations

import argparse
import bisect
import calendar as month_calendar
import dataclasses
import datetime as dt
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import JSON, Engine, create_engine, func, insert, make_url, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from bench import organisation as org
from config import _database_url
from tracker import chain, ladder, migrate, periods, schedule, tally
from tracker.models import Base, Channel, Membership, Region, Round, Unit
from tracker.progress import reporting_period
from tracker.timeutil import SHANGHAI, local_date, utcnow
from tracker.workdays import WorkCalendar

BENCH_PASSWORD = "zhenggai-bench"
CHUNK = 20_000  # tasks generated and loaded at a time
REBUILD_FROM = 50_000  # from this many tasks, drop the secondary indexes during the load and rebuild them after
START = dt.date(2019, 1, 1)  # the ledger's first 交办
BULK_TABLES = ("task", "task_unit", "milestone", "progress_report", "evidence", "extension_request", "event",
               "escalation_record", "complainant")

# Proportions of a provincial ledger some years in: most tasks written off, a quarter under way.
STATES = {"closed": 58, "rectifying": 26, "verifying": 5, "signed": 3, "assigned": 2, "pending": 3, "cancelled": 3}
CHANNEL_WEIGHTS = {"中央生态环境保护督察": 12, "长江经济带生态环境警示片": 4, "省级生态环境保护督察": 20,
                   "省生态环境警示片": 5, "省级河湖长巡查": 4, "全国人大执法检查": 1, "省委巡视": 2,
                   "污染防治攻坚战交办": 8, "信访件": 28, "绿盾专项行动": 3, "12369环保举报热线": 10, "专项排查": 3}
ROUNDS = ["第一轮", "第一轮“回头看”", "第二轮", "第三轮", "2019年", "2020年", "2021年", "2022年", "2023年", "2024年",
          "2025年", "2026年"]
KINDS = {"反馈问题": 55, "交办信访件": 15, "典型案例": 4, "披露问题": 8, "指出问题": 12, "其他": 6}
CATEGORIES = {"水": 34, "大气": 20, "土壤": 10, "固废": 16, "生态": 12, "噪声": 5, "辐射": 1, "其他": 2}
LETTER_CHANNELS = ("信访件", "12369环保举报热线")


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=month_calendar.monthrange(day.year, day.month)[1])


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A working hour of ``day`` in Beijing time, as the UTC timestamp an event would carry."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class FastCalendar(WorkCalendar):
    """The same working days with counts kept per day over the ledger's years, so that the millions of
    ``workdays_between`` / ``add_workdays`` calls of a large ledger's generation are lookups."""

    def __init__(self, calendar: WorkCalendar, first: dt.date, last: dt.date) -> None:
        super().__init__(calendar.days, calendar.confirmed_years)
        self.first, self.last = first, last
        self.cumulative, count = [], 0
        day = first
        while day <= last:
            count += self.is_workday(day)
            self.cumulative.append(count)
            day += dt.timedelta(days=1)

    def _index(self, day: dt.date) -> int | None:
        index = (day - self.first).days
        return index if 0 <= index < len(self.cumulative) else None

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        i, j = self._index(start), self._index(end)
        if i is None or j is None:
            return super().workdays_between(start, end)
        return max(0, self.cumulative[j] - self.cumulative[i])

    def add_workdays(self, start: dt.date, n: int) -> dt.date:
        i = self._index(start)
        if n < 1 or i is None:
            return super().add_workdays(start, n)
        j = bisect.bisect_left(self.cumulative, self.cumulative[i] + n, i + 1)
        if j >= len(self.cumulative):
            return super().add_workdays(start, n)
        return self.first + dt.timedelta(days=j)


# --- the organisation ----------------------------------------------------------------------------------


@dataclass
class Actor:
    unit_id: int
    membership_id: int
    user_id: int
    name: str  # the unit's name


@dataclass
class Place:
    """A region tasks live in, with who acts there."""

    id: int
    name: str
    level: int
    parent: Place | None
    office: Actor | None = None  # the supervisor of the 突改办 / 督察办 here
    government: Actor | None = None
    bureaus: list[Actor] = field(default_factory=list)
    enterprises: list[Actor] = field(default_factory=list)

    def supervised(self) -> Place:
        """The nearest region upward whose office has supervisors (a 乡镇 has none)."""
        place = self
        while place.office is None and place.parent is not None:
            place = place.parent
        return place


@dataclass
class Organisation:
    province: Place
    cities: list[Place]
    counties: list[Place]
    townships: list[Place]
    channels: list[Channel]
    rounds: list[int]
    users: int = 0


class _Ids:
    """Explicit ids past what a table holds, so rows of several tables can refer to each other before
    they are written."""

    def __init__(self, conn) -> None:
        self.conn, self.next = conn, {}

    def take(self, table: str) -> int:
        if table not in self.next:
            current = self.conn.execute(select(func.max(Base.metadata.tables[table].c.id))).scalar()
            self.next[table] = (current or 0) + 1
        value = self.next[table]
        self.next[table] += 1
        return value


class _OrgBuilder:
    def __init__(self, conn, now: dt.datetime) -> None:
        self.conn, self.now, self.ids = conn, now, _Ids(conn)
        self.rows: dict[str, list[dict]] = {"region": [], "unit": [], "user_account": [], "membership": []}
        self.password = generate_password_hash(BENCH_PASSWORD, method="pbkdf2:sha256:1000")

    def load_existing(self) -> None:
        """What an earlier run (or a test's world) made, to reuse rather than duplicate."""
        self.regions = {(r.parent_id, r.name): r.id for r in self.conn.execute(
            select(Region.id, Region.parent_id, Region.name))}
        self.units = {(u.name, u.region_id): u.id for u in self.conn.execute(
            select(Unit.id, Unit.name, Unit.region_id))}
        self.memberships = {(m.unit_id, m.role): (m.id, m.user_id) for m in self.conn.execute(
            select(Membership.id, Membership.unit_id, Membership.role, Membership.user_id))}

    def region(self, name: str, parent: Place, level: int, is_zone: bool = False) -> Place:
        rid = self.regions.get((parent.id, name))
        if rid is None:
            rid = self.ids.take("region")
            self.rows["region"].append(dict(id=rid, name=name, level=level, is_zone=is_zone, parent_id=parent.id,
                                            path=f"{self.paths[parent.id]}{rid}/"))
        self.paths[rid] = f"{self.paths[parent.id]}{rid}/"
        return Place(rid, name, level, parent)

    def unit(self, name: str, place: Place, kind: str, roles: tuple[str, ...] = ("unit",)) -> Actor:
        uid = self.units.get((name, place.id))
        if uid is None:
            uid = self.ids.take("unit")
            self.rows["unit"].append(dict(id=uid, name=name, region_id=place.id, kind=kind, active=True))
        first = None
        for role in roles:
            if (uid, role) in self.memberships:
                membership_id, user_id = self.memberships[(uid, role)]
                first = first or Actor(uid, membership_id, user_id, name)
                continue
            user_id, membership_id = self.ids.take("user_account"), self.ids.take("membership")
            username = f"bench_{role}_{uid}"
            self.rows["user_account"].append(dict(
                id=user_id, username=username, display_name=f"{place.name}{role}{uid}", email=f"{username}@example.cn",
                phone="", password_hash=self.password, active=True, session_generation=0, locale="zh_Hans_CN",
                created_at=self.now))
            self.rows["membership"].append(dict(id=membership_id, user_id=user_id, unit_id=uid, role=role,
                                                active=True))
            first = first or Actor(uid, membership_id, user_id, name)
        return first

    def write(self) -> None:
        for table in ("region", "unit", "user_account", "membership"):
            if self.rows[table]:
                self.conn.execute(insert(Base.metadata.tables[table]), self.rows[table])


def build_organisation(conn, now: dt.datetime) -> Organisation:
    """Counties, townships, units, users and rounds under the 湖南省 and 14 市州 of the migrations."""
    b = _OrgBuilder(conn, now)
    regions = conn.execute(select(Region.id, Region.name, Region.level, Region.path).where(Region.level <= 1)
                           .order_by(Region.id)).all()
    b.paths = {r.id: r.path for r in regions}
    b.load_existing()
    root = next(r for r in regions if r.level == 0)
    province = Place(root.id, root.name, 0, None)
    province.office = b.unit(org.PROVINCE_OFFICE, province, "coordinating", ("supervisor", "viewer", "admin"))
    province.bureaus = [b.unit(name, province, "department") for name in org.PROVINCIAL_DEPARTMENTS]
    cities, counties, townships = [], [], []
    for r in regions:
        if r.level != 1:
            continue
        city = Place(r.id, r.name, 1, province)
        short = r.name.removesuffix("市").removesuffix("土家族苗族自治州") or r.name
        city.office = b.unit(f"{short}市突出环境问题整改办公室", city, "coordinating", ("supervisor", "viewer"))
        city.government = b.unit(f"{r.name}人民政府", city, "government")
        city.bureaus = [b.unit(f"{r.name}{name}", city, "department") for name in org.CITY_BUREAUS]
        cities.append(city)
        for name in org.COUNTIES.get(r.name, []):
            zone = name.endswith("*")
            name = name.rstrip("*")
            county = b.region(name, city, 2, zone)
            county.office = b.unit(f"{name}突出环境问题整改办公室", county, "coordinating", ("supervisor",))
            county.government = b.unit(f"{name}管理委员会" if zone else f"{name}人民政府", county, "government")
            county.bureaus = [b.unit(f"{r.name}生态环境局{name}分局", county, "department")] + [
                b.unit(f"{name}{bureau}", county, "department") for bureau in org.COUNTY_BUREAUS]
            county.enterprises = [b.unit(e, county, "enterprise") for e in org.ENTERPRISES.get(name, [])]
            counties.append(county)
            for town in org.TOWNSHIPS.get(name, []):
                township = b.region(town, county, 3)
                township.government = b.unit(f"{town}人民政府", township, "government")
                townships.append(township)
    b.write()
    round_ids = []
    known = dict(conn.execute(select(Round.name, Round.id)).all())
    for position, name in enumerate(ROUNDS):
        if name not in known:
            known[name] = conn.execute(insert(Round).values(name=name, position=position).returning(Round.id)).scalar()
        round_ids.append(known[name])
    channels = list(conn.execute(select(Channel.id, Channel.name, Channel.position, Channel.closing_level,
                                        Channel.pre_verify_level).order_by(Channel.position, Channel.id)))
    return Organisation(province, cities, counties, townships, channels, round_ids, len(b.rows["user_account"]))


# --- tasks ------------------------------------------------------------------------------------------------


@dataclass
class Life:
    """The dates of one task's history, drawn before its rows are written."""

    state: str
    registered_on: dt.date
    assigned_on: dt.date | None = None
    signed_on: dt.date | None = None
    plan_submitted_on: dt.date | None = None
    plan_approved_on: dt.date | None = None
    closure_applied_on: dt.date | None = None
    pre_verified_on: dt.date | None = None
    closed_on: dt.date | None = None
    cancelled_on: dt.date | None = None
    end: dt.date | None = None  # the last day reports can fall on


class LedgerWriter:
    """Draws tasks one by one and keeps their rows per table until the chunk is loaded."""

    def __init__(self, organisation: Organisation, ctx: schedule.TimeContext, today: dt.date, seed: int,
                 ids: _Ids, scale: int) -> None:
        self.org, self.ctx, self.today, self.ids = organisation, ctx, today, ids
        self.rng = random.Random(seed)
        self.rows: dict[str, list[tuple]] = {name: [] for name in BULK_TABLES}
        self.problems: dict[tuple, int] = {}
        self.problem_rows: list[dict] = []
        self.problem_pool = max(1, scale // 200)
        self.period_start, _due = reporting_period(ctx.settings.reporting, today)
        self.channel_weights = [CHANNEL_WEIGHTS.get(c.name, 2) for c in organisation.channels]
        places = [(p, 150) for p in organisation.counties] + [(p, 110) for p in organisation.cities] + [
            (organisation.province, 60)] + [(p, 20) for p in organisation.townships]
        self.places, self.place_weights = [p for p, _ in places], [w for _, w in places]
        self.counts = {"tasks": 0, "events": 0}

    # -- one task --

    def task(self) -> None:
        rng = self.rng
        tid = self.ids.take("task")
        place = rng.choices(self.places, weights=self.place_weights)[0]
        channel = rng.choices(self.org.channels, weights=self.channel_weights)[0]
        round_id = rng.choice(self.org.rounds)
        kind = "交办信访件" if channel.name in LETTER_CHANNELS else pick(rng, KINDS)
        life = self._life(pick(rng, STATES))
        deadline, deadline_kind, deadline_text = self._deadline(life)
        assigner = self._assigner(place, channel)
        leads, participants = self._units(place)
        site = rng.choice(org.SITES)
        title = f"{place.name}{rng.choice(['城区', '工业园', '沿江', '乡镇', ''])}{site}{rng.choice(org.DEFECTS)}"
        code = f"{channel.position + 1:02d}-{tid:07d}"
        task = SimpleNamespace(
            id=tid, code=code, state=life.state, assigned_on=life.assigned_on, deadline=deadline,
            deadline_kind=deadline_kind, plan_submitted_on=life.plan_submitted_on,
            plan_approved_on=life.plan_approved_on, closure_applied_on=life.closure_applied_on,
            latest_report_on=None, latest_percent=None, extension_count=0, milestones=[], children=[],
            cycle_started_on=life.assigned_on, escalation_level=0, version=1, events=[])
        self._history(task, life, place, assigner, leads, participants, channel, title, deadline_text)
        self._kept_values(task, life, place)
        self._task_row(task, life, place, channel, round_id, kind, title, site, deadline_text, assigner, leads,
                       participants)
        if kind == "交办信访件":
            self.rows["complainant"].append((tid, f"{rng.choice(org.SURNAMES)}某某", f"138{rng.randrange(10**8):08d}",
                                             f"{place.name}某小区", f"反映{title}，要求尽快整改。"))
        self.counts["tasks"] += 1

    def _life(self, state: str) -> Life:
        rng, today = self.rng, self.today
        ago = {"pending": (0, 40), "assigned": (0, 12), "signed": (4, 60), "rectifying": (45, 1000),
               "verifying": (60, 1300), "closed": (90, (today - START).days), "cancelled": (20, (today - START).days)}
        low, high = ago[state]
        if state == "pending":
            return Life(state, today - dt.timedelta(days=rng.randint(low, high)))
        assigned = today - dt.timedelta(days=rng.randint(low, high))
        life = Life(state, assigned - dt.timedelta(days=rng.randint(0, 6)), assigned_on=assigned)
        if state in ("assigned", "cancelled"):
            life.cancelled_on = min(today, assigned + dt.timedelta(days=rng.randint(1, 60))) \
                if state == "cancelled" else None
            return life
        life.signed_on = min(today, assigned + dt.timedelta(days=rng.randint(0, 4)))
        if state == "signed":
            if rng.random() < 0.5 and life.signed_on < today:
                life.plan_submitted_on = min(today, life.signed_on + dt.timedelta(days=rng.randint(1, 20)))
            return life
        life.plan_submitted_on = life.signed_on + dt.timedelta(days=rng.randint(3, 25))
        life.plan_approved_on = life.plan_submitted_on + dt.timedelta(days=rng.randint(1, 10))
        life.end = today
        return life

    def _deadline(self, life: Life) -> tuple[dt.date | None, str, str]:
        rng, today = self.rng, self.today
        roll = rng.random()
        base = life.assigned_on or life.registered_on
        if roll < 0.06:
            return None, "long_term", "长期坚持"
        if life.state == "verifying":  # mostly applied for 销号 before the deadline
            deadline = month_end(today + dt.timedelta(days=rng.randint(-60, 400)))
        elif life.state == "rectifying":
            if rng.random() < 0.12:  # 逾期
                day = base + dt.timedelta(days=rng.randint(40, max(41, (today - base).days - 1)))
                deadline = min(month_end(day), today - dt.timedelta(days=1))
            else:
                deadline = month_end(max(today, base + dt.timedelta(days=60)) + dt.timedelta(days=rng.randint(0, 540)))
        else:
            deadline = month_end(base + dt.timedelta(days=rng.randint(60, 720)))
        if roll < 0.10:
            return deadline, "date_and_long_term", f"{deadline.year}年底前完成并长期坚持"
        return deadline, "date", f"{deadline.year}年{deadline.month}月底前"

    def _assigner(self, place: Place, channel: Channel) -> Place:
        supervised = place.supervised()
        if channel.closing_level == 0 and self.rng.random() < 0.3 or supervised.parent is None:
            return self.org.province
        return supervised.parent if self.rng.random() < 0.5 else supervised

    def _units(self, place: Place) -> tuple[list[Actor], list[Actor]]:
        rng = self.rng
        if place.level == 0:
            leads = rng.sample(place.bureaus, rng.choice([1, 1, 1, 2]))
            pool = [b for b in place.bureaus if b not in leads]
            return leads, rng.sample(pool, rng.choice([0, 1, 2, 3]))
        roll = rng.random()
        if place.enterprises and roll < 0.15:
            leads = [rng.choice(place.enterprises)]
        elif place.bureaus and (roll < 0.35 or place.level == 1 and roll < 0.6):
            leads = [rng.choice(place.bureaus)]
        else:
            leads = [place.government]
        if place.bureaus and rng.random() < 0.2:
            extra = rng.choice(place.bureaus)
            if extra not in leads:
                leads.append(extra)
        pool = [b for b in place.bureaus + (place.parent.bureaus if place.parent else []) if b not in leads]
        return leads, rng.sample(pool, min(len(pool), rng.choice([0, 0, 1, 2])))

    # -- history --

    def _event(self, task, action: str, day: dt.date, actor: Actor | None, data: dict,
               from_state: str | None = None, to_state: str | None = None) -> None:
        event_id = self.ids.take("event")
        task.events.append((event_id, task.id, "task", task.id, action, actor.membership_id if actor else None,
                            actor.user_id if actor else None, from_state, to_state, data,
                            at(day, 9 + event_id % 8), day))
        task.version += 1

    def _history(self, task, life: Life, place: Place, assigner: Place, leads: list[Actor],
                 participants: list[Actor], channel: Channel, title: str, deadline_text: str) -> None:
        sup, lead = assigner.office, leads[0]
        self._event(task, "register", life.registered_on, sup, {"code": task.code, "title": title}, None, "pending")
        if life.assigned_on is None:
            return
        self._event(task, "assign", life.assigned_on, sup, {
            "leads": [u.name for u in leads], "participants": [u.name for u in participants],
            "deadline": task.deadline.isoformat() if task.deadline else None, "deadline_kind": task.deadline_kind,
            "deadline_text": deadline_text, "assigned_on": life.assigned_on.isoformat()}, "pending", "assigned")
        task.original_deadline = task.deadline
        if life.state == "cancelled":
            reason = self.rng.choice(["经核查不属实", "与其他问题重复", "不属于本次督察范围"])
            self._event(task, "cancel", life.cancelled_on, sup, {"reason": reason}, "assigned", "cancelled")
            return
        if life.signed_on is None:
            return
        self._event(task, "sign", life.signed_on, lead, {}, "assigned", "signed")
        if life.plan_submitted_on is None:
            return
        self._plan(task, life, lead)
        if life.plan_approved_on is None:
            return
        self._event(task, "approve_plan", life.plan_approved_on, sup, {"opinion": "同意"}, "signed", "rectifying")
        self._later(task, life, place, assigner, channel, lead)

    def _plan(self, task, life: Life, lead: Actor) -> None:
        rng = self.rng
        target, measures = rng.choice(org.TARGETS), rng.choice(org.MEASURES)
        task.target, task.measures = target, measures
        start = life.plan_submitted_on
        last = task.deadline or start + dt.timedelta(days=365)
        if last <= start + dt.timedelta(days=10):
            last = start + dt.timedelta(days=11)
        with_percent = rng.random() < 0.6
        middle = start + (last - start) / 2
        for due, description, percent in ((middle, "完成主体工程", 50), (last, "全面完成整改", 100)):
            task.milestones.append(SimpleNamespace(id=self.ids.take("milestone"), due_on=due, description=description,
                                                   planned_percent=percent if with_percent else None, met_on=None))
        self._event(task, "submit_plan", start, lead, {"target": target, "measures": measures, "milestones": [
            {"due_on": m.due_on.isoformat(), "description": m.description, "planned_percent": m.planned_percent}
            for m in task.milestones]}, "signed", "signed")

    def _later(self, task, life: Life, place: Place, assigner: Place, channel: Channel, lead: Actor) -> None:
        rng, today = self.rng, self.today
        if life.state in ("verifying", "closed"):
            span = (task.deadline or today) - life.plan_approved_on
            applied = life.plan_approved_on + dt.timedelta(days=max(5, int(span.days * rng.uniform(0.5, 1.05))))
            if life.state == "verifying":  # waiting for 验收 since recently
                applied = today - dt.timedelta(days=rng.randint(1, 60))
            life.closure_applied_on = min(applied, today - dt.timedelta(days=2))
            if life.closure_applied_on <= life.plan_approved_on:
                life.closure_applied_on = min(today, life.plan_approved_on + dt.timedelta(days=1))
            task.closure_applied_on = life.closure_applied_on
            life.end = life.closure_applied_on
        self._extension(task, life, lead, assigner)
        self._reports(task, life, lead)
        if life.closure_applied_on is None:
            return
        self._submit(task, life, lead)
        pre_verify = channel.pre_verify_level is not None and place.level >= channel.pre_verify_level > (
            channel.closing_level if channel.closing_level is not None else -1)
        if pre_verify and life.state == "closed" or pre_verify and rng.random() < 0.5:
            city = place if place.level == 1 else place.supervised().parent or place
            while city.level > 1:
                city = city.parent
            life.pre_verified_on = min(today, life.closure_applied_on + dt.timedelta(days=rng.randint(1, 15)))
            self._event(task, "pre_verify", life.pre_verified_on, city.office, {"opinion": "初验合格", "files": []},
                        "verifying", "verifying")
        if life.state != "closed":
            return
        closer = self.org.province if channel.closing_level == 0 else assigner
        after = life.pre_verified_on or life.closure_applied_on
        life.closed_on = min(today, after + dt.timedelta(days=rng.randint(1, 40)))
        doc_no = f"{closer.name[:2]}督整〔{life.closed_on.year}〕{rng.randint(1, 300)}号"
        task.verifier_unit_id, task.closure_doc_no = closer.office.unit_id, doc_no
        self._event(task, "close", life.closed_on, closer.office, {
            "opinion": "验收合格，同意销号", "closed_on": life.closed_on.isoformat(), "verifier": closer.office.name,
            "closure_doc_no": doc_no, "files": []}, "verifying", "closed", )

    def _extension(self, task, life: Life, lead: Actor, assigner: Place) -> None:
        rng = self.rng
        if task.deadline is None or rng.random() >= 0.08:
            return
        latest = min(task.deadline, life.end or self.today) - dt.timedelta(days=12)
        if latest <= life.plan_approved_on:
            return
        asked = life.plan_approved_on + dt.timedelta(days=rng.randint(1, (latest - life.plan_approved_on).days))
        decided = asked + dt.timedelta(days=rng.randint(2, 10))
        old, new = task.deadline, month_end(task.deadline + dt.timedelta(days=rng.randint(90, 270)))
        reason = "工程量大，受汛期影响工期顺延"
        self._event(task, "request_extension", asked, lead, {"reason": reason, "old_deadline": old.isoformat(),
                                                             "new_deadline": new.isoformat()},
                    "rectifying", "rectifying")
        self._event(task, "decide_extension", decided, assigner.office, {
            "approved": True, "old_deadline": old.isoformat(), "new_deadline": new.isoformat(), "reason": reason,
            "note": "同意延期"}, "rectifying", "rectifying")
        self.rows["extension_request"].append((self.ids.take("extension_request"), task.id, lead.membership_id, asked,
                                               old, new, reason, "approved", assigner.office.membership_id, decided,
                                               "同意延期"))
        task.deadline, task.extension_count, task.cycle_started_on = new, 1, decided
        for m in task.milestones:
            if m.due_on == old:
                m.due_on = new

    def _reports(self, task, life: Life, lead: Actor) -> None:
        rng = self.rng
        start, end = life.plan_approved_on, life.end
        if end <= start:
            return
        latest = end - dt.timedelta(days=rng.randint(0, 28) if rng.random() < 0.8 else rng.randint(29, 120))
        days, day, wanted = [], latest, rng.randint(2, 7)
        while day > start and len(days) < wanted:
            days.append(day)
            day -= dt.timedelta(days=rng.randint(25, 40))
        span = max(1, (end - start).days)
        for day in reversed(days):
            percent = min(95, max(5, int(100 * (day - start).days / span))) if rng.random() < 0.8 else None
            text = rng.choice(["已完成方案设计，正在施工", "主体工程推进中", "设备已安装调试", "已完成部分清运",
                               "正在开展第三方监测"])
            for m in task.milestones:
                if m.met_on is None and m.due_on - dt.timedelta(days=20) <= day and rng.random() < 0.85:
                    m.met_on = day
            self._event(task, "report", day, lead, {"text": text, "percent": percent, "milestones_met": [],
                                                    "files": []}, "rectifying", "rectifying")
            self.rows["progress_report"].append((self.ids.take("progress_report"), task.id, day, text, percent,
                                                 "progress", lead.membership_id, at(day)))
            task.latest_report_on = day
            if percent is not None:
                task.latest_percent = percent

    def _submit(self, task, life: Life, lead: Actor) -> None:
        day = life.closure_applied_on
        report_id = self.ids.take("progress_report")
        self.rows["progress_report"].append((report_id, task.id, day, "已完成整改，申请销号", 100, "closure",
                                             lead.membership_id, at(day)))
        files = []
        for kind, name in (("after", "整改后现场照片.jpg"), ("monitoring", "第三方监测报告.pdf")):
            evidence_id = self.ids.take("evidence")
            digest = hashlib.sha256(f"{task.id}-{evidence_id}".encode()).hexdigest()
            size = 200_000 + evidence_id % 800_000
            content_type = "image/jpeg" if name.endswith(".jpg") else "application/pdf"
            self.rows["evidence"].append((evidence_id, task.id, report_id, kind, name, f"bench{evidence_id:012d}",
                                          size, digest, content_type, lead.membership_id, at(day)))
            files.append({"name": name, "kind": kind, "size": size, "sha256": digest})
        self._event(task, "submit", day, lead, {"text": "已完成整改，申请销号", "files": files},
                    "rectifying", "verifying")
        task.latest_report_on, task.latest_percent = day, 100

    # -- today's values and the scan's records --

    def _kept_values(self, task, life: Life, place: Place) -> None:
        ctx, today = self.ctx, self.today
        values = schedule.compute(task, today, ctx)
        task.values = values
        check = None
        if values["schedule"] is not None or task.state == "verifying":
            check = schedule.escalation_check(task, values, today, ctx)
        task.values["escalation_check_on"] = check
        if task.state in ("assigned", "signed", "rectifying", "verifying"):
            self._open_records(task, values, place)
        elif task.state == "closed" and task.deadline and self.rng.random() < 0.2:
            day = task.deadline - dt.timedelta(days=7)
            if task.assigned_on < day <= life.closed_on:
                self._record(task, ladder.Due(ladder.WARNING, "距整改时限不超过5个工作日"), task.cycle_started_on,
                             "applied", day, place)
                task.escalation_level = 1

    def _open_records(self, task, values: dict, place: Place) -> None:
        """What today's scan would have recorded for an open task: each level when it fell due."""
        ctx, today = self.ctx, self.today
        facts = schedule.ladder_facts(task, values["schedule"] == "behind", values["not_reported"])
        cycle = task.cycle_started_on
        for item in ladder.assess(ctx.calendar, facts, today, ctx.rules, ctx.thresholds):
            if item.level == ladder.REMIND_REPORT:
                self._record(task, item, self.period_start, "applied", today, place)
            elif item.level == ladder.REMIND_VERIFY:
                self._record(task, item, task.closure_applied_on, "applied", today, place)
            elif item.level == ladder.WARNING:
                self._record(task, item, cycle, "applied", today, place)
                task.escalation_level = max(task.escalation_level, 1)
            else:
                rule = ctx.rules[item.level]
                crossed = ctx.calendar.add_workdays(task.deadline, rule.threshold)
                status = "proposed" if crossed >= today - dt.timedelta(days=10) else "confirmed"
                self._record(task, item, cycle, status, min(crossed, today), place, rule.decided_above)
                if status == "confirmed":
                    task.escalation_level = max(task.escalation_level, item.level)

    def _record(self, task, item: ladder.Due, cycle: dt.date | None, status: str, day: dt.date, place: Place,
                above: bool = False) -> None:
        deciding = (place.parent or place) if above else place
        deciding = deciding.supervised()
        record_id = self.ids.take("escalation_record")
        confirmed = status == "confirmed"
        doc_no = f"{deciding.name[:2]}督办〔{day.year}〕{record_id % 500 + 1}号" if confirmed else ""
        self.rows["escalation_record"].append((
            record_id, task.id, None, item.level, cycle, status, item.reason, item.overdue_workdays,
            deciding.id if item.level > ladder.WARNING else None, day, day if confirmed else None, doc_no,
            deciding.office.membership_id if confirmed else None, at(day, 8)))
        self._event(task, "remind" if item.level < ladder.WARNING else "escalate", day, None, {
            "level": item.level, "status": status, "reason": item.reason, "overdue_workdays": item.overdue_workdays})

    def _task_row(self, task, life: Life, place: Place, channel: Channel, round_id: int, kind: str, title: str,
                  site: str, deadline_text: str, assigner: Place, leads: list[Actor],
                  participants: list[Actor]) -> None:
        rng, v = self.rng, task.values
        problem_id = self._problem(channel, round_id, place, site) if rng.random() < 0.3 else None
        description = (f"经查，{place.name}{site}存在{title.removeprefix(place.name)}问题，"
                       f"周边群众反映强烈，{rng.choice(org.DEFECTS)}等情况未得到有效解决。")
        events = task.events
        created, updated = events[0][10], events[-1][10]
        leader = f"{rng.choice(org.SURNAMES)}{rng.choice(org.GIVEN)}"
        contact = f"{rng.choice(org.SURNAMES)}{rng.choice(org.GIVEN)} 0731-{rng.randrange(10**7):07d}"
        self.rows["task"].append((
            task.id, task.code, channel.id, round_id, kind, problem_id, None, title, description, place.id,
            pick(rng, CATEGORIES), leader, contact, getattr(task, "target", ""), getattr(task, "measures", ""),
            deadline_text, task.deadline, task.deadline_kind, getattr(task, "original_deadline", None), task.state,
            task.escalation_level, assigner.office.unit_id, assigner.office.unit_id if life.assigned_on else None,
            life.assigned_on, life.signed_on, life.plan_submitted_on, life.plan_approved_on, task.latest_report_on,
            task.latest_percent, task.cycle_started_on, task.extension_count, 0, v["schedule"], v["overdue"],
            v["not_reported"], v["schedule_as_of"], v["next_check_on"], v["escalation_check_on"],
            life.closure_applied_on, leads[0].user_id if life.closure_applied_on else None,
            "已完成整改，申请销号" if life.closure_applied_on else "", life.pre_verified_on,
            "初验合格" if life.pre_verified_on else "", "验收合格，同意销号" if life.closed_on else "", life.closed_on,
            getattr(task, "verifier_unit_id", None), getattr(task, "closure_doc_no", ""), None, "", "", created,
            updated, task.version))
        for position, unit in enumerate(leads):
            self.rows["task_unit"].append((task.id, unit.unit_id, "lead", position))
        for position, unit in enumerate(participants, start=len(leads)):
            self.rows["task_unit"].append((task.id, unit.unit_id, "participant", position))
        for m in task.milestones:
            self.rows["milestone"].append((m.id, task.id, m.due_on, m.description, m.planned_percent, m.met_on))
        self.rows["event"].extend(_chained(events))
        self.counts["events"] += len(events)

    def _problem(self, channel: Channel, round_id: int, place: Place, site: str) -> int:
        key = (channel.id, round_id, self.rng.randrange(self.problem_pool))
        if key not in self.problems:
            problem_id = self.ids.take("problem")
            self.problems[key] = problem_id
            self.problem_rows.append(dict(id=problem_id, channel_id=channel.id, round_id=round_id,
                                          code=f"问题{problem_id}", title=f"{place.name}等地{site}问题整改不到位"))
        return self.problems[key]


def _chained(events: list[tuple]) -> list[tuple]:
    """One task's events (in id order) with ``prev_hash`` and ``hash`` appended: its chain, as
    ``audit.record_event`` would have linked it."""
    linked, previous = [], None
    for row in events:
        fields = dict(zip(COLUMNS["event"][1:12], row[1:], strict=True))
        digest = chain.event_hash(previous, **fields)
        linked.append((*row, previous, digest))
        previous = digest
    return linked


# Column order of the tuples above, per table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "task": ("id", "code", "channel_id", "round_id", "kind", "problem_id", "parent_id", "title", "description",
             "region_id", "category", "responsible_leader", "contact", "target", "measures", "deadline_text",
             "deadline", "deadline_kind", "original_deadline", "state", "escalation_level", "registered_by_unit_id",
             "assigned_by_unit_id", "assigned_on", "signed_on", "plan_submitted_on", "plan_approved_on",
             "latest_report_on", "latest_percent", "cycle_started_on", "extension_count", "reopen_count", "schedule",
             "overdue", "not_reported", "schedule_as_of", "next_check_on", "escalation_check_on",
             "closure_applied_on", "closure_applied_by_id", "closure_report", "pre_verified_on", "pre_verify_opinion",
             "verify_opinion", "closed_on", "verifier_unit_id", "closure_doc_no", "merged_into_id", "accountability",
             "remarks", "created_at", "updated_at", "version"),
    "task_unit": ("task_id", "unit_id", "role", "position"),
    "milestone": ("id", "task_id", "due_on", "description", "planned_percent", "met_on"),
    "progress_report": ("id", "task_id", "reported_on", "text", "percent", "purpose", "membership_id", "created_at"),
    "evidence": ("id", "task_id", "report_id", "kind", "original_name", "stored_name", "size", "sha256",
                 "content_type", "membership_id", "uploaded_at"),
    "extension_request": ("id", "task_id", "membership_id", "requested_on", "old_deadline", "new_deadline", "reason",
                          "status", "decided_by_id", "decided_on", "decision_note"),
    "event": ("id", "task_id", "entity", "entity_id", "action", "membership_id", "user_id", "from_state", "to_state",
              "data", "recorded_at", "effective_on", "prev_hash", "hash"),
    "escalation_record": ("id", "task_id", "region_id", "level", "cycle_started_on", "status", "reason",
                          "overdue_workdays", "deciding_region_id", "scan_date", "decided_on", "doc_no",
                          "membership_id", "created_at"),
    "complainant": ("task_id", "name", "phone", "address", "content"),
}


# --- loading ---------------------------------------------------------------------------------------------


class Loader:
    """Writes rows: ``COPY`` on PostgreSQL, ``executemany`` elsewhere."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self._check_columns()

    def _check_columns(self) -> None:
        """A column added to a bulk table since this generator was written must have a default."""
        for table_name, columns in COLUMNS.items():
            table = Base.metadata.tables[table_name]
            missing = [c.name for c in table.columns if c.name not in columns and not c.nullable
                       and c.server_default is None]
            if missing:
                raise SystemExit(f"bench/generate.py: fill {table_name}.{', '.join(missing)} (not null, no default)")

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = COLUMNS[table]
        if not self.postgres:
            rows_as_dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            self.conn.execute(insert(Base.metadata.tables[table]), rows_as_dicts)
            return
        json_at = [i for i, name in enumerate(columns) if isinstance(Base.metadata.tables[table].c[name].type, JSON)]
        cursor = self.conn.connection.driver_connection.cursor()
        with cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = json.dumps(row[i], ensure_ascii=False)
                copy.write_row(row)


def _secondary_indexes(conn) -> list[tuple[str, str]]:
    """(name, definition) of the bulk tables' indexes that back no constraint."""
    return conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = ANY(:tables) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"),
        {"tables": list(BULK_TABLES)}).all()


@dataclass
class Summary:
    scale: int
    today: dt.date
    tasks: int
    events: int
    users: int
    seconds: float

    def describe(self) -> str:
        return (f"生成 {self.tasks} 项任务、{self.events} 条事件、{self.users} 个用户（截至 {self.today}），"
                f"用时 {self.seconds:.1f} 秒")


def generate(engine: Engine, scale: int, *, seed: int = 20261122, today: dt.date | None = None,
             chunk: int = CHUNK, log: Callable[[str], None] = print) -> Summary:
    """Add ``scale`` tasks with their history to the (migrated) database of ``engine``."""
    started = time.perf_counter()
    now = utcnow()
    today = today or local_date(now)
    with engine.begin() as conn:
        organisation = build_organisation(conn, now)
        ctx = schedule.load_context(Session(bind=conn))
    ctx = dataclasses.replace(ctx, calendar=FastCalendar(ctx.calendar, START - dt.timedelta(days=400),
                                                         today + dt.timedelta(days=3 * 365)))
    postgres = engine.dialect.name == "postgresql"
    indexes = []
    with engine.begin() as conn:
        ids = _Ids(conn)
        for table in BULK_TABLES:
            if "id" in COLUMNS[table]:
                ids.take(table)
                ids.next[table] -= 1
        ids.take("problem")
        ids.next["problem"] -= 1
        ids.conn = None
    if postgres and scale >= REBUILD_FROM:
        with engine.begin() as conn:
            indexes = _secondary_indexes(conn)
            for name, _definition in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
    writer = LedgerWriter(organisation, ctx, today, seed, ids, scale)
    try:
        done = 0
        while done < scale:
            size = min(chunk, scale - done)
            for _ in range(size):
                writer.task()
            _load_chunk(engine, writer, postgres)
            done += size
            log(f"  {done}/{scale} 项任务，{writer.counts['events']} 条事件（{time.perf_counter() - started:.0f} 秒）")
        with engine.begin() as conn:  # the tallies' triggers were skipped with the foreign-key ones
            tally.rebuild(conn)
    finally:
        if postgres:
            _finish_postgres(engine, indexes, log)
    spans_started = time.perf_counter()
    with engine.begin() as conn:  # the spans of 序时进度 over time, once the indexes are back
        spans = periods.rebuild(Session(bind=conn), ctx.settings)
    log(f"  序时进度时段：{spans} 项任务，用时 {time.perf_counter() - spans_started:.0f} 秒")
    return Summary(scale, today, writer.counts["tasks"], writer.counts["events"], organisation.users,
                   time.perf_counter() - started)


def _load_chunk(engine: Engine, writer: LedgerWriter, postgres: bool) -> None:
    with engine.begin() as conn:
        if postgres:
            _skip_fk_triggers(conn)
        loader = Loader(conn)
        if writer.problem_rows:
            conn.execute(insert(Base.metadata.tables["problem"]), writer.problem_rows)
            writer.problem_rows = []
        for table in BULK_TABLES:
            loader.write(table, writer.rows[table])
            writer.rows[table] = []


def _skip_fk_triggers(conn) -> None:
    """The generated rows refer only to rows written before them or in the same chunk: a superuser
    skips the per-row foreign-key triggers (``session_replication_role``); others keep them."""
    superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    if superuser:
        conn.execute(text("SET LOCAL session_replication_role = replica"))


def _finish_postgres(engine: Engine, indexes: list[tuple[str, str]], log: Callable[[str], None]) -> None:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _name, definition in indexes:
            conn.execute(text(definition))
        for table in Base.metadata.sorted_tables:
            if "id" in table.c and table.c.id.primary_key and table.c.id.autoincrement is not False:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 0) + 1, false)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    log(f"  索引重建与统计 {time.perf_counter() - started:.0f} 秒")


def fresh_database(url: str) -> None:
    """Drop and create the PostgreSQL database ``url`` names (never the maintenance database), then
    migrate it to head: the benchmarks' own database, made anew for every run."""
    target = make_url(_database_url(url))
    if target.get_backend_name() != "postgresql" or target.database in (None, "postgres", "template1"):
        raise SystemExit("--fresh needs a PostgreSQL URL naming a database of its own (e.g. tracker_bench)")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(target)
    migrate.upgrade(engine)
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--fresh", action="store_true", help="drop, create and migrate the database first")
    args = parser.parse_args(argv)
    if args.fresh:
        fresh_database(args.database_url)
    engine = create_engine(_database_url(args.database_url))
    summary = generate(engine, args.scale, seed=args.seed, today=args.today)
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
