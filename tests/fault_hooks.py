"""Test-only hooks for the processes tests/test_faults.py kills; the app never imports this.

With SQLite a test cannot hold a lock that stops another process's transaction half way (the first write
takes the one write lock), so the process is paused from inside instead: a SQLAlchemy listener stops it
just before the statement that starts with ``FAULT_PAUSE_AT`` (the ``FAULT_OCCURRENCE``-th one, default
the first), after writing its pid to ``FAULT_MARKER`` — the test then SIGKILLs it there, inside its
transaction. Only the first process to get there pauses (the marker exists afterwards), so a replacement
worker serves normally. With PostgreSQL the tests hold a row lock instead and need none of this.

- ``gunicorn -c tests/fault_hooks.py 'tracker:create_app()'``: ``post_worker_init`` hooks each worker's app.
- ``python -m tests.fault_hooks scheduler DATE NOW``: the real scheduler (leader lock, APScheduler,
  ``run_daily``) with one job: the daily scan of DATE at NOW, started at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine


def pause_before(engine: Engine, prefix: str, marker: Path, occurrence: int = 1) -> None:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _pause(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(prefix) or marker.exists():
            return
        seen.append(statement)
        if len(seen) == occurrence:
            marker.write_text(str(os.getpid()))
            while True:  # until SIGKILL
                time.sleep(1)


def hook_from_environment(engine: Engine) -> None:
    prefix = os.environ.get("FAULT_PAUSE_AT")
    if prefix:
        pause_before(engine, prefix, Path(os.environ["FAULT_MARKER"]), int(os.environ.get("FAULT_OCCURRENCE", "1")))


def post_worker_init(worker) -> None:
    """gunicorn server hook: runs in each worker once its app is loaded."""
    hook_from_environment(worker.wsgi.extensions["tracker.engine"])


def run_scheduler(day: dt.date, now: dt.datetime) -> None:
    from apscheduler.triggers.date import DateTrigger  # noqa: PLC0415 (only this entry point needs them)

    from tracker import create_app, scheduler  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    hook_from_environment(app.extensions["tracker.engine"])
    at_once = DateTrigger(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5))
    spec = scheduler.JobSpec("daily_scan", "督办扫描（故障测试）", "启动后立即", at_once,
                             lambda app, _clock: scheduler.run_daily(app, day, now), misfire_grace_time=3600)
    scheduler.run(app, jobs=[spec])


if __name__ == "__main__" and sys.argv[1:2] == ["scheduler"]:
    run_scheduler(dt.date.fromisoformat(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3]))
