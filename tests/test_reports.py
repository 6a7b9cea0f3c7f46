"""The §5 report (DESIGN §3 "as of", §5, §8 ``tracker report``) on a ledger built to Zhuzhou's published
figures (004 L158–L160: 截至2020年底 …), then as of 2021-06-30 with what the history implies.

The ledger is written the way an import writes history: task rows with their columns, an ``assign``
event dated at 交办 and the later events dated when they took effect — in bulk, without ``perform``.
Each task's expected bucket at both dates is stated where it is built, never computed by the code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import NOW
from tracker import periods, reports, settings
from tracker.accounts import NewUser, create_region, create_unit, create_user
from tracker.models import (
    Channel,
    Event,
    ExtensionRequest,
    Milestone,
    Region,
    Round,
    Task,
    TaskUnit,
)
from tracker.operations import perform
from tracker.timeutil import SHANGHAI

D = dt.date
DAY = dt.timedelta(days=1)
END_2020 = D(2020, 12, 31)
MID_2021 = D(2021, 6, 30)

CENTRAL = "中央生态环境保护督察"
PROVINCIAL = "省级生态环境保护督察"
YANGTZE = "长江经济带生态环境警示片"
ROUNDS = ["第一轮", "第一轮“回头看”", "第二轮", "2018年", "2019年"]

# Regions of 株洲市 (炎陵县 has no task) and the lead unit of each; 皇图岭镇 lies in 攸县.
REGIONS = {"株洲市": None, "荷塘区": "株洲市", "芦淞区": "株洲市", "醴陵市": "株洲市", "攸县": "株洲市",
           "炎陵县": "株洲市", "皇图岭镇": "攸县"}
LEAD_OF = {"株洲市": "株洲市住房和城乡建设局", "荷塘区": "荷塘区人民政府", "芦淞区": "芦淞区人民政府",
           "醴陵市": "醴陵市人民政府", "攸县": "攸县人民政府", "皇图岭镇": "皇图岭镇人民政府"}
TASK_REGIONS = ["株洲市", "荷塘区", "芦淞区", "醴陵市", "攸县", "皇图岭镇"]
JOINT_LEAD = "株洲市生态环境局"  # co-leads every fifth task


# (bucket, overdue, extended) at a date; None: not counted then.
Expect = tuple[str, bool, bool] | None
DONE: Expect = ("completed", False, False)
ON: Expect = ("on_schedule", False, False)
ON_EXT: Expect = ("on_schedule", False, True)
LATE: Expect = ("behind", True, False)
BEHIND: Expect = ("behind", False, False)


@dataclass
class Spec:
    channel: str
    round: str
    events: list[tuple[str, dt.date, str | None, dict]]
    expect: dict[dt.date, Expect]
    milestones: list[tuple[dt.date, int | None, dt.date | None]] = field(default_factory=list)
    region: str = ""
    leads: tuple[str, ...] = ()


# --- histories --------------------------------------------------------------------------------------


def assign(on: dt.date, deadline: dt.date | None, kind: str = "date"):
    text = "长期坚持" if deadline is None else f"{deadline.year}年{deadline.month}月{deadline.day}日前"
    return ("assign", on, "assigned",
            {"deadline": deadline, "deadline_kind": kind, "deadline_text": text, "assigned_on": on})


def under_way(assigned_on: dt.date, deadline: dt.date | None, kind: str = "date"):
    """交办, 签收 two days later, 整改方案 approved twenty days after 交办."""
    return [assign(assigned_on, deadline, kind), ("sign", assigned_on + 2 * DAY, "signed", {}),
            ("approve_plan", assigned_on + 20 * DAY, "rectifying", {})]


def closed(assigned_on: dt.date, deadline: dt.date, closed_on: dt.date):
    return [*under_way(assigned_on, deadline), ("submit", closed_on - 7 * DAY, "verifying", {"text": "已完成整改"}),
            ("close", closed_on, "closed", {"opinion": "验收合格", "closed_on": closed_on})]


def report(on: dt.date, percent: int | None = None):
    return ("report", on, "rectifying", {"text": "整改推进中", "percent": percent})


def extension(requested: dt.date, decided: dt.date, old: dt.date, new: dt.date, approved: bool = True):
    return [("request_extension", requested, "rectifying", {"reason": "工程量大", "old_deadline": old,
                                                             "new_deadline": new}),
            ("decide_extension", decided, "rectifying", {"approved": approved, "old_deadline": old,
                                                         "new_deadline": new, "note": "" if approved else "理由不足"})]


def specs() -> list[Spec]:
    """The Zhuzhou ledger. Counts in the comments are (as of 2020-12-31 → as of 2021-06-30)."""
    out: list[Spec] = []

    def add(channel, round_, n, events_of, at_2020, at_2021, milestones=()):
        for i in range(n):
            out.append(Spec(channel, round_, events_of(i), {END_2020: at_2020, MID_2021: at_2021}, list(milestones)))

    # 第一轮中央生态环境保护督察: 264 tasks, all 已完成 by 2020.
    add(CENTRAL, "第一轮", 262, lambda i: closed(D(2017, 12, 20), D(2020, 12, 31), D(2018, 3, 1) + 3 * i * DAY),
        DONE, DONE)
    # Closed in 2020, reopened in March 2021 (反弹): due again 2021-05-31 (late by June) or 2021-12-31.
    add(CENTRAL, "第一轮", 1, lambda i: [*closed(D(2017, 12, 20), D(2019, 12, 31), D(2020, 8, 10)),
                                       ("reopen", D(2021, 3, 10), "rectifying",
                                        {"reason": "问题反弹", "deadline": D(2021, 5, 31), "deadline_kind": "date"})],
        DONE, LATE)
    add(CENTRAL, "第一轮", 1, lambda i: [*closed(D(2017, 12, 20), D(2019, 12, 31), D(2020, 9, 1)),
                                       ("reopen", D(2021, 3, 10), "rectifying",
                                        {"reason": "回头看发现反弹", "deadline": D(2021, 12, 31),
                                         "deadline_kind": "date"})],
        DONE, ON)

    # 第一轮中央生态环境保护督察“回头看”: 220 tasks, 218 已完成, 2 达到序时进度.
    add(CENTRAL, "第一轮“回头看”", 217,
        lambda i: closed(D(2018, 10, 25), D(2020, 12, 31), D(2019, 1, 10) + 3 * i * DAY), DONE, DONE)
    add(CENTRAL, "第一轮“回头看”", 1, lambda i: closed(D(2018, 10, 25), D(2020, 12, 31), END_2020), DONE, DONE)
    # Applied for 销号 in December, closed on New Year's Day.
    add(CENTRAL, "第一轮“回头看”", 1, lambda i: closed(D(2018, 10, 25), D(2021, 6, 30), D(2021, 1, 1)), ON, DONE)
    # Due 2021-03-31, extension approved in March 2021 to 2021-09-30.
    add(CENTRAL, "第一轮“回头看”", 1,
        lambda i: [*under_way(D(2018, 10, 25), D(2021, 3, 31)), report(D(2020, 11, 20), 40),
                   *extension(D(2021, 3, 15), D(2021, 3, 20), D(2021, 3, 31), D(2021, 9, 30))],
        ON, ON_EXT)

    # 第二轮中央生态环境保护督察: assigned in May 2021, not counted at the end of 2020.
    add(CENTRAL, "第二轮", 3, lambda i: under_way(D(2021, 5, 20), D(2021, 12, 31)), None, ON)

    # 长江经济带警示片 2018 and 2019: 4 problems, all 整改完成.
    add(YANGTZE, "2018年", 2, lambda i: closed(D(2018, 12, 1), D(2019, 12, 31), D(2019, 11, 1) + 30 * i * DAY),
        DONE, DONE)
    add(YANGTZE, "2019年", 2, lambda i: closed(D(2019, 9, 1), D(2020, 9, 30), D(2020, 6, 1) + 30 * i * DAY),
        DONE, DONE)

    # 第一轮省生态环境保护督察: 515 tasks, 502 已完成, 13 达到序时进度.
    add(PROVINCIAL, "第一轮", 502, lambda i: closed(D(2018, 4, 20), D(2020, 12, 31), D(2018, 6, 1) + i * DAY),
        DONE, DONE)
    add(PROVINCIAL, "第一轮", 5,  # closed in 2021, before their deadline
        lambda i: [*closed(D(2018, 4, 20), D(2021, 6, 30), D(2021, 5, 20))], ON, DONE)
    add(PROVINCIAL, "第一轮", 3,  # due 2021-04-30, not done by June: 逾期
        lambda i: [*under_way(D(2018, 4, 20), D(2021, 4, 30)), report(D(2020, 12, 1), 70)], ON, LATE)
    add(PROVINCIAL, "第一轮", 2,  # applied for 销号 before the deadline, still waiting for 验收: not 逾期
        lambda i: [*under_way(D(2018, 4, 20), D(2021, 3, 31)), ("submit", D(2021, 3, 25), "verifying", {})],
        ON, ON)
    add(PROVINCIAL, "第一轮", 1,  # applied only after the deadline: 逾期
        lambda i: [*under_way(D(2018, 4, 20), D(2021, 3, 31)), ("submit", D(2021, 4, 10), "verifying", {})],
        ON, LATE)
    add(PROVINCIAL, "第一轮", 2,  # a planned-percent milestone met, no percent ever reported: not 滞后
        lambda i: under_way(D(2018, 4, 20), D(2021, 12, 31)), ON, ON,
        milestones=[(D(2021, 3, 31), 60, D(2021, 3, 28))])

    # 第一轮省级生态环境保护督察“回头看”: 314 tasks, 250 已完成, 64 达到序时进度.
    add(PROVINCIAL, "第一轮“回头看”", 250,
        lambda i: closed(D(2019, 5, 10), D(2020, 12, 31), D(2019, 7, 1) + 2 * i * DAY), DONE, DONE)
    add(PROVINCIAL, "第一轮“回头看”", 39,  # due at the end of 2021, no percent, no milestone
        lambda i: under_way(D(2019, 5, 10), D(2021, 12, 31)), ON, ON)
    add(PROVINCIAL, "第一轮“回头看”", 1,  # cancelled (merged) in February 2021
        lambda i: [*under_way(D(2019, 5, 10), D(2021, 12, 31)),
                   ("merge", D(2021, 2, 1), "cancelled", {"reason": "与其他问题重复", "merge_into": "HTK-0001"})],
        ON, None)
    add(PROVINCIAL, "第一轮“回头看”", 10,  # closed on 2021-06-30 itself
        lambda i: closed(D(2019, 5, 10), D(2021, 6, 30), MID_2021), ON, DONE)
    add(PROVINCIAL, "第一轮“回头看”", 5,  # extended in December 2020 from 2020-12-31 to 2021-06-30
        lambda i: [*under_way(D(2019, 5, 10), D(2020, 12, 31)),
                   *extension(D(2020, 12, 1), D(2020, 12, 15), D(2020, 12, 31), D(2021, 6, 30))],
        ON_EXT, ON_EXT)
    add(PROVINCIAL, "第一轮“回头看”", 2,  # 35% against a planned 50%: more than 10 points behind
        lambda i: [*under_way(D(2019, 5, 10), D(2021, 12, 31)), report(D(2020, 12, 10), 20),
                   report(D(2021, 4, 10), 35)], ON, BEHIND, milestones=[(D(2021, 3, 31), 50, D(2021, 3, 30))])
    add(PROVINCIAL, "第一轮“回头看”", 2,  # 40% against 50%: within the tolerance
        lambda i: [*under_way(D(2019, 5, 10), D(2021, 12, 31)), report(D(2020, 12, 10), 20),
                   report(D(2021, 4, 10), 40)], ON, ON, milestones=[(D(2021, 3, 31), 50, D(2021, 3, 30))])
    add(PROVINCIAL, "第一轮“回头看”", 1,  # 长期坚持: reported in December's period, not in June's
        lambda i: [*under_way(D(2019, 5, 10), None, "long_term"), report(D(2020, 12, 28))], ON, BEHIND)
    add(PROVINCIAL, "第一轮“回头看”", 2,  # milestone of 2021-05-31 not reported met
        lambda i: under_way(D(2019, 5, 10), D(2021, 12, 31)), ON, BEHIND,
        milestones=[(D(2021, 5, 31), None, None)])
    add(PROVINCIAL, "第一轮“回头看”", 2,  # extension asked for and denied: not 经批准延期
        lambda i: [*under_way(D(2019, 5, 10), D(2021, 12, 31)),
                   *extension(D(2021, 2, 1), D(2021, 2, 10), D(2021, 12, 31), D(2022, 6, 30), approved=False)],
        ON, ON)
    add(PROVINCIAL, "第一轮“回头看”", 2,  # transferred in January 2021: not counted at the end of 2020
        lambda i: under_way(D(2021, 1, 15), D(2021, 12, 31)), None, ON)
    add(PROVINCIAL, "第一轮“回头看”", 1,  # cancelled in 2020: never counted
        lambda i: [*under_way(D(2019, 5, 10), D(2020, 12, 31)),
                   ("cancel", D(2020, 5, 1), "cancelled", {"reason": "不属于督察问题"})], None, None)
    add(PROVINCIAL, "第一轮“回头看”", 1,  # registered, never assigned
        lambda i: [("register", D(2019, 5, 10), "pending", {})], None, None)

    for i, spec in enumerate(out):
        spec.region = TASK_REGIONS[i % len(TASK_REGIONS)]
        spec.leads = (LEAD_OF[spec.region], JOINT_LEAD) if i % 5 == 0 else (LEAD_OF[spec.region],)
    # Three tasks of 湘潭市: in the province's report, never in 株洲市's.
    for i in range(3):
        out.append(Spec(CENTRAL, "第一轮", closed(D(2017, 12, 20), D(2020, 12, 31), D(2019, 3, 1) + i * DAY),
                        {END_2020: DONE, MID_2021: DONE}, region="湘潭市", leads=("湘潭市生态环境局",)))
    return out


# --- writing the ledger in bulk ---------------------------------------------------------------------


def _json(value):
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value.isoformat() if isinstance(value, dt.date) else value


def _deadline_columns(c: dict, day: dt.date, data: dict) -> dict:
    return {"deadline": data["deadline"], "deadline_kind": data["deadline_kind"], "cycle_started_on": day,
            "deadline_text": data.get("deadline_text") or c["deadline_text"]}


# What each action leaves in the task's columns (as operations would): (columns so far, day, data) -> changes.
COLUMN_CHANGES = {
    "assign": lambda c, day, d: {**_deadline_columns(c, day, d), "assigned_on": day,
                                 "original_deadline": d["deadline"]},
    "reopen": lambda c, day, d: {**_deadline_columns(c, day, d), "closed_on": None, "closure_applied_on": None,
                                 "latest_percent": None},
    "sign": lambda c, day, d: {"signed_on": day},
    "approve_plan": lambda c, day, d: {"plan_approved_on": day},
    "report": lambda c, day, d: {"latest_report_on": day,
                                 "latest_percent": c["latest_percent"] if d["percent"] is None else d["percent"]},
    "submit": lambda c, day, d: {"closure_applied_on": day, "latest_report_on": day, "latest_percent": 100},
    "return": lambda c, day, d: {"closure_applied_on": None},
    "close": lambda c, day, d: {"closed_on": day},
    "decide_extension": lambda c, day, d: {"deadline": d["new_deadline"], "extension_count": c["extension_count"] + 1,
                                           "cycle_started_on": day} if d["approved"] else {},
}


def task_columns(spec: Spec) -> dict:
    """The task's columns as its history leaves them (what an import sets)."""
    c = dict(state="pending", deadline=None, deadline_kind="date", deadline_text="", original_deadline=None,
             assigned_on=None, signed_on=None, plan_approved_on=None, latest_report_on=None, latest_percent=None,
             closure_applied_on=None, closed_on=None, extension_count=0, cycle_started_on=None)
    for action, day, to_state, data in spec.events:
        c["state"] = to_state or c["state"]
        change = COLUMN_CHANGES.get(action)
        if change:
            c.update(change(c, day, data))
    return c


