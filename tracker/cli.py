"""Command-line boundary (``tracker …`` / ``flask --app tracker …``): parse, call, commit, report.

Like the views, commands hold no business rules; each exits non-zero with a clear message on bad
input and is safe to run from cron.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, inspect, or_, select

from tracker import (
    backup,
    calendars,
    chain,
    db,
    demo,
    escalation,
    intake,
    jobs,
    ledger,
    migrate,
    outbox,
    periods,
    reports,
    schedule,
    scheduler,
    securitylog,
    settings,
    tally,
)
from tracker import plan_import as plans
from tracker.accounts import NewUser, create_user, set_password
from tracker.models import Region, Role, Unit, UnitAlias, User
from tracker.operations import ActionError
from tracker.timeutil import SHANGHAI, local_date, local_datetime, utcnow

db_cli = AppGroup("db", help="数据库：迁移与检查")
calendar_cli = AppGroup("calendar", help="工作日历")
schedule_cli = AppGroup("schedule", help="序时进度")
demo_cli = AppGroup("demo", help="演示数据")
user_cli = AppGroup("user", help="用户管理")
mail_cli = AppGroup("mail", help="邮件发件箱")
scheduler_cli = AppGroup("scheduler", help="调度进程：定时任务")
escalation_cli = AppGroup("escalation", help="督办：扫描与提醒")
ledger_cli = AppGroup("ledger", help="月度整改销号台账：导出与导入")
plan_cli = AppGroup("plan", help="整改方案导入")
jobs_cli = AppGroup("jobs", help="后台任务：台账导出与导入")
audit_cli = AppGroup("audit", help="履责留痕：防篡改核验")
tally_cli = AppGroup("tally", help="总览和当日报表的统计计数：核对、重算、合并")
periods_cli = AppGroup("periods", help="历史日期报表所用的各任务序时进度时段：补算、核对、重算")


def fail(message: str) -> None:
    """Print a Chinese message to stderr and exit 1."""
    click.echo(message, err=True)
    sys.exit(1)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (creates the province and its 14 市州 on a new database)."""
    migrate.upgrade(db.engine())
    click.echo("数据库已迁移到最新版本")


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    try:
        migrate.check(db.engine())
    except Exception as exc:  # alembic raises its own CommandError subclasses
        fail(f"模型与迁移不一致：{exc}")
    click.echo("模型与迁移一致")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo data built from the seeds (idempotent)."""
    if not inspect(db.engine()).has_table("task"):
        fail("数据库尚未迁移，请先运行 tracker db upgrade")
    s = db.session()
    summary = demo.load(s, utcnow(), hash_method=current_app.config["PASSWORD_HASH_METHOD"],
                        upload_folder=Path(current_app.config["UPLOAD_FOLDER"]))
    s.commit()
    click.echo(summary)


@user_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--unit", "unit_name", required=True, help="单位名称或简称")
@click.option("--region", "region_name", default=None, help="单位重名时指明所在地区")
@click.option("--email", default="")
@click.option("--name", "display_name", default="", help="姓名（默认同用户名）")
def user_create(username, role, unit_name, region_name, email, display_name) -> None:
    """Add a user with one membership; the password is read from stdin or a prompt."""
    s = db.session()
    unit = _find_unit(s, unit_name, region_name)
    password = _read_password()
    try:
        create_user(s, None, utcnow(), NewUser(username, display_name or username, password, email), unit, role,
                    hash_method=current_app.config["PASSWORD_HASH_METHOD"])
    except ActionError as exc:
        s.rollback()
        fail(str(exc))
    s.commit()
    click.echo(f"已创建用户 {username}（{unit.name} · {role}）")


@user_cli.command("set-password")
@click.argument("username")
@click.option("--temporary", is_flag=True, help="临时密码：用户登录后须立即修改")
def user_set_password(username: str, temporary: bool) -> None:
    """Set a user's password (read from stdin or a prompt); their sessions end and API tokens are revoked."""
    s = db.session()
    user = s.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        fail(f"找不到用户“{username}”")
    password = _read_password()
    try:
        set_password(s, None, utcnow(), user, password, temporary=temporary,
                     hash_method=current_app.config["PASSWORD_HASH_METHOD"])
    except ActionError as exc:
        s.rollback()
        fail(str(exc))
    s.commit()
    click.echo(f"已设置用户 {user.username} 的密码{'（临时密码，登录后须修改）' if temporary else ''}；"
               "其登录会话已结束，API令牌已撤销")


