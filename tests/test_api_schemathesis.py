"""Schemathesis against ``/api/v1/openapi.json``, in process on the WSGI app, on seeded data, with a
supervisor token and a unit token.

Positive cases (data that fits the document) have their references mapped onto the seeded ledger — the
task in the path is one the token's membership may act on now, ``version`` is the task's, unit and region
ids exist — while every other value stays as generated. Every response must match the document (status,
content type, headers, schema), no call may answer 5xx, authentication must be enforced on every
operation, and every operation must have answered 2xx at least once. Negative cases (data that does not
fit) must be refused with a documented 4xx.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from tests.conftest import fake_file
from tests.test_api import LATER, TODAY
from tracker import archive, settings, tokens
from tracker.models import Evidence, LoginAttempt, Milestone, Task
from tracker.operations import perform
from tracker.permissions import can, in_scope
from tracker.timeutil import utcnow
from tracker.workflow import TRANSITIONS, Party

POSITIVE_EXAMPLES = 5
NEGATIVE_EXAMPLES = 3
REFUSED_EXAMPLES = 2  # positive cases of operations the role never takes: they only have to answer 403 right
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CENTRAL = "中央生态环境保护督察"
PROVINCIAL = "省级生态环境保护督察"


@dataclass
class Seeded:
    """The ledger the cases are mapped onto: tasks prepared for each action, and ids that exist."""

    pools: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    units: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    channel: int = 0
    round: int = 0
    evidence: list[int] = field(default_factory=list)
    archives: list[int] = field(default_factory=list)


def _task(world, state: str, *, channel=PROVINCIAL, region="雨湖区", lead="雨湖区人民政府", title="涓水直排口",
          now=None):
    task = world.assigned(title=title, region=region, lead=lead, channel=world.channels[channel], deadline=LATER,
                          now=now or utcnow())
    if state != "assigned":
        world.advance(task, state, now=now or utcnow(), files=[fake_file()])
    return task


def seed(app, s, world) -> Seeded:
    """A few tasks in every state each action starts from, for the city supervisor and the county unit."""
    seeded = Seeded(units={n: u.id for n, u in world.units.items()},
                    regions={n: r.id for n, r in world.regions.items()},
                    channel=world.channels[PROVINCIAL].id, round=world.rounds["第一轮"].id)
    now = utcnow()
    pools = seeded.pools
    for i in range(3):
        pools["assign"].append(world.register(title=f"待交办问题{i}", now=now).id)
        pools["split"].append(world.register(title=f"长株潭“绿心”{i}", region="湘潭市", now=now).id)
        for action in ("sign", "decline", "reassign", "cancel", "merge", "change_deadline", "confirm_measure"):
            pools[action].append(_task(world, "assigned", title=f"{action}{i}").id)
        pools["submit_plan"].append(_task(world, "signed").id)
        planned = _task(world, "signed", title=f"方案待审{i}")
        perform(s, planned, "submit_plan", world.m["unit_yh"], now, target="达标", measures="建设处理站",
                milestones=[{"due_on": LATER - dt.timedelta(days=10), "description": "完成主体工程"}])
        pools["approve_plan" if i % 2 else "return_plan"].append(planned.id)
        for action in ("report", "submit", "request_extension", "edit"):
            pools[action].append(_task(world, "rectifying", title=f"{action}{i}").id)
        extension = _task(world, "rectifying", title=f"延期{i}")
        perform(s, extension, "request_extension", world.m["unit_yh"], now, reason="汛期",
                new_deadline=LATER + dt.timedelta(days=60))
        pools["decide_extension"].append(extension.id)
        for action in ("close", "return"):
            pools[action].append(_task(world, "verifying", title=f"{action}{i}").id)
        pools["pre_verify"].append(_task(world, "verifying", channel=CENTRAL, title=f"中央{i}").id)
        closed = _task(world, "verifying", title=f"已销号{i}")
        perform(s, closed, "close", world.m["sup_xt"], now, opinion="验收合格")
        pools["reopen"].append(closed.id)
    s.commit()
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    for evidence in s.scalars(select(Evidence)):
        (folder / evidence.stored_name).write_bytes(b"photo")
        seeded.evidence.append(evidence.id)
    month = (TODAY.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    for name in ("湘潭市", "雨湖区"):
        made = archive.archive_region(s, world.regions[name], month, now, Path(app.config["LEDGER_FOLDER"]),
                                      settings.time_settings(s))
        seeded.archives.append(made.id)
    s.commit()
    return seeded


# --- mapping positive cases onto the seeded ledger ------------------------------------------------------


class Mapper:
    def __init__(self, s, seeded: Seeded, membership):
        self.s, self.seeded, self.m = s, seeded, membership
        self.turn = itertools.count()

    def action(self, case) -> str | None:
        parts = case.operation.path.rstrip("/").split("/")
        if "actions" in parts:
            return parts[-1].replace("-", "_")
        if case.method == "PATCH":
            return "edit"
        return None

    def may_act(self, operation) -> bool:
        """Whether this membership's role ever takes the operation's action (else it is only checked for 403s)."""
        path = operation.path.rstrip("/")
        if operation.method.upper() == "GET":
            return True
        if "/actions/" not in path:  # registering and editing are supervisors'
            return self.m.role == "supervisor"
        mine = {"supervisor": {Party.supervisor}, "unit": {Party.lead, Party.participant}}.get(self.m.role, set())
        return bool(TRANSITIONS[path.split("/")[-1].replace("-", "_")].parties & mine)

    def task_for(self, action: str | None) -> Task | None:
        """A task of the action's pool this membership may take the action on now (else one it can read)."""
        self.s.expire_all()
        for task_id in self.seeded.pools.get(action or "", []):
            task = self.s.get(Task, task_id)
            if in_scope(self.m, task) and (action == "edit" or can(self.m, action, task)):
                return task
        return self.s.get(Task, self.seeded.pools["report"][0])  # readable by both tokens

    def __call__(self, case) -> None:
        action = self.action(case)
        n = next(self.turn)
        params = case.path_parameters or {}
        if "task_id" in params:
            task = self.task_for(action)
            if task is not None:
                params["task_id"] = task.id
                if isinstance(case.body, dict):
                    case.body["version"] = task.version
                    self.body(case, action, task, n)
        if "evidence_id" in params:
            params["evidence_id"] = self.seeded.evidence[n % len(self.seeded.evidence)]
        if "archive_id" in params:
            params["archive_id"] = self.seeded.archives[n % len(self.seeded.archives)]
        if case.method == "POST" and case.operation.path.endswith("/tasks"):
            self.register(case.body)
        self.query(case)

    def query(self, case) -> None:
        """Filters naming a region keep to the token's own region (others are rightly 404 or empty)."""
        if case.query and "region" in case.query:
            case.query["region"] = self.m.unit.region_id

    def register(self, body: dict) -> None:
        body.update(channel_id=self.seeded.channel, round_id=self.seeded.round, region_id=self.seeded.regions["雨湖区"],
                    code="")
        if body.get("kind") != "交办信访件":
            body.pop("complainant", None)

    def body(self, case, action: str | None, task: Task, n: int) -> None:
        body, units = case.body, self.seeded.units
        deadline = (LATER + dt.timedelta(days=1 + n)).isoformat()
        if "leads" in body:
            body["leads"] = [units["雨湖区人民政府"]]
        if body.get("participants"):
            body["participants"] = [units["湘潭市生态环境局"]]
        if "deadline" in body or action in ("assign", "reopen", "change_deadline"):
            body.update(deadline=deadline, deadline_kind="date", deadline_text="")
        fixes = {
            "split": lambda: body.update(children=[
                {"region_id": self.seeded.regions[r], "leads": [units[lead]], "deadline": deadline}
                for r, lead in (("雨湖区", "雨湖区人民政府"), ("湘乡市", "湘乡市人民政府"))]),
            "merge": lambda: body.update(merge_into=self.seeded.pools["edit"][0]),
            "request_extension": lambda: body.update(
                new_deadline=(task.deadline + dt.timedelta(days=30 + n)).isoformat()),
            "decide_extension": lambda: body.update(note=body.get("note") or "理由充分"),
            "close": lambda: body.update(closed_on=None, verifier_unit_id=None, checklist=[]),
            "confirm_measure": lambda: body.update(level=(2, 3, 4, 7, 9)[n % 5], doc_no=f"湘突改办〔2026〕{n}号",
                                                   decided_on=None),
            "report": lambda: body.update(milestones_met=[m.id for m in task.milestones if m.met_on is None][:1]),
            "submit_plan": lambda: body.update(milestones=[]),
        }
        if action in fixes:
            fixes[action]()
        if case.media_type == "multipart/form-data":
            body["files"] = body.get("files") or [b"evidence"]
            body = {k: v for k, v in body.items() if v is not None}
            case.body = body