@dataclass
class Ledger:
    zhuzhou: Region
    specs: list[Spec]
    ids: list[int]


@dataclass
class Places:
    """The reference rows the ledger points at."""

    regions: dict[str, Region]
    units: dict[str, object]
    office: object
    importer: object  # the membership the history is recorded under
    requester: object  # the lead unit's membership that asked for extensions
    channels: dict[str, Channel]
    rounds: dict[str, Round]


def places(s) -> Places:
    now = NOW
    regions = {r.name: r for r in s.scalars(select(Region).where(Region.level <= 1))}
    for name, parent in REGIONS.items():
        if parent is not None:
            regions[name] = create_region(s, None, now, name, regions[parent])
    office = create_unit(s, None, now, "株洲市生态环境保护督察整改办公室", regions["株洲市"], "coordinating")
    units = {name: create_unit(s, None, now, name, regions[region], "government" if "政府" in name else "department")
             for region, name in LEAD_OF.items()}
    units[JOINT_LEAD] = create_unit(s, None, now, JOINT_LEAD, regions["株洲市"], "department")
    units["湘潭市生态环境局"] = create_unit(s, None, now, "湘潭市生态环境局", regions["湘潭市"], "department")
    importer = create_user(s, None, now, NewUser("zz_import", "导入", "zhenggai-test-1"), office, "supervisor",
                           hash_method="pbkdf2:sha256:1000").memberships[0]
    requester = create_user(s, None, now, NewUser("zz_unit", "责任单位", "zhenggai-test-1"), units[JOINT_LEAD],
                            "unit", hash_method="pbkdf2:sha256:1000").memberships[0]
    rounds = {name: Round(name=name, position=position) for position, name in enumerate(ROUNDS)}
    s.add_all(rounds.values())
    s.flush()
    return Places(regions, units, office, importer, requester, {c.name: c for c in s.scalars(select(Channel))},
                  rounds)


