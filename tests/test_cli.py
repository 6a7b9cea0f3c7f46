"""The command line: db upgrade and check, user create (password from stdin), clear failures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from werkzeug.security import check_password_hash

from tracker.models import Event, Task, User


def test_db_upgrade_and_check_on_a_migrated_database(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "最新版本" in result.output
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0 and "一致" in result.output


def test_user_create_reads_the_password_from_stdin_and_finds_the_unit_by_alias(app, world, s):
    result = app.test_cli_runner().invoke(
        args=["user", "create", "shengting_wang", "--role", "unit", "--unit", "省生态环境厅", "--email",
              "wang@example.cn", "--name", "王工"], input="Shengting-2026\n")
    assert result.exit_code == 0, result.output
    user = s.scalar(select(User).where(User.username == "shengting_wang"))
    assert user.display_name == "王工" and check_password_hash(user.password_hash, "Shengting-2026")
    assert [(m.unit.name, m.role) for m in user.memberships] == [("湖南省生态环境厅", "unit")]
    assert s.scalar(select(Event).where(Event.entity == "user", Event.entity_id == user.id)).action == "create"


def test_user_create_fails_clearly_on_bad_input(app, world, s):
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["user", "create", "x1", "--role", "unit", "--unit", "不存在的局"],
                            input="Password-2026\n")
    assert unknown.exit_code == 1 and "找不到单位" in unknown.output
    weak = runner.invoke(args=["user", "create", "x2", "--role", "unit", "--unit", "省水利厅"], input="short\n")
    assert weak.exit_code == 1 and "密码至少需要" in weak.output
    taken = runner.invoke(args=["user", "create", "unit_yh", "--role", "unit", "--unit", "省水利厅"],
                          input="Password-2026\n")
    assert taken.exit_code == 1 and "已被使用" in taken.output
    assert s.scalar(select(User).where(User.username.in_(["x1", "x2"]))) is None


def test_schedule_refresh_recomputes_the_tasks_due_for_a_check(app, world, s):
    task = world.advance(world.assigned(deadline=dt.date(2026, 3, 31)), "rectifying")
    s.commit()
    assert task.overdue is False and task.next_check_on is not None
    result = app.test_cli_runner().invoke(args=["schedule", "refresh", "--date", "2026-04-30"])
    assert result.exit_code == 0 and "已更新" in result.output
    s.expire_all()
    refreshed = s.get(Task, task.id)
    assert refreshed.overdue is True and refreshed.schedule == "behind" and refreshed.version == task.version