# --- the run ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    failures: list[str] = field(default_factory=list)


def exercise(operation, mode: GenerationMode, secret: str, outcome: Outcome, mapper: Mapper | None,
             examples: int) -> None:
    headers = {"Authorization": f"Bearer {secret}"}
    checks = CHECKS + ([ignored_auth] if mode == GenerationMode.POSITIVE else [negative_data_rejection])

    @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        if mapper is not None:
            mapper(case)
        case.headers["Authorization"] = headers["Authorization"]  # never a generated one
        response = case.call(headers=headers)
        outcome.statuses[operation.label].add(response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (Exception, FailureGroup) as exc:  # collected, not raised: every operation runs, none is shrunk
            outcome.failures.append(f"{operation.label} ({mode.value}): {exc}")

    run()


@pytest.fixture
def seeded_app(app, s, world):
    app.config["API_MAX_FAILURES"] = 10**6  # ignored_auth sends bad tokens on purpose; throttling is tested elsewhere
    return app, seed(app, s, world)


def test_every_operation_conforms_to_the_document_and_answers_2xx_somewhere(seeded_app, s, world):
    app, seeded = seeded_app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35
    outcome = Outcome()
    for username in ("sup_xt", "unit_yh"):
        m = world.m[username]
        secret = tokens.create_token(s, m, utcnow(), m.user, m, f"schemathesis {username}").secret
        s.commit()
        mapper = Mapper(s, seeded, m)
        for operation in operations:
            examples = POSITIVE_EXAMPLES if mapper.may_act(operation) else REFUSED_EXAMPLES
            exercise(operation, GenerationMode.POSITIVE, secret, outcome, mapper, examples)
            if username == "sup_xt":
                exercise(operation, GenerationMode.NEGATIVE, secret, outcome, None, NEGATIVE_EXAMPLES)
    assert outcome.failures == [], "\n\n".join(outcome.failures[:5])
    never = sorted(op.label for op in operations if not any(200 <= c < 300 for c in outcome.statuses[op.label]))
    assert never == [], {label: sorted(outcome.statuses[label]) for label in never}
    assert not any(code >= 500 for codes in outcome.statuses.values() for code in codes)
    assert s.scalar(select(Milestone.id).limit(1)) is not None  # the seeded plans were there to be reported on
    # ignored_auth did send calls without a valid token (each a failed token check), and all were refused
    assert s.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == tokens.FAILED_TOKEN_USERNAME)) > len(operations)