def history_rows(task_id: int, spec: Spec, p: Places) -> tuple[list[dict], list[dict]]:
    """The events of one task, and the extension requests its decisions imply."""
    events, requests, state = [], [], None
    for action, day, to_state, data in spec.events:
        events.append(dict(task_id=task_id, entity="task", entity_id=task_id, action=action,
                           membership_id=p.importer.id, user_id=p.importer.user_id, from_state=state,
                           to_state=to_state, data=_json(data), recorded_at=RECORDED, effective_on=day))
        state = to_state or state
        if action == "decide_extension":
            requests.append(dict(
                task_id=task_id, membership_id=p.requester.id, requested_on=day - 5 * DAY,
                old_deadline=data["old_deadline"], new_deadline=data["new_deadline"], reason="工程量大",
                status="approved" if data["approved"] else "denied", decided_by_id=p.importer.id,
                decided_on=day, decision_note=data["note"]))
    return events, requests


RECORDED = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)  # when the import ran


def build_ledger(s) -> Ledger:
    p = places(s)
    ledger = specs()
    rows = [dict(code=f"ZZ-{n:05d}", channel_id=p.channels[spec.channel].id, round_id=p.rounds[spec.round].id,
                 region_id=p.regions[spec.region].id, kind="反馈问题", title=f"{spec.channel}{spec.round}问题{n}",
                 registered_by_unit_id=p.office.id, assigned_by_unit_id=p.office.id, version=1, **task_columns(spec))
            for n, spec in enumerate(ledger, start=1)]
    # Core inserts (not ORM bulk ones, which go row by row for a versioned table): batched on both databases.
    table = Task.__table__
    ids = list(s.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows))
    events, task_units, milestones, requests = [], [], [], []
    for task_id, spec in zip(ids, ledger, strict=True):
        task_events, task_requests = history_rows(task_id, spec, p)
        events += task_events
        requests += task_requests
        task_units += [dict(task_id=task_id, unit_id=p.units[lead].id, role="lead", position=position)
                       for position, lead in enumerate(spec.leads)]
        milestones += [dict(task_id=task_id, due_on=due_on, description="阶段目标", planned_percent=percent,
                            met_on=met_on) for due_on, percent, met_on in spec.milestones]
    for model, values in ((Event, events), (TaskUnit, task_units), (Milestone, milestones),
                          (ExtensionRequest, requests)):
        s.execute(insert(model.__table__), values)
    s.commit()
    return Ledger(p.regions["株洲市"], ledger, ids)