def _find_unit(s, name: str, region_name: str | None) -> Unit:
    query = select(Unit).outerjoin(UnitAlias).where(or_(Unit.name == name, UnitAlias.alias == name)).distinct()
    units = list(s.scalars(query))
    if region_name:
        units = [u for u in units if u.region.name == region_name]
    if not units:
        fail(f"找不到单位“{name}”")
    if len(units) > 1:
        fail(f"单位“{name}”有重名，请用 --region 指明地区：" + "、".join(u.region.name for u in units))
    return units[0]


def _read_password() -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("密码", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("未读到密码")
    return password


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"日期“{value}”无效，应为YYYY-MM-DD")


@calendar_cli.command("is-workday")
@click.argument("day")
def calendar_is_workday(day: str) -> None:
    """Print yes or no: is DAY a working day (调休 included)."""
    date = _parse_date(day)
    cal = calendars.load(db.session())
    click.echo("yes" if cal.is_workday(date) else "no")
    if cal.is_provisional(date):
        click.echo(f"（{date.year}年日历尚未确认，结果暂定）", err=True)


@calendar_cli.command("workdays-after")
@click.argument("day")
@click.argument("n", type=click.IntRange(min=1))
def calendar_workdays_after(day: str, n: int) -> None:
    """Print the N-th working day after DAY."""
    date = _parse_date(day)
    cal = calendars.load(db.session())
    result = cal.add_workdays(date, n)
    click.echo(result.isoformat())
    if cal.is_provisional(result) or cal.is_provisional(date):
        click.echo("（涉及尚未确认的年份，结果暂定）", err=True)


@calendar_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", default="", help="依据，如 国办发明电〔2025〕7号")
def calendar_import(path: str, source: str) -> None:
    """Load a year's holidays and 调休 working days (CSV: date,is_workday,name) and mark it confirmed."""
    s = db.session()
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
        years = calendars.import_year(s, None, utcnow(), calendars.parse_csv(text), source or Path(path).name)
    except (ActionError, UnicodeDecodeError) as exc:
        s.rollback()
        fail(f"导入失败：{exc}" if isinstance(exc, ActionError) else "文件不是UTF-8编码的CSV")
    s.commit()
    click.echo(f"已导入并确认：{'、'.join(f'{y}年' for y in years)}")


@schedule_cli.command("refresh")
@click.option("--date", "day", default=None, help="按该日计算（默认今天）")
@click.option("--all", "everything", is_flag=True, help="重算全部在办任务（规则或日历改变后）")
def schedule_refresh(day: str | None, everything: bool) -> None:
    """Recompute today's 序时进度 of the tasks that may have changed (the daily job)."""
    s = db.session()
    date = _parse_date(day) if day else local_date(utcnow())
    refresh = schedule.refresh_all if everything else schedule.refresh_due
    count = refresh(s, date, settings.time_settings(s))
    s.commit()
    click.echo(f"已更新{count}项任务的序时进度（{date.isoformat()}）")


@click.command("report")
@with_appcontext
@click.option("--as-of", "as_of", default=None, help="截至日期 YYYY-MM-DD（默认今天）")
@click.option("--by", type=click.Choice(list(reports.GROUPINGS)), default="channel-round")
@click.option("--region", "region_name", default=None, help="地区名称（默认湖南省）")
@click.option("--json", "as_json", is_flag=True, help="输出JSON")
def report_command(as_of: str | None, by: str, region_name: str | None, as_json: bool) -> None:
    """The 序时进度 report (DESIGN §5) for a region's subtree as of a date."""
    s = db.session()
    date = _parse_date(as_of) if as_of else local_date(utcnow())
    region = _find_region(s, region_name)
    result = reports.build(s, region, date, by, settings.time_settings(s))
    if as_json:
        click.echo(json.dumps([row.as_json() for row in result.rows], ensure_ascii=False, indent=2))
        return
    click.echo(f"{region.name}整改任务序时进度（截至{date.year}年{date.month}月{date.day}日，{reports.GROUPINGS[by]}）")
    header = ["分组", "共", "已完成", "达到序时进度", "滞后", "其中逾期", "其中经批准延期", "销号率"]
    click.echo("\t".join(header))
    for row in [*result.rows, result.total]:
        click.echo("\t".join([" · ".join(row.group), *(str(v) for v in (
            row.total, row.completed, row.on_schedule, row.behind, row.overdue, row.extended)),
            f"{row.closure_rate:.1%}"]))


