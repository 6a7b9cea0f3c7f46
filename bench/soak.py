"""Soak: the production shape on loopback under bounded mixed traffic for a while (10 minutes by
default), then four checks — issue 9, figures in docs/RELIABILITY.md ("Soak"):

- **zero errors**: no 5xx, no unexpected status, no connection error or timeout, no worker restarted,
  no ERROR or traceback in gunicorn's or the scheduler's log;
- **flat memory**: the RSS of every gunicorn worker and of the scheduler, sampled every few seconds,
  grows by at most ``--rss-growth-mb`` over the second half of the run (first, middle, last and max
  are printed);
- **no mail lost or duplicated**: every outbox row ends up sent, and the SMTP server received each row's
  Message-ID exactly once and nothing else;
- **every write kept once**: the progress reports, extension requests and refusals the app answered as
  done are in the database, each once.

What runs: a PostgreSQL database of its own (dropped and created anew, migrated, the demo data loaded;
dropped again at the end unless ``--keep``), ``--workers`` gunicorn workers with 2 threads each as
docs/DEPLOY.md runs them, the scheduler process (``tracker scheduler run``'s runner and lock, with every
job on a short interval: mail every ``--mail-seconds``, the escalation scan and the monthly archive every
``--scan-seconds``) and a real SMTP server (aiosmtpd) counting what it receives. The load driver is a
pool of threads, each logged in as a demo user through the login form: supervisors, a viewer and a unit
reading 总览, 待办, filtered lists, reports, messages, CSV export and task pages; an API client with a
Bearer token reading lists, tasks and the report; and workflow threads that, on tasks of their own,
report progress (web, with a photo now and then, and API), request an extension (API) and have a
supervisor refuse it (web) — so data changes and mails go out all the time. Every request knows the
status it must get. The run is bounded in time (``--minutes``) and in requests (``--max-requests``).

    python -m bench.soak [--database-url postgresql://postgres@127.0.0.1:5432/tracker_soak] [--minutes 10]
    make soak [SOAK_MINUTES=10]

Exit status 0 when every check passes, 1 otherwise; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import email
import html
import http.client
import itertools
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from config import Config
from tracker import create_app, db, demo, migrate, outbox, scheduler, tokens
from tracker.models import ExtensionRequest, Membership, OutboxMail, ProgressReport, Task, User
from tracker.permissions import Party, can, parties, visible_tasks
from tracker.timeutil import local_date, utcnow

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tracker_soak"
SECRET = "soak-secret"
MAIL_FROM = "湖南省整改台账 <zhenggai@hn.example.cn>"
USER_AGENT = "zhenggai-soak"
HTTP_TIMEOUT = 60.0  # seconds for one request; longer counts as a timeout error
PHOTO_EVERY = 10  # every n-th web progress report carries a photo (multipart upload)
# The readers: (username, kind) — each logs in through the form; "api" reads with a Bearer token instead.
READERS = [("sheng_duban", "supervisor"), ("xiangtan_lingdao", "viewer"), ("yuhu_zhengfu", "unit"),
           ("sheng_duban", "api"), ("xiangtan_duban", "supervisor")]
OTHER_JOB_SECONDS = 120  # the cleanup jobs, which have nothing to do here


# --- the database and the plan ------------------------------------------------------------------------------


def _psycopg_url(url: str):
    parsed = make_url(Config({"DATABASE_URL": url, "SECRET_KEY": SECRET}, instance_path="/tmp").SQLALCHEMY_DATABASE_URI)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("soak: --database-url 须为 PostgreSQL（postgresql://…）")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", parsed.database or ""):
        raise SystemExit(f"soak: 数据库名“{parsed.database}”只能由小写字母、数字和下划线组成")
    return parsed


def recreate_database(url: str, drop_only: bool = False) -> None:
    """Drop the soak's database (and create it anew unless ``drop_only``) on its server."""
    parsed = _psycopg_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            if not drop_only:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


@dataclass
class WorkTask:
    """A task the workflow threads drive: its lead unit's user reports and asks for more time, a
    supervisor refuses (no approval: the deadline, and so the cycle, stay as they are)."""

    task_id: int
    code: str
    unit: str
    supervisor: str
    unit_token: str


@dataclass
class Reader:
    username: str
    kind: str
    urls: list[str]
    token: str = ""