@pytest.fixture
def ledger(s) -> Ledger:
    return build_ledger(s)


def build(s, region, as_of, by="channel-round"):
    """The report as of a past date three ways, which must agree: every task replayed (as while its spans
    are stale), counted from the kept spans, and task by task from the spans with each cell's ids."""
    time = settings.time_settings(s)
    replayed = reports.Tally(s, region, as_of, by)
    reports.replayed(s, replayed, region, as_of, time)
    periods.catch_up(s, time)
    counted = reports.build(s, region, as_of, by, time)
    report = reports.build(s, region, as_of, by, time, ids=True)
    assert _rows(counted) == _rows(report) == _rows(replayed.report())
    for row in [*report.rows, report.total]:
        assert {cell: len(ids) for cell, ids in row.task_ids.items() if ids} == \
            {cell: n for cell in reports.CELLS if (n := getattr(row, cell))}
    return report


def _rows(report):
    return [row.as_json() for row in [*report.rows, report.total]]


def figures(row) -> tuple[int, int, int, int, int, int]:
    return row.total, row.completed, row.on_schedule, row.behind, row.overdue, row.extended


def by_group(report) -> dict[tuple[str, ...], tuple[int, ...]]:
    return {tuple(row.group): figures(row) for row in report.rows}


def expected(ledger: Ledger, as_of: dt.date, key) -> dict[tuple[str, ...], tuple[int, ...]]:
    """What the ledger was built to give: (共, 已完成, 达到序时进度, 滞后, 其中逾期, 其中经批准延期) per group."""
    counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for spec in ledger.specs:
        if spec.region == "湘潭市" or spec.expect[as_of] is None:
            continue
        bucket, overdue, extended = spec.expect[as_of]
        for group in key(spec):
            counts[group].update(total=1, **{bucket: 1}, overdue=int(overdue), extended=int(extended))
    return {g: tuple(c[k] for k in ("total", "completed", "on_schedule", "behind", "overdue", "extended"))
            for g, c in counts.items()}