@mail_cli.command("flush")
def mail_flush() -> None:
    """Deliver what is due in the outbox now (no MAIL_SERVER: write .eml files to MAIL_FOLDER)."""
    report = outbox.deliver_due(db.session(), utcnow(), current_app.config)  # commits after each mail
    click.echo(report.summary())
    if report.folder is not None and report.sent:
        click.echo(f"（未配置邮件服务器，邮件已写入 {report.folder}）")
    if report.server_down:
        # Exit 0: cron runs this every few minutes; nothing is lost, the mails wait for the server.
        click.echo(f"邮件服务器不可用，邮件保留在发件箱中稍后重试：{report.server_error}")


def _find_region(s, name: str | None) -> Region:
    if not name:
        return s.scalar(select(Region).where(Region.level == 0))
    found = s.scalars(select(Region).where(Region.name == name)).all()
    if not found:
        fail(f"找不到地区“{name}”")
    if len(found) > 1:
        fail(f"地区“{name}”有重名：" + "、".join(r.parent.name for r in found if r.parent))
    return found[0]


@scheduler_cli.command("run")
def scheduler_run() -> None:
    """The scheduler process: runs the jobs while it holds the leader lock (one per database; a second
    one stands by). Ctrl-C or SIGTERM stops it, letting a running job finish."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per minute
    scheduler.run(current_app._get_current_object())
    click.echo("调度进程已停止")


@scheduler_cli.command("jobs")
def scheduler_jobs() -> None:
    """List the schedule with each job's next run (non-working days skipped) and whether a scheduler runs."""
    now = utcnow()
    cal = calendars.load(db.session())
    for spec in scheduler.JOBS:
        upcoming = scheduler.next_run(spec, cal, now)
        shown = upcoming.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if upcoming else "—"
        click.echo(f"{spec.name}\t{spec.when}\t下次运行 {shown}\t{spec.description}")
    running = scheduler.is_running(current_app._get_current_object())
    click.echo("调度进程：" + ("正在运行" if running else "未运行（启动：tracker scheduler run）"))


@escalation_cli.command("scan")
@click.option("--date", "day", default=None, help="按该日扫描（默认今天）")
@click.option("--dry-run", is_flag=True, help="只统计，不写入、不发送")
def escalation_scan(day: str | None, dry_run: bool) -> None:
    """One escalation scan as if today were DATE: record levels and reminders, queue the digests."""
    s = db.session()
    date = _parse_date(day) if day else local_date(utcnow())
    summary = escalation.scan(s, date, utcnow(), dry_run=dry_run)
    if dry_run:
        s.rollback()
    else:
        s.commit()
    click.echo(summary.describe())


@plan_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", "channel_name", required=True, help="问题来源名称或简称")
@click.option("--issuer", "issuer_name", required=True, help="印发（交办）单位名称或简称")
@click.option("--issued", required=True, help="印发（交办）日期 YYYY-MM-DD")
@click.option("--expires", default=None, help="整改时限 YYYY-MM-DD（默认取方案中的“有效期至”）")
@click.option("--round", "round_name", default=None, help="批次名称（默认取方案标题）")
@click.option("--create-missing", is_flag=True, help="自动创建系统中没有的单位")
def plan_import_command(path, channel_name, issuer_name, issued, expires, round_name, create_missing) -> None:
    """Import a plan (整改方案): one task per responsibility clause, assigned as of --issued."""
    s = db.session()
    if Path(path).stat().st_size > plans.MAX_PLAN_BYTES:
        fail(f"文件超过{plans.MAX_PLAN_BYTES // (1024 * 1024)}MB，不像是整改方案的文本")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail("文件不是UTF-8编码的文本")
    issuer = _find_unit(s, issuer_name, None)
    try:
        report = plans.import_plan(
            s, text, channel=plans.find_channel(s, channel_name), issuer=issuer, issued=_parse_date(issued),
            expires=_parse_date(expires) if expires else None, actor=None, now=utcnow(),
            create_missing=create_missing, round_name=round_name)
    except ActionError as exc:
        s.rollback()
        fail(f"导入失败：{exc}")
    s.commit()
    click.echo(report.summary())