@dataclass
class Plan:
    work: list[WorkTask]
    readers: list[Reader]
    today: dt.date


def _single_membership(s, username: str) -> Membership:
    found = s.scalars(select(Membership).join(Membership.user).where(
        Membership.active.is_(True), User.username == username)).all()
    if len(found) != 1:
        raise SystemExit(f"soak: 演示用户 {username} 应恰有一个身份")
    return found[0]


def _token(s, membership: Membership, now: dt.datetime) -> str:
    return tokens.create_token(s, membership, now, membership.user, membership, "浸泡测试").secret


def choose_work(s, now: dt.datetime, today: dt.date) -> list[WorkTask]:
    """Tasks in 整改中 with a deadline at least two weeks ahead whose lead unit has a user of one
    membership who may report and request an extension, and a supervisor of one membership over them."""
    memberships = s.scalars(select(Membership).where(Membership.active.is_(True)).order_by(Membership.id)).all()
    per_user = Counter(m.user_id for m in memberships)
    single = [m for m in memberships if per_user[m.user_id] == 1 and m.user.active]
    work, token_of = [], {}
    for task in s.scalars(select(Task).where(Task.state == "rectifying").order_by(Task.id)):
        if task.deadline is None or task.deadline < today + dt.timedelta(days=14):
            continue
        units = [m for m in single if m.role == "unit" and can(m, "request_extension", task) and can(m, "report", task)]
        sups = [m for m in single if m.role == "supervisor" and Party.supervisor in parties(m, task)]
        if not units or not sups:
            continue
        unit = units[0]
        sup = max(sups, key=lambda m: (m.unit.region.level, -m.id))  # the nearest supervisor
        if unit.id not in token_of:
            token_of[unit.id] = _token(s, unit, now)
        work.append(WorkTask(task.id, task.code, unit.user.username, sup.user.username, token_of[unit.id]))
    return work


