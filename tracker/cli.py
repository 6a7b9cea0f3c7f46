"""Command-line boundary (``tracker …`` / ``flask --app tracker …``): parse, call, commit, report.

Like the views, commands hold no business rules; each exits non-zero with a clear message on bad
input and is safe to run from cron.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import inspect, or_, select

from tracker import db, demo, migrate
from tracker.accounts import NewUser, create_user
from tracker.models import Role, Unit, UnitAlias
from tracker.operations import ActionError
from tracker.timeutil import utcnow

db_cli = AppGroup("db", help="数据库：迁移与检查")
demo_cli = AppGroup("demo", help="演示数据")
user_cli = AppGroup("user", help="用户管理")


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


def init_app(app: Flask) -> None:
    for group in (db_cli, demo_cli, user_cli):
        app.cli.add_command(group)