@ledger_cli.command("export")
@click.option("--month", required=True, help="月份 YYYY-MM（本月即截至今天）")
@click.option("--region", "region_name", default=None, help="地区名称（默认湖南省）")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="输出文件（.xlsx或.csv）")
def ledger_export(month: str, region_name: str | None, out: str) -> None:
    """Write the monthly closure ledger (月度整改销号台账) of a region's subtree to an .xlsx or .csv file."""
    path = Path(out)
    if path.suffix.lower() not in (".xlsx", ".csv"):
        fail("输出文件须以.xlsx或.csv结尾")
    s = db.session()
    region = _find_region(s, region_name)
    try:
        summary = ledger.export(s, region, month, path, today=local_date(utcnow()), settings=settings.time_settings(s))
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"无法写入文件“{out}”：{exc.strerror or exc}")
    securitylog.record(s, "export", now=utcnow(), detail={
        "what": securitylog.WHAT_LEDGER, "region": region.name, "month": month, "rows": summary.rows,
        "file": str(path.resolve()), "by": securitylog.BY_COMMAND_LINE})
    s.commit()
    as_of = summary.as_of
    click.echo(f"已导出{as_of.year}年{as_of.month}月台账：{summary.rows}项任务 → {path}")


@ledger_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="只校验，不写入")
@click.option("--update", is_flag=True, help="更新已有问题（只更新文件中有值的字段，不改变状态）")
@click.option("--create-missing", is_flag=True, help="新建缺少的单位、地区和批次（须同时指定 --region）")
@click.option("--region", "region_name", default=None, help="导入范围：地区名称；新建的地区建在其下")
def ledger_import(file: str, dry_run: bool, update: bool, create_missing: bool, region_name: str | None) -> None:
    """Import an Excel ledger (导入整改台账, .xlsx or .xls): nothing is written unless every row is valid."""
    if create_missing and not region_name:
        fail("--create-missing 须同时用 --region 指定新建地区和单位的上级地区")
    s = db.session()
    region = _find_region(s, region_name) if region_name else None
    report = intake.import_ledger(s, file, None, utcnow(), dry_run=dry_run, update=update,
                                  create_missing=create_missing, region=region)
    for problem in report.warnings:
        click.echo(f"提示：{problem.describe()}")
    for line in report.created_lines():
        click.echo(line)
    if not report.ok:
        s.rollback()
        for problem in report.errors:
            click.echo(problem.describe(), err=True)
        fail(report.summary())
    if dry_run:
        s.rollback()
    else:
        s.commit()
    click.echo(report.summary())