def channel_round(spec):
    return [(spec.channel, spec.round)]


# --- the published figures -------------------------------------------------------------------------------

# 004 L158–L160, 截至2020年底: (共, 已完成, 达到序时进度, 滞后, 其中逾期, 其中经批准延期).
PUBLISHED_2020 = {
    (CENTRAL, "第一轮"): (264, 264, 0, 0, 0, 0),
    (CENTRAL, "第一轮“回头看”"): (220, 218, 2, 0, 0, 0),
    (YANGTZE, "2018年"): (2, 2, 0, 0, 0, 0),
    (YANGTZE, "2019年"): (2, 2, 0, 0, 0, 0),
    (PROVINCIAL, "第一轮"): (515, 502, 13, 0, 0, 0),
    (PROVINCIAL, "第一轮“回头看”"): (314, 250, 64, 0, 0, 5),
}
# As of 2021-06-30, from the histories above (worked out by hand from the comments in ``specs``).
MID_2021_FIGURES = {
    (CENTRAL, "第一轮"): (264, 262, 1, 1, 1, 0),  # one reopened and late again, one reopened on time
    (CENTRAL, "第一轮“回头看”"): (220, 219, 1, 0, 0, 1),
    (CENTRAL, "第二轮"): (3, 0, 3, 0, 0, 0),
    (YANGTZE, "2018年"): (2, 2, 0, 0, 0, 0),
    (YANGTZE, "2019年"): (2, 2, 0, 0, 0, 0),
    (PROVINCIAL, "第一轮"): (515, 507, 4, 4, 4, 0),
    (PROVINCIAL, "第一轮“回头看”"): (315, 260, 50, 5, 0, 5),
}


