"""Every benchmark of DESIGN §9 against a generated ledger (``bench.generate``), each figure printed
beside the floor it is measured against in the same run:

- pages: the task list (a county's subtree and a state, sorted by deadline: the first page and one
  reached by keyset 90 % down; the whole province likewise), the task page and 待办, through the real
  app in-process (p50/p95); floors: the same SQL statements sent alone to the database, and a bare
  route of the same app (logged in, no page work);
- reports: 总览 (the dashboard), today's 序时进度 report and one as of a past date; floors: the same SQL
  alone, and for today one aggregate ``GROUP BY`` over the values kept on the tasks;
- scan: the escalation scan with 0, 100 and 10,000 tasks crossing a threshold (each in a transaction
  rolled back after); floor: the candidate query alone; the table's size is printed beside it;
- export: the monthly ledger of ~10⁵ rows (.xlsx and .csv), time and peak memory in a process of its
  own; floor: XlsxWriter writing the same rows from a list in memory;
- import: a 10⁴-row Excel ledger (rolled back after); floor: openpyxl reading the same file alone;
- throughput: several gunicorn workers under wrk on loopback; floor: the bare route.

    python -m bench.run --database-url postgresql://postgres@127.0.0.1:5432/tracker_bench [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import openpyxl
import xlsxwriter
from sqlalchemy import Engine, case, func, select, text, update
from sqlalchemy.orm import Session

from bench.app import BARE_PATH, create_app
from bench.generate import BENCH_PASSWORD
from bench.measure import Figure, Floor, Stats, captured_queries, replay, timed
from config import Config
from tracker import calendars, escalation, intake
from tracker.models import Channel, Event, Membership, Region, Round, Task, TaskUnit, Unit, User
from tracker.queries import SORTS, TaskFilter, encode_cursor, filtered_tasks
from tracker.timeutil import local_date, utcnow

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("pages", "reports", "scan", "export", "import", "throughput")
CROSSINGS = (0, 100, 10_000)
EXPORT_ROWS = 100_000
IMPORT_ROWS = 10_000
USER_AGENT = "zhenggai-bench"


@dataclass
class Bench:
    engine: Engine
    url: str
    app: object
    repeat: int
    workdir: Path
    wrk_seconds: int
    today: dt.date = field(default_factory=lambda: local_date(utcnow()))
    figures: list[Figure] = field(default_factory=list)
    log: Callable[[str], None] = print

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        self.log(figure.describe())

    def session(self) -> Session:
        return Session(self.engine)


# --- who and what the pages are about ------------------------------------------------------------------


def supervisor(s: Session, region: Region) -> Membership:
    """A bench supervisor of the office of ``region``."""
    return s.scalars(select(Membership).join(Unit).join(User).where(
        Unit.region_id == region.id, Membership.role == "supervisor", Unit.kind == "coordinating",
        User.username.startswith("bench_")).order_by(Membership.id)).first()


def province(s: Session) -> Region:
    return s.scalar(select(Region).where(Region.level == 0))


def busiest_county(s: Session) -> Region:
    """The county-level region holding the most tasks (ties: the lower id)."""
    row = s.execute(select(Task.region_id, func.count()).join(Region, Task.region_id == Region.id)
                    .where(Region.level == 2).group_by(Task.region_id)
                    .order_by(func.count().desc(), Task.region_id).limit(1)).first()
    return s.get(Region, row[0])


def cursor_far_down(s: Session, membership: Membership, f: TaskFilter, fraction: float = 0.9) -> str | None:
    """The keyset cursor of the row ``fraction`` of the way down the filtered list."""
    base = filtered_tasks(s, membership, f)
    total = s.scalar(base.with_only_columns(func.count()).order_by(None)) or 0
    if total < 2:
        return None
    _label, key, descending = SORTS[f.sort]
    order = (key.desc(), Task.id.desc()) if descending else (key.asc(), Task.id.asc())
    row = s.execute(base.with_only_columns(key, Task.id).order_by(*order)
                    .offset(int(total * fraction)).limit(1)).first()
    return encode_cursor([row[0], row[1]])


def login(app, username: str):
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    answer = client.post("/login", data={"username": username, "password": BENCH_PASSWORD, "csrf_token": token})
    if answer.status_code != 302:
        raise SystemExit(f"bench: cannot log in as {username} ({answer.status_code})")
    return client


def getter(client, urls: list[str]) -> Callable[[], None]:
    turn = itertools.cycle(urls)

    def get() -> None:
        url = next(turn)
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"bench: {url} answered {response.status_code}")
        response.close()

    return get


def page_figure(b: Bench, group: str, name: str, client, urls: list[str], bare: Stats | None,
                repeat: int | None = None, extra: list[Floor] = (), warmup: int = 1) -> Figure:
    """A page's p50/p95 through the app, and the same statements replayed alone."""
    repeat = repeat or b.repeat
    stats = timed(getter(client, urls), repeat, warmup)
    queries = []
    for url in urls[:5]:
        with captured_queries(b.engine) as found:
            getter(client, [url])()
        queries.append(found)
    replays = [replay(b.engine, q) for q in queries]
    turn = itertools.cycle(replays)
    alone = timed(lambda: next(turn)(), repeat, warmup)
    floors = [Floor("同样的SQL单独执行", alone.p50), *extra]
    if bare is not None:
        floors.append(Floor("空路由", bare.p50))
    figure = Figure(group, name, stats, floors=floors, note=f"{len(queries[0])}条SQL")
    b.add(figure)
    return figure