def _folders() -> backup.Folders:
    return backup.Folders(Path(current_app.config["UPLOAD_FOLDER"]), Path(current_app.config["LEDGER_FOLDER"]))


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="备份文件（.tar.gz）")
@with_appcontext
def backup_command(out: str) -> None:
    """Back up the database and the evidence and ledger files, from one consistent snapshot."""
    try:
        summary = backup.backup(current_app.extensions["tracker.engine"], _folders(), Path(out), utcnow())
    except backup.BackupError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"无法写入备份文件“{out}”：{exc.strerror or exc}")
    s = db.session()
    securitylog.record(s, "backup", now=utcnow(), detail={
        "what": securitylog.WHAT_BACKUP, "file": str(Path(out).resolve()), "by": securitylog.BY_COMMAND_LINE})
    s.commit()
    click.echo(f"已备份{summary.describe()} → {out}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="数据库已有数据时仍然覆盖")
@with_appcontext
def restore_command(file: str, force: bool) -> None:
    """Restore a backup into this database (replacing its rows) and its files, then migrate to the head."""
    try:
        summary = backup.restore(current_app.extensions["tracker.engine"], _folders(), Path(file), force=force)
    except backup.BackupError as exc:
        fail(str(exc))
    click.echo(summary.describe())


@jobs_cli.command("run")
@click.option("--once", is_flag=True, help="处理完当前排队的任务即退出")
@click.option("--interval", default=5.0, type=click.FloatRange(min=0.5), help="查看队列的间隔（秒）")
def jobs_run(once: bool, interval: float) -> None:
    """Run the queued background jobs: once, or as a worker until Ctrl-C (any number of workers and the
    scheduler may run side by side; each job is taken by exactly one)."""
    app = current_app._get_current_object()
    if once:
        click.echo(jobs.run_pending(app).describe())
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo("后台任务处理进程已启动（Ctrl-C 停止）")
    try:
        while True:
            summary = jobs.run_pending(app)
            if summary.count or summary.recovered:
                click.echo(summary.describe())
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("后台任务处理进程已停止")


@jobs_cli.command("list")
@click.option("--state", type=click.Choice(list(jobs.STATE_LABELS)), default=None, help="只列出该状态的任务")
@click.option("--limit", default=20, type=click.IntRange(min=1), help="最多列出几个（最新的在前）")
def jobs_list(state: str | None, limit: int) -> None:
    """List the latest background jobs: number, kind, state, progress, user, submitted, what, message."""
    found = jobs.recent(db.session(), state, limit)
    for job in found:
        progress = f"{job.progress}/{job.total}" if job.total else str(job.progress)
        click.echo("\t".join([f"#{job.id}", jobs.KIND_LABELS.get(job.kind, job.kind), jobs.STATE_LABELS[job.state],
                              progress, job.user.username, local_datetime(job.created_at).strftime("%Y-%m-%d %H:%M"),
                              jobs.describe(job), job.message]))
    if not found:
        click.echo("没有后台任务")


@jobs_cli.command("cleanup")
@click.option("--days", default=None, type=click.IntRange(min=0), help="保留天数（默认 JOBS_KEEP_DAYS）")
def jobs_cleanup(days: int | None) -> None:
    """Delete the background jobs' files older than the kept days."""
    s = db.session()
    keep = current_app.config["JOBS_KEEP_DAYS"] if days is None else days
    removed = jobs.cleanup(s, utcnow(), Path(current_app.config["JOBS_FOLDER"]), keep)
    s.commit()
    click.echo(f"已删除{removed}个超过{keep}天的后台任务文件")


@audit_cli.command("verify")
@click.option("--task", "code", default=None, help="只核验该问题编号的任务")
def audit_verify(code: str | None) -> None:
    """Recompute every event chain (or those of the tasks with one code) and name the first broken link of
    each; exit 1 if any."""
    tally = chain.Tally()
    with db.engine().connect() as conn:
        chain.begin_snapshot(conn)
        task_ids = None
        if code is not None:
            task_ids = chain.task_ids_of(conn, code)
            if not task_ids:
                fail(f"没有编号为“{code}”的任务")
        for found in chain.verify(conn, tally, task_ids):
            click.echo(found.describe())
    click.echo(tally.describe())
    if tally.broken:
        sys.exit(1)


@tally_cli.command("check")
def tally_check() -> None:
    """Compare the tallies with a count of the tasks; exit 1 and list the keys that differ."""
    found = tally.differences(db.session())
    for name, key, kept, live in found:
        click.echo(f"{name} {key}: 计数{kept}，实际{live}")
    if found:
        fail(f"统计计数有{len(found)}处与任务不符，请运行 tracker tally rebuild")
    click.echo("统计计数与任务一致")


@tally_cli.command("rebuild")
def tally_rebuild() -> None:
    """Recount the tallies from the tasks (after loading data with the database's triggers disabled)."""
    s = db.session()
    tally.rebuild(s)
    s.commit()
    click.echo("已按任务重算统计计数")


@tally_cli.command("fold")
def tally_fold() -> None:
    """Merge the rows appended since the last fold into one per key (the scheduler does it every 10 minutes)."""
    s = db.session()
    merged = tally.fold(s)
    s.commit()
    click.echo(f"已合并{merged}行")


@periods_cli.command("catch-up")
def periods_catch_up() -> None:
    """Compute the spans of the tasks changed since (the scheduler does it every few minutes)."""
    s = db.session()
    done = periods.catch_up(s, settings.time_settings(s))
    s.commit()
    click.echo(f"已补算{done}项任务的序时进度时段")


@periods_cli.command("check")
def periods_check() -> None:
    """Compare every task's kept spans with a fresh replay of its events; exit 1 and name those that differ."""
    s = db.session()
    wrong = periods.differences(s, settings.time_settings(s))
    for task_id in wrong[:50]:
        click.echo(f"任务{task_id}的序时进度时段与事件不符")
    if wrong:
        fail(f"{len(wrong)}项任务的序时进度时段与事件不符，请运行 tracker periods rebuild")
    click.echo(f"序时进度时段与事件一致（另有{periods.stale_count(s)}项任务待补算）")


@periods_cli.command("rebuild")
def periods_rebuild() -> None:
    """Compute every task's spans afresh (after loading data with the database's triggers disabled)."""
    s = db.session()
    count = periods.rebuild(s, settings.time_settings(s))
    s.commit()
    click.echo(f"已重算{count}项任务的序时进度时段")


def init_app(app: Flask) -> None:
    for group in (db_cli, demo_cli, user_cli, calendar_cli, schedule_cli, scheduler_cli, mail_cli, escalation_cli,
                  ledger_cli, jobs_cli):
        app.cli.add_command(group)
    app.cli.add_command(report_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(audit_cli)
    app.cli.add_command(tally_cli)
    app.cli.add_command(periods_cli)
    app.cli.add_command(plan_cli)