def test_the_ledger_holds_what_it_was_built_to_hold(ledger, s):
    """The builder itself: the published counts and the 2021 figures follow from the specs."""
    assert expected(ledger, END_2020, channel_round) == PUBLISHED_2020
    assert expected(ledger, MID_2021, channel_round) == MID_2021_FIGURES
    assert s.scalar(select(func.count()).select_from(Task)) == len(ledger.specs) == 1327
    closed_tasks = s.scalars(select(Task).where(Task.state == "closed")).all()
    assert all(t.closed_on is not None and t.assigned_on is not None for t in closed_tasks)


def test_zhuzhou_as_of_the_end_of_2020_reproduces_the_published_figures(ledger, s):
    report = build(s, ledger.zhuzhou, END_2020)
    assert by_group(report) == PUBLISHED_2020
    # In the order of the channel list, then of the rounds.
    assert [tuple(r.group) for r in report.rows] == list(PUBLISHED_2020)
    row = report.rows[1]
    assert row.closure_rate == round(218 / 220, 4)
    assert figures(report.total) == (1317, 1238, 79, 0, 0, 5)
    assert sum(by_group(report)[(YANGTZE, r)][1] for r in ("2018年", "2019年")) == 4  # 完成整改 4 个


def test_zhuzhou_as_of_mid_2021(ledger, s):
    report = build(s, ledger.zhuzhou, MID_2021)
    assert by_group(report) == MID_2021_FIGURES
    assert figures(report.total) == (1321, 1252, 59, 10, 5, 6)
    for row in report.rows:
        assert row.total == row.completed + row.on_schedule + row.behind
        assert row.overdue <= row.behind