def reader_urls(s, membership: Membership, kind: str, today: dt.date) -> list[str]:
    """What a reader of this kind opens, in turn: the main pages, filtered lists and task pages."""
    visible = s.scalars(visible_tasks(membership).with_only_columns(Task.id).order_by(Task.id)).all()
    pages = [f"/tasks/{i}" for i in visible[:: max(1, len(visible) // 12)]]
    if kind == "api":
        first = pages[0].rsplit("/", 1)[1]
        return ["/api/v1/me", "/api/v1/tasks?limit=50", "/api/v1/tasks?state=rectifying&sort=deadline&limit=20",
                "/api/v1/tasks?q=%E5%A1%AB%E5%9F%8B%E5%9C%BA", f"/api/v1/tasks/{first}",
                f"/api/v1/tasks/{first}/reports", f"/api/v1/report?as_of={today.isoformat()}&by=region",
                "/api/v1/proposals", "/api/v1/regions?level=1", "/api/v1/channels",
                *[f"/api/v1{p}" for p in pages[1:6]]]
    region = membership.unit.region_id
    urls = ["/todo", "/tasks?sort=deadline", "/tasks?state=rectifying&sort=deadline", f"/tasks?region={region}",
            "/tasks?q=%E6%B1%A1%E6%B0%B4&sort=updated", "/tasks?schedule=behind", "/messages", "/static/app.css",
            *pages]
    if kind in ("supervisor", "viewer"):
        urls += ["/dashboard", f"/reports?as_of={today.isoformat()}&by=region",
                 f"/reports?as_of={today.isoformat()}&by=unit", "/tasks/export.csv?state=rectifying",
                 "/tasks?state=closed&sort=code", f"/dashboard?region={region}"]
    return urls


def prepare(url: str, instance: Path, log: Callable[[str], None]) -> Plan:
    """A new database with the demo, and what the traffic is about."""
    recreate_database(url)
    app = create_app(Config({"DATABASE_URL": url, "SECRET_KEY": SECRET}, instance_path=str(instance)))
    engine = app.extensions["tracker.engine"]
    started = time.monotonic()
    migrate.upgrade(engine)
    now = utcnow()
    today = local_date(now)
    with app.app_context():
        s = db.session()
        log(demo.load(s, now, hash_method=app.config["PASSWORD_HASH_METHOD"],
                      upload_folder=Path(app.config["UPLOAD_FOLDER"])))
        s.commit()
        work = choose_work(s, now, today)
        readers = []
        for username, kind in READERS:
            membership = _single_membership(s, username)
            reader = Reader(username, kind, reader_urls(s, membership, kind, today))
            if kind == "api":
                reader.token = _token(s, membership, now)
            readers.append(reader)
        s.commit()
    engine.dispose()
    if not work:
        raise SystemExit("soak: 演示数据中没有可用于办理的整改中任务")
    log(f"数据库已就绪（{time.monotonic() - started:.0f}秒）：办理{len(work)}项任务（"
        + "、".join(w.code for w in work) + "）")
    return Plan(work, readers, today)


# --- the SMTP server --------------------------------------------------------------------------------------


class Sink:
    """Counts the Message-IDs it receives (aiosmtpd handler)."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.recipients = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.lock:
            self.ids[str(message["Message-ID"] or "")] += 1
            self.recipients += len(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the scheduler with short intervals -----------------------------------------------------------------------


def soak_jobs(mail_seconds: float, scan_seconds: float) -> list[scheduler.JobSpec]:
    """Every job of the real schedule, on an interval instead of its time of day, every day."""
    seconds = {"mail_flush": mail_seconds, "daily_scan": scan_seconds, "monthly_ledger": scan_seconds,
               "background_jobs": 5}
    return [dataclasses.replace(spec, trigger=IntervalTrigger(seconds=seconds.get(spec.name, OTHER_JOB_SECONDS)),
                                workdays_only=False, day_rule=None,
                                misfire_grace_time=max(5, int(seconds.get(spec.name, OTHER_JOB_SECONDS))))
            for spec in scheduler.JOBS]


def scheduler_main(argv: list[str]) -> int:
    """``python -m bench.soak scheduler``: the scheduler process of the soak (environment as the app's)."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak scheduler")
    parser.add_argument("--mail-seconds", type=float, default=5)
    parser.add_argument("--scan-seconds", type=float, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = create_app()
    scheduler.run(app, jobs=soak_jobs(args.mail_seconds, args.scan_seconds))
    return 0


# --- processes and their memory ------------------------------------------------------------------------------


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


@dataclass
class MemorySeries:
    name: str
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, kB)

    def figures(self) -> dict:
        """First, middle, last and max RSS, and the growth over the second half of the run: the median of
        the last fifth of the samples less the median of the middle fifth (40–60 %) — memory that stays
        counts, one large response freed again does not."""
        values = [kb for _, kb in self.samples]
        n = len(values)
        middle = statistics.median(values[int(n * 0.4):max(int(n * 0.6), int(n * 0.4) + 1)])
        end = statistics.median(values[int(n * 0.8):])
        return {"name": self.name, "samples": n, "first_mb": values[0] / 1024, "middle_mb": middle / 1024,
                "last_mb": values[-1] / 1024, "max_mb": max(values) / 1024,
                "growth_last_half_mb": (end - middle) / 1024,
                "slope_last_half_mb_per_hour": _slope(self.samples[n // 2:]) * 3600 / 1024}


def _slope(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2:
        return 0.0
    xs, ys = [t for t, _ in samples], [kb for _, kb in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


class Sampler(threading.Thread):
    """RSS of the gunicorn workers and the scheduler every ``every`` seconds."""

    def __init__(self, master: int, scheduler_pid: int, every: float):
        super().__init__(name="soak-rss", daemon=True)
        self.master, self.scheduler_pid, self.every = master, scheduler_pid, every
        self.series: dict[int, MemorySeries] = {}
        self.workers_seen: set[int] = set()
        self.first_workers: set[int] = set()
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.load: list[float] = []  # the machine's 1-minute load average at each sample

    def sample(self) -> None:
        now = time.monotonic() - self.started
        with contextlib.suppress(OSError):
            self.load.append(float(Path("/proc/loadavg").read_text().split()[0]))
        workers = children_of(self.master)
        if not self.first_workers:
            self.first_workers = set(workers)
        self.workers_seen.update(workers)
        for pid in [*workers, self.scheduler_pid]:
            kb = rss_kb(pid)
            if kb is not None:
                name = "scheduler" if pid == self.scheduler_pid else f"worker {pid}"
                self.series.setdefault(pid, MemorySeries(name)).samples.append((now, kb))

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()

    @property
    def restarted(self) -> int:
        return len(self.workers_seen - self.first_workers)


# --- the load driver -----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    status: int  # 0: connection error or timeout
    seconds: float
    ok: bool
    detail: str = ""


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.done: Counter[str] = Counter()  # writes the app answered as done, by kind

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def count(self) -> int:
        with self.lock:
            return len(self.outcomes)


class Client:
    """One user's HTTP client: a new connection per request (as a browser behind nginx may), cookies kept."""

    def __init__(self, port: int, stats: Stats, token: str = ""):
        self.port, self.stats, self.token = port, stats, token
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, kind: str, expect: tuple[int, ...] = (200,), body: bytes | None = None,
                content_type: str = "") -> tuple[int, str]:
        headers = {"User-Agent": USER_AGENT, "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for cookie in response.headers.get_all("Set-Cookie") or ():
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        except (OSError, http.client.HTTPException) as exc:
            self.stats.add(Outcome(kind, 0, time.perf_counter() - started, False, f"{method} {path}: {exc!r}"))
            return 0, ""
        finally:
            conn.close()
        seconds = time.perf_counter() - started
        page = data.decode("utf-8", "replace")
        ok = response.status in expect
        detail = "" if ok else f"{method} {path} → {response.status}: {_snippet(page)}"
        self.stats.add(Outcome(kind, response.status, seconds, ok, detail))
        return response.status, page

    def login(self, username: str) -> None:
        _status, page = self.request("GET", "/login", "login")
        token = _csrf(page)
        form = urllib.parse.urlencode({"username": username, "password": demo.DEMO_PASSWORD, "csrf_token": token})
        status, _ = self.request("POST", "/login", "login", (302,), form.encode(), "application/x-www-form-urlencoded")
        if status != 302:
            raise SystemExit(f"soak: {username} 无法登录（{status}）")

    def act(self, page: str, path: str, action: str, fields: dict[str, str], kind: str,
            files: list[tuple[str, str, bytes]] = ()) -> bool:
        """Fill and send an action's form of the task page ``page`` as a browser would; True when done (302)."""
        form = action_form(page, action)
        if form is None:
            self.stats.add(Outcome(kind, 0, 0.0, False, f"{path}：页面上没有“{action}”表单"))
            return False
        prefix, hidden = form
        data = {**hidden, **{prefix + k: v for k, v in fields.items()}}
        if files:
            body, content_type = _multipart(data, [(prefix + name, *rest) for name, *rest in files])
        else:
            body, content_type = urllib.parse.urlencode(data).encode(), "application/x-www-form-urlencoded"
        return self.request("POST", f"{path}/act/{action}", kind, (302,), body, content_type)[0] == 302

    def post_json(self, path: str, payload: dict, kind: str, expect=(200,)) -> tuple[int, str]:
        return self.request("POST", path, kind, expect, json.dumps(payload).encode(), "application/json")


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    return found.group(1) if found else ""


def action_form(page: str, action: str) -> tuple[str, dict[str, str]] | None:
    """The hidden fields (CSRF token, the task's version) of an action's form on a task page, and the
    prefix of its field names; None when the page offers no such form."""
    start = page.find(f'/act/{action}"')
    if start < 0:
        return None
    hidden, prefix = {}, ""
    for tag in re.findall(r"<input[^>]*>", page[start:page.find("</form>", start)]):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            hidden[name.group(1)] = html.unescape(value.group(1)) if value else ""
            if name.group(1).endswith("version"):
                prefix = name.group(1)[: -len("version")]
    return prefix, hidden


def _snippet(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())[:300]


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: image/png\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Driver:
    """The threads of the traffic, until ``deadline`` or ``max_requests``."""

    def __init__(self, port: int, plan: Plan, stats: Stats, workflow_threads: int, think: float,
                 deadline: float, max_requests: int):
        self.port, self.plan, self.stats, self.think = port, plan, stats, think
        self.deadline, self.max_requests = deadline, max_requests
        self.workflow_threads = max(1, min(workflow_threads, len(plan.work)))
        self.failures: list[str] = []

    def going(self) -> bool:
        return time.monotonic() < self.deadline and self.stats.count() < self.max_requests

    def run(self) -> None:
        threads = [threading.Thread(target=self._guard, args=(self.read, reader), name=f"read-{reader.username}")
                   for reader in self.plan.readers]
        for i in range(self.workflow_threads):
            mine = self.plan.work[i:: self.workflow_threads]
            threads.append(threading.Thread(target=self._guard, args=(self.workflow, mine), name=f"work-{i}"))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _guard(self, target, arg) -> None:
        try:
            target(arg)
        except SystemExit as exc:
            self.failures.append(str(exc))
        except Exception as exc:  # a bug of the driver, not of the app: reported, fails the run
            self.failures.append(f"{threading.current_thread().name}: {exc!r}")

    def read(self, reader: Reader) -> None:
        client = Client(self.port, self.stats, reader.token)
        if reader.kind != "api":
            client.login(reader.username)
        kind = "api GET" if reader.kind == "api" else "page"
        urls = itertools.cycle(random.Random(reader.username + reader.kind).sample(reader.urls, len(reader.urls)))
        while self.going():
            client.request("GET", next(urls), kind)

    def workflow(self, work: list[WorkTask]) -> None:
        units: dict[str, Client] = {}
        sups: dict[str, Client] = {}
        api: dict[str, Client] = {}
        rng = random.Random(len(work))
        for n in itertools.count():
            if n and not self.going():  # the first cycle always runs whole: every kind of write happens
                return
            w = work[n % len(work)]
            unit = units.get(w.unit) or units.setdefault(w.unit, self._logged_in(w.unit))
            sup = sups.get(w.supervisor) or sups.setdefault(w.supervisor, self._logged_in(w.supervisor))
            token = api.setdefault(w.unit_token, Client(self.port, self.stats, w.unit_token))
            self.cycle(w, n, unit, sup, token, rng)

    def _logged_in(self, username: str) -> Client:
        client = Client(self.port, self.stats)
        client.login(username)
        return client

    def cycle(self, w: WorkTask, n: int, unit: Client, sup: Client, api: Client, rng: random.Random) -> None:
        """报送进展 (web) → 申请延期 (API) → 不同意延期 (web) → 报送进展 (API), reading the task before each."""
        page = f"/tasks/{w.task_id}"
        files = [("files", f"现场照片-{n}.png", demo.png_image(tuple(rng.randrange(256) for _ in range(3))))] \
            if n % PHOTO_EVERY == 0 else []
        if unit.act(unit.request("GET", page, "task page")[1], page, "report", {
                "text": f"第{n}次报送：按整改方案推进，浸泡测试", "percent": str(n % 100), "evidence_kind": "after"},
                "POST report", files):
            self.stats.done["report"] += 1
        self.pause()
        status, body = api.request("GET", f"/api/v1{page}", "api GET")
        if status == 200:
            task = json.loads(body)
            new_deadline = dt.date.fromisoformat(task["deadline"]) + dt.timedelta(days=30)
            status, _ = api.post_json(f"/api/v1{page}/actions/request-extension", {
                "version": task["version"], "new_deadline": new_deadline.isoformat(),
                "reason": f"第{n}次申请：汛期影响施工"}, "api POST request-extension")
            if status == 200:
                self.stats.done["request_extension"] += 1
        self.pause()
        if sup.act(sup.request("GET", page, "task page")[1], page, "decide_extension", {
                "decision": "deny", "note": "理由不充分，请按原时限完成"}, "POST decide_extension"):
            self.stats.done["decide_extension"] += 1
        self.pause()
        status, body = api.request("GET", f"/api/v1{page}", "api GET")
        if status == 200:
            status, _ = api.post_json(f"/api/v1{page}/actions/report", {
                "version": json.loads(body)["version"], "text": f"第{n}次报送（接口）", "percent": n % 100},
                "api POST report")
            if status == 200:
                self.stats.done["report"] += 1
        self.pause()

    def pause(self) -> None:
        if self.think:
            time.sleep(self.think)


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    database_url: str = DEFAULT_URL
    seconds: float = 600
    workers: int = 4
    workflow_threads: int = 2
    think: float = 1.0
    sample_seconds: float = 5
    mail_seconds: float = 5
    scan_seconds: float = 60
    rss_growth_mb: float = 10
    max_requests: int = 1_000_000
    drain_seconds: float = 120
    keep: bool = False


class Soak:
    def __init__(self, settings: Settings, folder: Path, log: Callable[[str], None] = print):
        self.st, self.folder, self.log = settings, folder, log
        self.instance = folder / "instance"
        self.port, self.smtp_port = free_port(), free_port()
        self.sink = Sink()
        self.stats = Stats()
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "TRACKER_", "DATABASE_URL"))}
        return {**keep, "DATABASE_URL": self.st.database_url, "SECRET_KEY": SECRET,
                "TRACKER_INSTANCE": str(self.instance), "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(self.smtp_port),
                "MAIL_FROM": MAIL_FROM, "BASE_URL": f"http://127.0.0.1:{self.port}", "PYTHONPATH": str(ROOT)}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        logfile = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=self.env(), cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT,
                                   process_group=0)
        logfile.close()
        self.processes[name] = process
        return process

    def stop(self, name: str, grace: float = 60) -> None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_until_serving(self, seconds: float = 120) -> None:
        """Until /healthz answers and every worker has been forked."""
        web = self.processes["web"]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise SystemExit("soak: gunicorn 已退出，见 " + str(self.folder / "web.log"))
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(children_of(web.pid)) == self.st.workers:
                    return
            time.sleep(0.5)
        raise SystemExit("soak: gunicorn 未能启动")

    def run(self) -> dict:
        st = self.st
        plan = prepare(st.database_url, self.instance, self.log)
        engine = create_engine(_psycopg_url(st.database_url))
        before = self.db_counts(engine, plan)
        controller = Controller(self.sink, hostname="127.0.0.1", port=self.smtp_port)
        controller.start()
        try:
            self.start("web", [sys.executable, "-m", "gunicorn", "--workers", str(st.workers), "--threads", "2",
                               "--bind", f"127.0.0.1:{self.port}", "--timeout", "120", "--log-level", "info",
                               "tracker:create_app()"])
            sched = self.start("scheduler", [sys.executable, "-m", "bench.soak", "scheduler", "--mail-seconds",
                                             str(st.mail_seconds), "--scan-seconds", str(st.scan_seconds)])
            self.wait_until_serving()
            self.log(f"gunicorn {st.workers}×2线程于127.0.0.1:{self.port}，调度进程，SMTP于127.0.0.1:{self.smtp_port}；"
                     f"运行{st.seconds:.0f}秒")
            sampler = Sampler(self.processes["web"].pid, sched.pid, st.sample_seconds)
            sampler.start()
            started = time.monotonic()
            driver = Driver(self.port, plan, self.stats, st.workflow_threads, st.think, started + st.seconds,
                            st.max_requests)
            progress = threading.Thread(target=self._progress, args=(started, driver), daemon=True)
            progress.start()
            driver.run()
            elapsed = time.monotonic() - started
            sampler.stop()
            self.stop("web")
            drained = self.drain(engine)
            self.stop("scheduler")
            final_flush = self.final_flush()
        finally:
            for name in list(self.processes):
                self.stop(name, grace=20)
            controller.stop()
        after = self.db_counts(engine, plan)
        mail = self.mail_check(engine)
        engine.dispose()
        result = self.figures(plan, elapsed, sampler, driver, before, after, mail, drained, final_flush)
        return result

    def _progress(self, started: float, driver: Driver) -> None:
        every = max(30.0, min(60.0, self.st.seconds / 10))
        while driver.going():
            time.sleep(every)
            if driver.going():
                bad = sum(1 for o in list(self.stats.outcomes) if not o.ok)
                self.log(f"  {time.monotonic() - started:4.0f}秒：{self.stats.count()}个请求，错误{bad}个，"
                         f"已收邮件{sum(self.sink.ids.values())}封")

    def db_counts(self, engine, plan: Plan) -> dict[str, int]:
        ids = [w.task_id for w in plan.work]
        with engine.connect() as conn:
            return {
                "report": conn.scalar(select(func.count()).select_from(ProgressReport).where(
                    ProgressReport.task_id.in_(ids), ProgressReport.purpose == "progress")),
                "request_extension": conn.scalar(select(func.count()).select_from(ExtensionRequest).where(
                    ExtensionRequest.task_id.in_(ids))),
                "decide_extension": conn.scalar(select(func.count()).select_from(ExtensionRequest).where(
                    ExtensionRequest.task_id.in_(ids), ExtensionRequest.status == "denied")),
            }

    def drain(self, engine) -> float:
        """Wait (the scheduler still running) until the outbox has nothing pending; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < self.st.drain_seconds:
            with engine.connect() as conn:
                pending = conn.scalar(select(func.count()).select_from(OutboxMail).where(
                    OutboxMail.status == outbox.PENDING))
            if pending == 0:
                return time.monotonic() - started
            time.sleep(1)
        return time.monotonic() - started

    def final_flush(self) -> int:
        """Mail queued by a scan in the scheduler's last seconds, due now: delivered as `tracker mail flush`
        would (a mail put back for a retry stays pending, and fails the check)."""
        app = create_app(Config(self.env(), instance_path=str(self.instance)))
        with app.app_context():
            s = db.session()
            report = outbox.deliver_due(s, utcnow(), app.config)
            s.commit()
        app.extensions["tracker.engine"].dispose()
        return report.sent

    def mail_check(self, engine) -> dict:
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxMail.message_id, OutboxMail.status)).all()
        statuses = Counter(status for _, status in rows)
        ids = {mid for mid, _ in rows}
        received = dict(self.sink.ids)
        return {
            "outbox_rows": len(rows), "sent": statuses.get(outbox.SENT, 0),
            "pending": statuses.get(outbox.PENDING, 0), "failed": statuses.get(outbox.FAILED, 0),
            "received_messages": sum(received.values()), "recipients": self.sink.recipients,
            "lost": len(ids - set(received)),
            "duplicated": sum(1 for mid, n in received.items() if n > 1),
            "unknown": sum(1 for mid in received if mid not in ids),
        }

    def log_errors(self) -> dict[str, list[str]]:
        found = {}
        for name in ("web", "scheduler"):
            lines = (self.folder / f"{name}.log").read_text(errors="replace").splitlines()
            found[name] = [line for line in lines if re.search(r"\bERROR\b|\[ERROR\]|Traceback|CRITICAL", line)]
        return found

    def figures(self, plan, elapsed, sampler, driver, before, after, mail, drained, final_flush) -> dict:
        outcomes = self.stats.outcomes
        by_kind: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in outcomes:
            by_kind[outcome.kind].append(outcome)
        errors = [o for o in outcomes if not o.ok]
        memory = [series.figures() for series in sampler.series.values() if len(series.samples) >= 2]
        log_errors = self.log_errors()
        written = {k: after[k] - before[k] for k in after}
        result = {
            "seconds": elapsed, "requests": len(outcomes), "rps": len(outcomes) / elapsed if elapsed else 0,
            "latency": {kind: _latency(items) for kind, items in sorted(by_kind.items())},
            "errors": {"total": len(errors), "5xx": sum(1 for o in errors if o.status >= 500),
                       "connection": sum(1 for o in errors if o.status == 0),
                       "unexpected_status": sum(1 for o in errors if 0 < o.status < 500),
                       "samples": [o.detail for o in errors[:10]], "driver": driver.failures,
                       "workers_restarted": sampler.restarted,
                       "log_lines": {k: len(v) for k, v in log_errors.items()},
                       "log_samples": [line for lines in log_errors.values() for line in lines[:5]]},
            "memory": memory,
            "machine": {"cpus": os.cpu_count(), "load_mean": statistics.fmean(sampler.load) if sampler.load else 0,
                        "load_max": max(sampler.load, default=0)},
            "mail": {**mail, "drain_seconds": drained, "final_flush": final_flush},
            "writes": {"answered_done": dict(self.stats.done), "in_database": written},
            "settings": dataclasses.asdict(self.st) | {"workers": self.st.workers, "tasks": len(plan.work)},
        }
        result["checks"] = checks(result, self.st.rss_growth_mb)
        return result


def _latency(items: list[Outcome]) -> dict:
    seconds = sorted(o.seconds for o in items)

    def q(p: float) -> float:
        return seconds[min(len(seconds) - 1, int(p * len(seconds)))] * 1000

    return {"n": len(items), "p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99), "max_ms": seconds[-1] * 1000}


def checks(r: dict, bound_mb: float) -> dict[str, bool]:
    e, m, w = r["errors"], r["mail"], r["writes"]
    done = w["answered_done"]
    return {
        "zero errors": (e["total"] == 0 and not e["driver"] and e["workers_restarted"] == 0
                        and not any(e["log_lines"].values())),
        "flat memory": bool(r["memory"]) and all(s["growth_last_half_mb"] <= bound_mb for s in r["memory"]),
        "no mail lost or duplicated": (m["sent"] > 0 and m["sent"] == m["outbox_rows"] and m["pending"] == 0
                                       and m["failed"] == 0 and m["lost"] == 0 and m["duplicated"] == 0
                                       and m["unknown"] == 0 and m["received_messages"] == m["outbox_rows"]),
        "every write kept once": (done.get("report", 0) > 0 and all(
            w["in_database"][k] == done.get(k, 0) for k in ("report", "request_extension", "decide_extension"))),
    }


def describe(r: dict) -> list[str]:
    e, m, st = r["errors"], r["mail"], r["settings"]
    lines = [f"运行{r['seconds']:.0f}秒：{r['requests']}个请求，{r['rps']:.1f} req/s（gunicorn {st['workers']}×2线程，"
             f"办理{st['tasks']}项任务；邮件每{st['mail_seconds']:g}秒，扫描和月度归档每{st['scan_seconds']:g}秒）；"
             f"机器{r['machine']['cpus']}核，平均负载{r['machine']['load_mean']:.1f}（最高{r['machine']['load_max']:.1f}）"]
    for kind, lat in r["latency"].items():
        lines.append(f"  {kind:<28} {lat['n']:>7}次  p50 {lat['p50_ms']:6.0f} ms  p95 {lat['p95_ms']:6.0f} ms  "
                     f"p99 {lat['p99_ms']:6.0f} ms  max {lat['max_ms']:6.0f} ms")
    lines.append(f"错误：{e['total']}（5xx {e['5xx']}，连接错误或超时 {e['connection']}，"
                 f"意外状态 {e['unexpected_status']}）；工作进程重启 {e['workers_restarted']}；"
                 f"日志中的错误行 web {e['log_lines']['web']}，scheduler {e['log_lines']['scheduler']}")
    lines += [f"  {sample}" for sample in e["samples"] + e["driver"] + e["log_samples"]]
    lines.append("内存（RSS，MB）：首次 / 中点 / 最后 / 最大 / 后半程增长 / 后半程斜率(MB/h)")
    for s in r["memory"]:
        lines.append(f"  {s['name']:<14} {s['first_mb']:6.1f} / {s['middle_mb']:6.1f} / {s['last_mb']:6.1f} / "
                     f"{s['max_mb']:6.1f} / {s['growth_last_half_mb']:+5.1f} / {s['slope_last_half_mb_per_hour']:+6.1f}"
                     f"（{s['samples']}次采样）")
    lines.append(f"邮件：发件箱{m['outbox_rows']}封，已发送{m['sent']}，待发送{m['pending']}，失败{m['failed']}；SMTP收到"
                 f"{m['received_messages']}封（{m['recipients']}个收件人），丢失{m['lost']}，重复{m['duplicated']}，"
                 f"来历不明{m['unknown']}；停止后{m['drain_seconds']:.0f}秒内发完，最后补发{m['final_flush']}封")
    w = r["writes"]
    lines.append("写入：应用答复已办理 " + json.dumps(w["answered_done"], ensure_ascii=False)
                 + "，数据库中新增 " + json.dumps(w["in_database"], ensure_ascii=False))
    for name, ok in r["checks"].items():
        lines.append(f"{'通过' if ok else '未通过'}：{name}")
    return lines


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL; the database is dropped and made anew")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seconds", type=float, help="the run's length in seconds (instead of --minutes)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (2 threads each)")
    parser.add_argument("--workflow-threads", type=int, default=2)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a workflow thread's writes")
    parser.add_argument("--sample-seconds", type=float, default=5, help="RSS sampled this often")
    parser.add_argument("--mail-seconds", type=float, default=5)
    parser.add_argument("--scan-seconds", type=float, default=60)
    parser.add_argument("--rss-growth-mb", type=float, default=10, help="largest growth allowed over the second half")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--drain-seconds", type=float, default=120)
    parser.add_argument("--keep", action="store_true", help="keep the database and the work folder")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    settings = Settings(args.database_url, args.seconds if args.seconds else args.minutes * 60, args.workers,
                        args.workflow_threads, args.think, args.sample_seconds, args.mail_seconds, args.scan_seconds,
                        args.rss_growth_mb, args.max_requests, args.drain_seconds, args.keep)
    return settings, args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["scheduler"]:
        return scheduler_main(argv[1:])
    settings, args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="zhenggai-soak-"))
    try:
        result = Soak(settings, folder).run()
    finally:
        if not settings.keep:
            recreate_database(settings.database_url, drop_only=True)
    for line in describe(result):
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1))
    if settings.keep:
        print(f"保留：数据库 {settings.database_url}，目录 {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