# --- pages -----------------------------------------------------------------------------------------------


def bench_pages(b: Bench) -> None:
    with b.session() as s:
        root = province(s)
        boss = supervisor(s, root)
        county = busiest_county(s)
        local = supervisor(s, county)
        county_filter = TaskFilter(region_id=county.id, states=["rectifying"], sort="deadline")
        deep_county = cursor_far_down(s, boss, county_filter)
        deep_all = cursor_far_down(s, boss, TaskFilter(sort="deadline"))
        sample = s.scalars(select(Task.id).where(Task.region_id == county.id).order_by(Task.id)).all()
        task_ids = sample[:: max(1, len(sample) // 20)][:20]
        usernames = (boss.user.username, local.user.username)
    client = login(b.app, usernames[0])
    bare = timed(getter(client, [BARE_PATH]), b.repeat)
    b.add(Figure("pages", "空路由（登录后，无页面工作）", bare))
    county_url = f"/tasks?region={county.id}&state=rectifying&sort=deadline"
    page_figure(b, "pages", f"任务列表 {county.name}+整改中 首页", client, [county_url], bare)
    if deep_county:
        page_figure(b, "pages", f"任务列表 {county.name}+整改中 90%处(keyset)", client,
                    [f"{county_url}&after={deep_county}"], bare)
    page_figure(b, "pages", "任务列表 全省 首页", client, ["/tasks?sort=deadline"], bare)
    if deep_all:
        page_figure(b, "pages", "任务列表 全省 90%处(keyset)", client, [f"/tasks?sort=deadline&after={deep_all}"], bare)
    # One warm-up per task: a page's templates are compiled on their first use in a process (once per
    # worker), and a task in another state uses other action forms.
    page_figure(b, "pages", "任务页（20个任务轮换）", client, [f"/tasks/{i}" for i in task_ids], bare,
                warmup=len(task_ids))
    page_figure(b, "pages", "待办（全省督办）", client, ["/todo"], bare)
    page_figure(b, "pages", f"待办（{county.name}督办）", login(b.app, usernames[1]), ["/todo"], None)


# --- reports -----------------------------------------------------------------------------------------------


def aggregate_floor(b: Bench, region: Region) -> Stats:
    """Today's report as one GROUP BY over the values kept on the tasks (序时进度, 逾期, 延期)."""
    counted = Task.schedule.is_not(None)
    query = (select(Task.channel_id, Task.round_id, func.count(),
                    func.sum(case((Task.schedule == "completed", 1), else_=0)),
                    func.sum(case((Task.schedule == "on_schedule", 1), else_=0)),
                    func.sum(case((Task.schedule == "behind", 1), else_=0)),
                    func.sum(case((Task.overdue.is_(True), 1), else_=0)),
                    func.sum(case((Task.extension_count > 0, 1), else_=0)))
             .join(Region, Task.region_id == Region.id).where(Region.path.startswith(region.path), counted)
             .group_by(Task.channel_id, Task.round_id))

    def run() -> None:
        with b.engine.connect() as conn:
            conn.execute(query).all()

    return timed(run, b.repeat)


def bench_reports(b: Bench) -> None:
    with b.session() as s:
        root = province(s)
        username = supervisor(s, root).user.username
    client = login(b.app, username)
    bare = timed(getter(client, [BARE_PATH]), b.repeat)
    today = b.today.isoformat()
    repeat = max(3, b.repeat // 3)
    aggregate = Floor("一条GROUP BY聚合", aggregate_floor(b, root).p50)
    if "dashboard" in b.app.blueprints:
        page_figure(b, "reports", "总览（全省）", client, ["/dashboard"], bare, repeat=repeat, extra=[aggregate])
    for by, label in (("channel-round", "按来源批次"), ("region", "按地区"), ("unit", "按责任单位")):
        page_figure(b, "reports", f"今日报告 全省 {label}", client, [f"/reports?as_of={today}&by={by}"], bare,
                    repeat=repeat, extra=[aggregate])
    # A past date: the kept spans of 序时进度 containing it (the generator computed them all), over the
    # subtree closest to a province's 10⁵ tasks (DESIGN §9) and over the whole ledger.
    with b.session() as s:
        region, n = export_region(s, b.today)
        total = s.scalar(select(func.count(Task.id)))
    past = (b.today.replace(day=1) - dt.timedelta(days=1)).replace(year=b.today.year - 1)
    for where, label in ((f"region={region.id}&", f"{region.name}（{n}项）"), ("", f"全省（{total}项）")):
        for by, grouping in (("channel-round", "按来源批次"), ("unit", "按责任单位")):
            page_figure(b, "reports", f"往日报告 {label}{grouping}（截至{past}）", client,
                        [f"/reports?{where}as_of={past.isoformat()}&by={by}"], bare, repeat=repeat)


# --- escalation scan -------------------------------------------------------------------------------------


def make_crossings(s: Session, n: int, today: dt.date) -> int:
    """Move ``n`` on-schedule tasks' deadlines to the last working day before today (one working day
    overdue: 函告 falls due, 预警 with it) and mark them for the scan, as a deadline change would."""
    if n == 0:
        return 0
    calendar = calendars.load(s)
    yesterday = today - dt.timedelta(days=1)
    while not calendar.is_workday(yesterday):
        yesterday -= dt.timedelta(days=1)
    ids = s.scalars(select(Task.id).where(Task.state == "rectifying", Task.schedule == "on_schedule",
                                          Task.deadline >= today + dt.timedelta(days=60))
                    .order_by(Task.id).limit(n)).all()
    s.execute(update(Task).where(Task.id.in_(ids)).values(deadline=yesterday, next_check_on=today,
                                                          escalation_check_on=today)
              .execution_options(synchronize_session=False))
    return len(ids)


def catch_up(b: Bench) -> None:
    """Today's scan, as the scheduler runs it at 08:30 (committed): the ledger was generated on some
    day, and is brought to "after today's scan" so that every benchmark starts from the same place."""
    with b.session() as s:
        total = s.scalar(select(func.count()).select_from(Task))
        started = time.perf_counter()
        summary = escalation.scan(s, b.today, utcnow())
        s.commit()
    b.add(Figure("scan", "今日首次扫描（补齐今日，已提交）", value=time.perf_counter() - started, unit="s",
                 note=f"候选{summary.candidates}项，表中{total}项任务"))


def bench_scan(b: Bench) -> None:
    now = utcnow()
    with b.session() as s:
        total = s.scalar(select(func.count()).select_from(Task))
    due = (select(Task.id).where((Task.next_check_on <= b.today) | (Task.escalation_check_on <= b.today))
           .order_by(Task.id).limit(1000))

    def candidates() -> None:
        with b.engine.connect() as conn:
            conn.execute(due).all()

    floor = Floor("候选查询单独执行", timed(candidates, b.repeat).p50)
    for n in CROSSINGS:
        samples, made, found = [], 0, 0
        for _ in range({0: max(3, b.repeat // 3), 100: 3}.get(n, 1)):
            with b.session() as s:
                made = make_crossings(s, n, b.today)
                started = time.perf_counter()
                found = escalation.scan(s, b.today, now).candidates
                samples.append(time.perf_counter() - started)
                s.rollback()
        b.add(Figure("scan", f"扫描：{made}项跨越阈值", Stats(samples), floors=[floor],
                     note=f"候选{found}项，表中{total}项任务"))


# --- ledger export and import -----------------------------------------------------------------------------


def export_region(s: Session, today: dt.date) -> tuple[Region, int]:
    """The region (the province or a 市州) whose subtree's ledger is closest to ``EXPORT_ROWS`` rows."""
    counts = []
    for region in s.scalars(select(Region).where(Region.level <= 1)):
        n = s.scalar(select(func.count()).select_from(Task).join(Region, Task.region_id == Region.id)
                     .where(Region.path.startswith(region.path), Task.assigned_on <= today)) or 0
        counts.append((abs(n - EXPORT_ROWS), region.id, n))
    _gap, region_id, n = min(counts)
    return s.get(Region, region_id), n


def child(b: Bench, *args: str) -> dict:
    answer = subprocess.run([sys.executable, "-m", "bench.child", *args], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"bench.child {args[0]} failed:\n{answer.stderr[-3000:]}")
    return json.loads(answer.stdout.strip().splitlines()[-1])


def bench_export(b: Bench) -> None:
    with b.session() as s:
        region, _n = export_region(s, b.today)
    month = b.today.strftime("%Y-%m")
    xlsx, csv_path, floor_path = (b.workdir / name for name in ("ledger.xlsx", "ledger.csv", "floor.xlsx"))
    base = child(b, "baseline", "--database-url", b.url)
    exported = child(b, "export", "--database-url", b.url, "--region", str(region.id), "--month", month,
                     "--out", str(xlsx))
    as_csv = child(b, "export", "--database-url", b.url, "--region", str(region.id), "--month", month,
                   "--out", str(csv_path))
    floor = child(b, "xlsx-floor", "--csv", str(csv_path), "--out", str(floor_path))
    rows = exported["rows"]
    b.add(Figure("export", f"台账导出 xlsx（{region.name}，{rows}行）", value=exported["seconds"], unit="s",
                 floors=[Floor("XlsxWriter从内存列表写同样的行", floor["seconds"])],
                 note=f"{xlsx.stat().st_size / 1e6:.1f} MB，工作表 {'、'.join(exported['sheets'])}；"
                      f"CPU {exported['cpu_seconds']:.1f} s，写入进程 {exported['children_cpu_seconds']:.1f} s"
                      f"（下限 {floor['cpu_seconds']:.1f} s）"))
    b.add(Figure("export", f"台账导出 csv（{region.name}，{as_csv['rows']}行）", value=as_csv["seconds"], unit="s",
                 floors=[Floor("XlsxWriter从内存列表写同样的行", floor["seconds"])],
                 note=f"CPU {as_csv['cpu_seconds']:.1f} s"))
    b.add(Figure("export", "台账导出 xlsx 峰值内存", value=exported["peak_mb"], unit="MB",
                 floors=[Floor("XlsxWriter从内存列表（含列表）", floor["peak_mb"]),
                         Floor("进程基线（导入应用并连接）", base["peak_mb"])],
                 note=f"写入进程另计，至多 {exported['children_peak_mb']:.1f} MB"))


def import_file(s: Session, path: Path, rows: int) -> int:
    """An Excel ledger of ``rows`` tasks as a government sheet writes it (a title row, then headers), made
    from tasks of the ledger under new 问题编号, so that the import creates every one of them."""
    headers = ["问题编号", "问题来源", "批次/轮次", "问题类型", "问题名称", "问题描述", "所在地区", "问题领域",
               "责任单位（牵头）", "时限要求", "交办日期", "整改状态", "最新进展", "进展日期", "完成进度", "销号日期"]
    states = {"rectifying": "整改中", "verifying": "待验收", "closed": "已销号"}
    tasks = s.scalars(select(Task).where(Task.state.in_(list(states)), Task.deadline.is_not(None))
                      .order_by(Task.id).limit(rows)).all()
    names = dict(s.execute(select(Region.id, Region.name)).all())
    channels = dict(s.execute(select(Channel.id, Channel.name)).all())
    rounds = dict(s.execute(select(Round.id, Round.name)).all())
    leads: dict[int, list[str]] = {}
    for task_id, unit in s.execute(select(TaskUnit.task_id, Unit.name).join(Unit).where(
            TaskUnit.task_id.in_([t.id for t in tasks]), TaskUnit.role == "lead").order_by(TaskUnit.position)):
        leads.setdefault(task_id, []).append(unit)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("整改台账")
    sheet.write_row(0, 0, ["导入测试：突出生态环境问题整改台账"])
    sheet.write_row(1, 0, headers)
    for r, t in enumerate(tasks, start=2):
        sheet.write_row(r, 0, [f"{t.code}-导入", channels[t.channel_id], rounds[t.round_id], t.kind, t.title,
                               t.description, names[t.region_id], t.category, "、".join(leads.get(t.id, [])),
                               t.deadline_text, t.assigned_on.isoformat(), states[t.state], "按计划推进",
                               (t.latest_report_on or t.assigned_on).isoformat(), t.latest_percent or "",
                               t.closed_on.isoformat() if t.closed_on else ""])
    book.close()
    return len(tasks)


def bench_import(b: Bench) -> None:
    path = b.workdir / "import.xlsx"
    with b.session() as s:
        rows = import_file(s, path, IMPORT_ROWS)
    now = utcnow()
    outcome = {}

    def run() -> None:
        with b.session() as s:
            cpu = time.process_time()
            report = intake.import_ledger(s, str(path), None, now)
            outcome["report"], outcome["cpu"] = report, time.process_time() - cpu
            s.rollback()
        if not report.ok:
            raise SystemExit("bench: import refused: " + "; ".join(p.describe() for p in report.errors[:5]))

    def read_alone() -> None:
        book = openpyxl.load_workbook(path, read_only=False, data_only=True)
        for ws in book.worksheets:
            for row in ws.iter_rows(values_only=True):
                list(row)

    repeat = 2
    stats = timed(run, repeat, warmup=0)
    floor = timed(read_alone, repeat, warmup=0)
    b.add(Figure("import", f"台账导入 xlsx（{rows}行，新建）", stats, unit="s",
                 floors=[Floor("openpyxl单独读同一文件", floor.p50)],
                 note=f"新建{outcome['report'].created}项；末次CPU {outcome['cpu']:.1f} s"))


# --- throughput under wrk --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_login(port: int, username: str) -> str:
    """Log in through the real form over HTTP; the session cookie to send."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": BENCH_PASSWORD, "csrf_token": token})
    opener.open(f"http://127.0.0.1:{port}/login", data=form.encode()).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def wrk(port: int, path: str, cookie: str, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}",
                          "-H", f"User-Agent: {USER_AGENT}", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit(f"bench: wrk got errors for {path}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    timeouts = re.search(r"timeout (\d+)", out)
    latency = {q: re.search(rf"^\s+{q}%\s+(\S+)", out, re.M).group(1) for q in (50, 99)}  # the distribution
    return {"rps": rps, "p50": latency[50], "p99": latency[99],
            "timeouts": int(timeouts.group(1)) if timeouts else 0}


def bench_throughput(b: Bench, workers: int = 4) -> None:
    if shutil.which("wrk") is None:
        b.log("throughput: wrk 未安装，跳过（apt-get install wrk；make bench 会安装）")
        return
    with b.session() as s:
        root = province(s)
        username = supervisor(s, root).user.username
        county = busiest_county(s)
        task_id = s.scalar(select(Task.id).where(Task.region_id == county.id, Task.state == "closed")
                           .order_by(Task.id))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": b.url, "SECRET_KEY": "bench-secret", "TRACKER_INSTANCE": str(b.workdir)}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
                               f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "warning",
                               "bench.app:create_app()"], env=env)
    try:
        _wait_for(port)
        cookie = http_login(port, username)
        paths = [("空路由", BARE_PATH), (f"任务列表 {county.name}+整改中 首页",
                                         f"/tasks?region={county.id}&state=rectifying&sort=deadline"),
                 ("任务页", f"/tasks/{task_id}")]
        results = {}
        for name, path in paths:
            wrk(port, path, cookie, 1)  # every worker warm (templates compiled, connections open)
            results[name] = wrk(port, path, cookie, b.wrk_seconds)
        bare = results["空路由"]["rps"]
        for name, result in results.items():
            b.add(Figure("wrk", f"{name}（gunicorn {workers} workers，wrk 8连接）", value=result["rps"],
                         unit="req/s", higher_is_better=True,
                         floors=[] if name == "空路由" else [Floor("空路由", bare)],
                         note=f"延迟 p50 {result['p50']} p99 {result['p99']}"
                              + (f"，超时{result['timeouts']}次" if result["timeouts"] else "")))
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(port: int, seconds: int = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("bench: gunicorn did not start")


# --- the run -----------------------------------------------------------------------------------------------


RUNNERS = {"pages": bench_pages, "reports": bench_reports, "scan": bench_scan, "export": bench_export,
           "import": bench_import, "throughput": bench_throughput}


def machine(b: Bench) -> dict:
    with b.engine.connect() as conn:
        version = conn.execute(text("SELECT version()")).scalar() if conn.dialect.name == "postgresql" \
            else f"SQLite {conn.connection.driver_connection.execute('select sqlite_version()').fetchone()[0]}"
        tasks = conn.execute(select(func.count()).select_from(Task)).scalar()
        events = conn.execute(select(func.count()).select_from(Event)).scalar()
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "memory_mb": memory, "database": version, "python": platform.python_version(),
            "tasks": tasks, "events": events, "date": b.today.isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=30, help="samples per in-process figure")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--json", help="write the figures and the machine to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zhenggai-bench-") as folder:
        config = Config({"DATABASE_URL": args.database_url, "SECRET_KEY": "bench-secret"}, instance_path=folder)
        app = create_app(config)
        b = Bench(app.extensions["tracker.engine"], args.database_url, app, args.repeat, Path(folder),
                  args.wrk_seconds)
        info = machine(b)
        b.log(f"机器：{info['nproc']}核，内存{info['memory_mb']} MB；{info['database'].split(' on ')[0]}；"
              f"Python {info['python']}；{info['tasks']}项任务，{info['events']}条事件；{info['date']}")
        started = time.perf_counter()
        b.log("--- setup")
        catch_up(b)
        for name in args.only:
            b.log(f"--- {name}")
            RUNNERS[name](b)
        b.log(f"全部用时 {time.perf_counter() - started:.0f} 秒")
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": info, "figures": [f.as_json() for f in b.figures]},
                                                  ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