def test_the_province_includes_every_city(ledger, s):
    province = s.scalar(select(Region).where(Region.level == 0))
    report = build(s, province, END_2020)
    assert by_group(report)[(CENTRAL, "第一轮")] == (267, 267, 0, 0, 0, 0)
    xiangtan = s.scalar(select(Region).where(Region.name == "湘潭市"))
    assert by_group(build(s, xiangtan, END_2020)) == {(CENTRAL, "第一轮"): (3, 3, 0, 0, 0, 0)}


def test_drill_down_ids_match_the_counts(ledger, s):
    report = build(s, ledger.zhuzhou, MID_2021)
    row = reports.find_row(report, [PROVINCIAL, "第一轮"])
    assert len(row.task_ids["overdue"]) == 4
    late = s.scalars(select(Task).where(Task.id.in_(row.task_ids["overdue"]))).all()
    assert {t.deadline for t in late} == {D(2021, 4, 30), D(2021, 3, 31)}
    assert reports.find_row(report, ["合计"]) is report.total
    assert reports.find_row(report, ["不存在"]) is None


# --- by region and by unit ------------------------------------------------------------------------------


def county_of(spec):
    region = "攸县" if spec.region == "皇图岭镇" else spec.region
    return [(reports.LOCAL_LEVEL if region == "株洲市" else region,)]


@pytest.mark.parametrize("as_of", [END_2020, MID_2021])
def test_by_region_has_every_direct_child_with_its_subtree_and_a_local_row(ledger, s, as_of):
    report = build(s, ledger.zhuzhou, as_of, "region")
    want = expected(ledger, as_of, county_of)
    want[("炎陵县",)] = (0, 0, 0, 0, 0, 0)  # a county with no task still has its row
    assert by_group(report) == want
    # In the order the counties were set up, 本级 last.
    assert [r.group[0] for r in report.rows] == ["荷塘区", "芦淞区", "醴陵市", "攸县", "炎陵县", reports.LOCAL_LEVEL]
    assert sum(r.total for r in report.rows) == report.total.total
    for row in report.rows:
        assert row.closure_rate == (round(row.completed / row.total, 4) if row.total else 0.0)


def test_province_by_region_lists_the_14_cities_in_the_usual_order(ledger, s):
    province = s.scalar(select(Region).where(Region.level == 0))
    report = build(s, province, END_2020, "region")
    assert [r.group[0] for r in report.rows] == [
        "长沙市", "株洲市", "湘潭市", "衡阳市", "邵阳市", "岳阳市", "常德市", "张家界市", "益阳市", "郴州市",
        "永州市", "怀化市", "娄底市", "湘西土家族苗族自治州", reports.LOCAL_LEVEL]
    counts = {r.group[0]: r.total for r in report.rows}
    assert counts["株洲市"] == 1317 and counts["湘潭市"] == 3 and counts["长沙市"] == 0


def test_by_unit_counts_a_task_under_each_lead(ledger, s):
    report = build(s, ledger.zhuzhou, END_2020, "unit")
    want = expected(ledger, END_2020, lambda spec: [(lead,) for lead in spec.leads])
    assert by_group(report) == want
    joint = sum(1 for spec in ledger.specs if JOINT_LEAD in spec.leads and spec.expect[END_2020] is not None)
    assert by_group(report)[(JOINT_LEAD,)][0] == joint
    assert sum(r.total for r in report.rows) == report.total.total + joint  # rows add up to more than 共


# --- the command --------------------------------------------------------------------------------------------


def run_report(app, *args):
    # ``report`` is a plain click command: under ``tracker``/``flask`` the FlaskGroup pushes the app
    # context, the test runner's AppGroup does not (see the report: cli.report_command lacks with_appcontext).
    with app.app_context():
        return app.test_cli_runner().invoke(args=["report", *args])


