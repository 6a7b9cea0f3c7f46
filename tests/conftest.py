"""Fixtures: a migrated database (SQLite, or PostgreSQL when DATABASE_URL says so), the app, a
client, a fixed clock and a small world of regions, units and users named after the seeds.

The database is migrated once per run (which also tests the migrations from empty); after each
test every table is emptied and the reference rows the migrations made are put back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from config import TestConfig
from tests.browser import CHROMIUM_ARGS, chromium_path
from tracker import backup, create_app, migrate
from tracker.accounts import NewUser, create_region, create_unit, create_user
from tracker.models import Base, Channel, Membership, Region, Round, Task, Unit, User
from tracker.operations import TaskFields, perform, register_task
from tracker.storage import StoredFile
from tracker.timeutil import SHANGHAI

PASSWORD = "zhenggai-test-1"
# 2026-03-02 (a Monday) 09:00 in Asia/Shanghai: the frozen "now" of the tests.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql")) else None


@contextlib.contextmanager
def migrated_database(kind_url: str | None, folder):
    """A new database migrated to head, dropped afterwards: SQLite in ``folder``, or, when ``kind_url``
    names a PostgreSQL server, a database of its own on that server."""
    if kind_url is None or make_url(kind_url).get_backend_name() == "sqlite":
        url = f"sqlite:///{folder / f'test-{uuid.uuid4().hex[:8]}.sqlite3'}"
        _upgrade(url)
        yield url
        return
    parsed = make_url(TestConfig(kind_url, "/tmp").SQLALCHEMY_DATABASE_URI)
    name = f"tracker_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        _upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _upgrade(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A fresh database for this run, migrated to head."""
    with migrated_database(_postgres_url(), tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def reference_rows(database_url):
    """The rows the migrations create (湖南省, 14 市州, channels), to restore after each test."""
    engine = create_engine(database_url)
    rows = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            found = [dict(r._mapping) for r in conn.execute(select(table))]
            if found:
                rows[table.name] = found
    engine.dispose()
    return rows


def _reset(engine, reference_rows) -> None:
    tables = Base.metadata.sorted_tables
    with engine.begin() as conn:
        backup.clear_tables(conn, tables)
        for table in tables:
            if table.name in reference_rows:
                conn.execute(insert(table), reference_rows[table.name])
        backup.reset_sequences(conn, tables)


@pytest.fixture
def app(database_url, reference_rows, tmp_path):
    """The app. No app context is held open: each client request gets its own, as in production."""
    application = create_app(TestConfig(database_url, str(tmp_path / "instance")))
    yield application
    _reset(application.extensions["tracker.engine"], reference_rows)
    application.extensions["tracker.engine"].dispose()


@pytest.fixture
def s(app):
    """A database session of the test's own (requests use theirs: expire or re-read to see their writes)."""
    session = app.extensions["tracker.sessionmaker"]()
    yield session
    session.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def now():
    return NOW


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    """Regions, units and one user per role and level, named after the seeds."""

    s: object
    regions: dict[str, Region] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    m: dict[str, Membership] = field(default_factory=dict)  # username -> membership
    channels: dict[str, Channel] = field(default_factory=dict)
    rounds: dict[str, Round] = field(default_factory=dict)

    def user(self, username: str) -> User:
        return self.m[username].user

    def register(self, title="双马填埋场渗滤液处理不到位", region="雨湖区", actor="sup_xt", channel=None,
                 round_name="第一轮“回头看”", now=NOW, **extra) -> Task:
        fields = TaskFields(
            title=title, channel_id=(channel or self.channels["省级生态环境保护督察"]).id,
            round_id=self.rounds[round_name].id, region_id=self.regions[region].id, **extra,
        )
        return register_task(self.s, self.m[actor], now, fields)

    def assigned(self, lead="雨湖区人民政府", participants=(), deadline=dt.date(2026, 12, 31), actor="sup_xt",
                 now=NOW, **kw) -> Task:
        task = self.register(actor=actor, now=now, **kw)
        perform(self.s, task, "assign", self.m[actor], now, leads=[self.units[lead].id],
                participants=[self.units[p].id for p in participants], deadline=deadline)
        return task

    def advance(self, task: Task, to: str, lead_user="unit_yh", sup="sup_xt", now=NOW, files=None) -> Task:
        """Walk a task forward through the ordinary path up to state ``to``."""
        steps = {
            "signed": [("sign", lead_user, {})],
            "rectifying": [("sign", lead_user, {}),
                           ("submit_plan", lead_user, {"target": "渗滤液达标排放", "measures": "建设处理站"}),
                           ("approve_plan", sup, {})],
        }
        steps["verifying"] = steps["rectifying"] + [
            ("submit", lead_user, {"text": "已完成整改", "files": files or [fake_file()]})]
        steps["closed"] = steps["verifying"] + [("close", "sup_hn", {"opinion": "验收合格"})]
        for action, who, params in steps[to]:
            if task.state == to:
                break
            perform(self.s, task, action, self.m[who], now, **params)
        return task


def fake_file(kind="after", name="整改后现场照片.jpg", content=b"photo") -> StoredFile:
    """An evidence record as the storage layer hands it over (for operation-level tests)."""
    return StoredFile(kind, name, uuid.uuid4().hex, len(content), hashlib.sha256(content).hexdigest(), "image/jpeg")


def build_world(s, now=NOW, hash_method="pbkdf2:sha256:1000") -> World:
    w = World(s)
    province = s.scalar(select(Region).where(Region.level == 0))
    w.regions["湖南省"] = province
    for city in s.scalars(select(Region).where(Region.level == 1)):
        w.regions[city.name] = city
    for name, parent in [("雨湖区", "湘潭市"), ("湘乡市", "湘潭市"), ("湘潭高新区", "湘潭市"),
                         ("攸县", "株洲市"), ("平江县", "岳阳市")]:
        w.regions[name] = create_region(s, None, now, name, w.regions[parent], is_zone=name.endswith("高新区"))
    w.regions["浯口镇"] = create_region(s, None, now, "浯口镇", w.regions["平江县"])
    units = [
        ("湖南省生态环境保护督察工作领导小组办公室", "湖南省", "coordinating", ["省督察办"]),
        ("湖南省生态环境厅", "湖南省", "department", ["省生态环境厅"]),
        ("湖南省水利厅", "湖南省", "department", ["省水利厅"]),
        ("湘潭市突出环境问题整改办公室", "湘潭市", "coordinating", ["湘潭市突改办"]),
        ("湘潭市生态环境局", "湘潭市", "department", []),
        ("株洲市生态环境保护督察整改办公室", "株洲市", "coordinating", []),
        ("雨湖区突出环境问题整改办公室", "雨湖区", "coordinating", []),
        ("雨湖区人民政府", "雨湖区", "government", []),
        ("湘乡市人民政府", "湘乡市", "government", []),
        ("攸县人民政府", "攸县", "government", []),
        ("平江县人民政府", "平江县", "government", []),
        ("湖南省环境监测中心站", "湖南省", "third_party", []),
    ]
    for name, region, kind, aliases in units:
        w.units[name] = create_unit(s, None, now, name, w.regions[region], kind, aliases)
    people = [
        ("admin_hn", "湖南省生态环境保护督察工作领导小组办公室", "admin"),
        ("sup_hn", "湖南省生态环境保护督察工作领导小组办公室", "supervisor"),
        ("sup_xt", "湘潭市突出环境问题整改办公室", "supervisor"),
        ("sup_zz", "株洲市生态环境保护督察整改办公室", "supervisor"),
        ("sup_yh", "雨湖区突出环境问题整改办公室", "supervisor"),
        ("admin_zz", "株洲市生态环境保护督察整改办公室", "admin"),
        ("viewer_xt", "湘潭市突出环境问题整改办公室", "viewer"),
        ("unit_yh", "雨湖区人民政府", "unit"),
        ("unit_xx", "湘乡市人民政府", "unit"),
        ("unit_yx", "攸县人民政府", "unit"),
        ("unit_sthj", "湘潭市生态环境局", "unit"),
    ]
    for username, unit, role in people:
        user = create_user(s, None, now, NewUser(username, username, PASSWORD, f"{username}@example.cn"),
                           w.units[unit], role, hash_method=hash_method)
        w.m[username] = user.memberships[0]
    for channel in s.scalars(select(Channel)):
        w.channels[channel.name] = channel
    for i, name in enumerate(["第一轮", "第一轮“回头看”", "第二轮", "2019年"]):
        w.rounds[name] = Round(name=name, position=i)
        s.add(w.rounds[name])
    s.flush()
    return w


@pytest.fixture
def world(s):
    w = build_world(s)
    s.commit()
    return w


def login(client, username: str, password: str = PASSWORD):
    """Log in through the real form (CSRF token included)."""
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