def test_report_command_json(app, ledger):
    result = run_report(app, "--as-of", "2020-12-31", "--by", "channel-round", "--region", "株洲市", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == {"group", "total", "completed", "on_schedule", "behind", "overdue", "extended",
                            "closure_rate"}
    got = {tuple(r["group"]): (r["total"], r["completed"], r["on_schedule"], r["behind"], r["overdue"], r["extended"])
           for r in rows}
    assert got == PUBLISHED_2020
    rates = {tuple(r["group"]): r["closure_rate"] for r in rows}
    assert rates[(CENTRAL, "第一轮“回头看”")] == pytest.approx(218 / 220, abs=1e-4)
    assert rates[(CENTRAL, "第一轮")] == 1


def test_report_command_by_region_and_unit(app, ledger):
    result = run_report(app, "--as-of", "2021-06-30", "--by", "region", "--region", "株洲市", "--json")
    assert result.exit_code == 0, result.output
    got = {tuple(r["group"]): (r["total"], r["completed"], r["on_schedule"], r["behind"], r["overdue"], r["extended"])
           for r in json.loads(result.stdout)}
    want = expected(ledger, MID_2021, county_of)
    want[("炎陵县",)] = (0, 0, 0, 0, 0, 0)
    assert got == want
    result = run_report(app, "--as-of", "2021-06-30", "--by", "unit", "--region", "株洲市", "--json")
    rows = json.loads(result.stdout)
    assert {r["group"][0] for r in rows} == {*LEAD_OF.values(), JOINT_LEAD}


def test_report_command_text(app, ledger):
    result = run_report(app, "--as-of", "2020-12-31", "--region", "株洲市")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "株洲市整改任务序时进度（截至2020年12月31日，按来源和批次）"
    assert lines[1].split("\t") == ["分组", "共", "已完成", "达到序时进度", "滞后", "其中逾期", "其中经批准延期",
                                    "销号率"]
    assert f"{CENTRAL} · 第一轮“回头看”\t220\t218\t2\t0\t0\t0\t99.1%" in lines
    assert lines[-1].startswith("合计\t1317\t1238\t79\t0\t0\t5\t")


@pytest.mark.parametrize(("args", "message"), [
    (["--as-of", "2020-13-01"], "日期“2020-13-01”无效"),
    (["--as-of", "去年底"], "无效"),
    (["--region", "不存在市"], "找不到地区“不存在市”"),
])
def test_report_command_refuses_bad_input(app, args, message):
    result = run_report(app, *args, "--json")
    assert result.exit_code != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_report_command_defaults_to_the_province_today(app, ledger):
    result = run_report(app, "--json")
    assert result.exit_code == 0, result.output
    got = {tuple(r["group"]): r["total"] for r in json.loads(result.stdout)}
    # Today every task of the ledger is counted: 1,327 built, less the cancelled, merged and pending ones.
    assert sum(got.values()) == 1327 - 3


# --- as of a date, through the workflow -----------------------------------------------------------------------


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI).astimezone(dt.UTC)


def test_a_task_declined_and_assigned_again_counts_from_its_first_assignment(s, world):
    task = world.assigned(deadline=D(2021, 6, 30), now=at(D(2020, 5, 6)))
    perform(s, task, "decline", world.m["unit_yh"], at(D(2021, 1, 10)), reason="不属本单位职责")
    perform(s, task, "assign", world.m["sup_xt"], at(D(2021, 2, 1)), leads=[world.units["湘乡市人民政府"].id],
            deadline=D(2021, 9, 30))
    s.commit()
    xiangtan = world.regions["湘潭市"]
    assert figures(build(s, xiangtan, END_2020).total) == (1, 0, 1, 0, 0, 0)
    assert figures(build(s, xiangtan, D(2021, 1, 20)).total) == (0, 0, 0, 0, 0, 0)
    assert figures(build(s, xiangtan, MID_2021).total) == (1, 0, 1, 0, 0, 0)


def test_split_children_count_and_the_parent_does_not(s, world, now):
    parent = world.register(region="湘潭市", title="湘江流域养殖污染")
    perform(s, parent, "split", world.m["sup_xt"], now, children=[
        {"region_id": world.regions["雨湖区"].id, "leads": [world.units["雨湖区人民政府"].id],
         "deadline": D(2026, 6, 30)},
        {"region_id": world.regions["湘乡市"].id, "leads": [world.units["湘乡市人民政府"].id],
         "deadline": D(2026, 2, 27) + dt.timedelta(days=3)},
    ])
    s.commit()
    report = build(s, world.regions["湘潭市"], D(2026, 3, 2), "region")
    assert figures(report.total) == (2, 0, 2, 0, 0, 0)
    assert by_group(report)[("雨湖区",)][0] == 1 and by_group(report)[("湘乡市",)][0] == 1
    assert by_group(report)[(reports.LOCAL_LEVEL,)][0] == 0
    # The parent's own deadline-less row never shows; its children are late together in April.
    assert figures(build(s, world.regions["湘潭市"], D(2026, 4, 1)).total) == (2, 0, 1, 1, 1, 0)
