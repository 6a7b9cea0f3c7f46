"""后台任务 (background jobs): long operations — the monthly ledger export and the Excel intake — run
outside the request, with progress the user can leave and come back to (我的后台任务).

- ``submit`` is an operation: it checks the parameters (a bad request is refused at once, not later),
  queues a job for the acting membership and writes the audit event; the caller commits.
- The runner (``run_pending``: every few seconds in the scheduler process, or ``tracker jobs run``) is
  a boundary like the scheduler's jobs and owns its commits. It claims one queued job with a guarded
  ``UPDATE … WHERE state = 'queued'`` (the candidate read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
  so two runners never take the same job. The handler runs in a session of its own; progress and the
  heartbeat are committed in short transactions on other connections. The job ends in the handler's
  own transaction with another guarded ``UPDATE … WHERE state = 'running' AND started_at = <the
  claim>``: an import and its "done" are committed together or not at all, and a runner that lost its
  job (its heartbeat went stale and the job was taken over) commits nothing.
- A running job whose heartbeat is older than ``STALE_AFTER`` (its process died) is queued again once,
  then failed. Nothing of it had been committed: handlers commit only with the job's end.
- ``cleanup`` deletes the files of jobs finished more than ``JOBS_KEEP_DAYS`` days ago.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Update, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from tracker import intake, ledger, settings, storage
from tracker.audit import ActionError, record_event
from tracker.i18n import N_, Msg
from tracker.models import BackgroundJob, Membership, Region, Role, Task
from tracker.permissions import SUBTREE_ROLES, in_subtree
from tracker.storage import StoredFile
from tracker.timeutil import local_date, utcnow

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
OPEN_STATES = (QUEUED, RUNNING)
STATE_LABELS = {QUEUED: N_("排队中"), RUNNING: N_("处理中"), DONE: N_("已完成"), FAILED: N_("失败")}
LEDGER_EXPORT, INTAKE = "ledger_export", "intake"
KIND_LABELS = {LEDGER_EXPORT: N_("月度台账导出"), INTAKE: N_("导入整改台账")}
LEDGER_FORMATS = ("xlsx", "csv")
MIMETYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv"}

HEARTBEAT_SECONDS = 10.0  # a running job's heartbeat is refreshed this often, from a thread of its own
STALE_AFTER = dt.timedelta(minutes=5)  # a running job silent this long lost its process
MAX_ATTEMPTS = 2  # a job whose process died is queued again once, then failed
PROGRESS_SECONDS = 1.0  # progress is committed at most this often (and whenever the stage changes)
MAX_PROBLEMS = 1000  # problems of an import kept with the job (the count is kept whole)

WAITING = N_("排队等待处理")
STAGE_EXPORT = N_("正在生成台账")
REQUEUED = N_("处理进程中断，已重新排队")
INTERRUPTED = N_("处理进程中断，任务未完成，请重新提交")
UNEXPECTED = N_("处理时出错，任务未完成；请稍后重新提交，或联系管理员")
MEMBERSHIP_GONE = N_("提交任务的身份已停用，任务未执行")


# --- submitting (an operation: the caller commits) ---------------------------------------------------


def submit(s: Session, actor: Membership, now: dt.datetime, kind: str, params: dict[str, Any],
           upload: StoredFile | None = None) -> BackgroundJob:
    """Queue a job of ``kind`` for ``actor``. ``upload`` is a file the view stored under the jobs folder
    (the workbook of an import). Bad parameters raise ``ActionError`` and queue nothing."""
    check = _CHECKS.get(kind)
    if check is None:
        raise ActionError("未知的后台任务类型：{kind}", kind=kind)
    checked = check(s, actor, now, dict(params), upload)
    job = BackgroundJob(kind=kind, user_id=actor.user_id, membership_id=actor.id, state=QUEUED, progress=0,
                        message=WAITING, params=checked, result={}, download_name="", created_at=now)
    s.add(job)
    s.flush()
    record_event(s, actor, now, "submit", entity="background_job", entity_id=job.id,
                 data={"kind": kind, **{k: v for k, v in checked.items() if k != "upload"}})
    return job


def _check_ledger_export(s: Session, actor: Membership, now: dt.datetime, params: dict[str, Any],
                         _upload: StoredFile | None) -> dict[str, Any]:
    region = _ledger_region(s, actor, params.get("region_id"))
    fmt = params.get("format") or "xlsx"
    if fmt not in LEDGER_FORMATS:
        raise ActionError("只能导出.xlsx或.csv文件")
    month = str(params.get("month") or "")
    try:
        ledger.as_of_date(month, local_date(now))
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    return {"region_id": region.id, "region": region.name, "month": month, "format": fmt}


def _ledger_region(s: Session, actor: Membership, region_id: Any) -> Region:
    """The region of a ledger export, within ``actor``'s subtree (checked again when the job runs)."""
    if actor.role not in SUBTREE_ROLES:
        raise ActionError("只有督办、查阅人员和管理员可以导出台账")
    region = s.get(Region, region_id) if isinstance(region_id, int) else None
    if region is None or not in_subtree(actor, region):
        raise ActionError("该地区不在您的管辖范围内")
    return region


def _check_intake(s: Session, actor: Membership, _now: dt.datetime, params: dict[str, Any],
                  upload: StoredFile | None) -> dict[str, Any]:
    if actor.role not in (Role.supervisor.value, Role.admin.value):
        raise ActionError("只有督办人员和管理员可以导入台账")
    if upload is None:
        raise ActionError("请选择要导入的台账文件")
    region_id = params.get("region_id")
    if region_id is not None:
        _ledger_region(s, actor, region_id)
    return {"file": upload.original_name, "upload": upload.stored_name, "size": upload.size,
            "sha256": upload.sha256, "dry_run": bool(params.get("dry_run")), "update": bool(params.get("update")),
            "create_missing": bool(params.get("create_missing")), "region_id": region_id,
            "max_bytes": int(params.get("max_bytes") or intake.MAX_FILE_BYTES)}


_CHECKS = {LEDGER_EXPORT: _check_ledger_export, INTAKE: _check_intake}


def ledger_is_small(s: Session, region: Region, limit: int) -> bool:
    """Does ``region``'s subtree hold at most ``limit`` tasks? (Counts no further than ``limit + 1``.)
    Such a ledger is built in the request; a larger one in the background."""
    some = (select(Task.id).join(Region, Task.region_id == Region.id)
            .where(Region.path.startswith(region.path, autoescape=True)).limit(limit + 1).subquery())
    return s.scalar(select(func.count()).select_from(some)) <= limit


# --- reading ---------------------------------------------------------------------------------------------


def user_jobs(s: Session, user_id: int, limit: int = 100) -> list[BackgroundJob]:
    """The user's jobs, newest first (every membership's)."""
    return list(s.scalars(select(BackgroundJob).where(BackgroundJob.user_id == user_id)
                          .order_by(BackgroundJob.id.desc()).limit(limit)
                          .options(selectinload(BackgroundJob.membership))))


def recent(s: Session, state: str | None = None, limit: int = 20) -> list[BackgroundJob]:
    query = select(BackgroundJob).order_by(BackgroundJob.id.desc()).limit(limit).options(
        selectinload(BackgroundJob.user))
    if state:
        query = query.where(BackgroundJob.state == state)
    return list(s.scalars(query))


def message_of(job: BackgroundJob) -> str:
    """The job's message, as a ``Msg`` when it has parameters (so pages can translate it)."""
    stored = (job.result or {}).get("message")
    if isinstance(stored, dict) and stored.get("msgid"):
        msgid = stored["msgid"]  # a variable, not a literal: the extractor must not take "msgid" for a text
        return Msg(msgid, **(stored.get("params") or {}))
    return job.message


def describe(job: BackgroundJob) -> str:
    """One line for the command line: what the job is about."""
    p = job.params or {}
    if job.kind == LEDGER_EXPORT:
        return f"{p.get('region', '')} {p.get('month', '')} {str(p.get('format', '')).upper()}"
    if job.kind == INTAKE:
        return str(p.get("file", "")) + ("（试运行）" if p.get("dry_run") else "")
    return ""


def may_download(s: Session, job: BackgroundJob, user_id: int) -> bool:
    """Only the job's owner, while the membership that asked for it is active and what was exported is
    still within its scope."""
    m = job.membership
    if job.user_id != user_id or job.state != DONE or not job.stored_name or not m.active or not m.user.active:
        return False
    if job.kind == LEDGER_EXPORT:
        region = s.get(Region, (job.params or {}).get("region_id"))
        return region is not None and m.role in SUBTREE_ROLES and in_subtree(m, region)
    return False  # no other kind produces a file


def result_path(folder: Path, job: BackgroundJob) -> Path:
    return storage.path_of(folder, job.stored_name or "")


def mimetype(job: BackgroundJob) -> str:
    return MIMETYPES.get((job.params or {}).get("format", ""), "application/octet-stream")


def record_download(s: Session, now: dt.datetime, job: BackgroundJob) -> None:
    """Downloads are security-logged (DESIGN §9), under the membership the job ran for."""
    record_event(s, job.membership, now, "download", entity="background_job", entity_id=job.id,
                 data={"kind": job.kind, "file": job.download_name})


# --- claiming, progress, heartbeat ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A runner's hold on a job: the job and the ``started_at`` its claim wrote."""

    job_id: int
    token: dt.datetime


def _held(claim: Claim) -> Update:
    """An UPDATE of the job that only touches it while this claim still holds it."""
    return (update(BackgroundJob)
            .where(BackgroundJob.id == claim.job_id, BackgroundJob.state == RUNNING,
                   BackgroundJob.started_at == claim.token)
            .execution_options(synchronize_session=False))


def claim(s: Session, now: dt.datetime, tries: int = 5) -> Claim | None:
    """Take the oldest queued job for this runner, or None; commits. The guarded UPDATE is what makes
    the claim exclusive; SKIP LOCKED only spares PostgreSQL runners from queueing on the same row."""
    for _ in range(tries):
        candidate = select(BackgroundJob.id).where(BackgroundJob.state == QUEUED).order_by(
            BackgroundJob.id).limit(1).with_for_update(skip_locked=True)  # SQLite leaves FOR UPDATE out
        job_id = s.scalar(candidate)
        if job_id is None:
            s.rollback()
            return None
        if take(s, job_id, now):
            s.commit()
            return Claim(job_id, now)
        s.rollback()  # another runner took it between the read and the update: try the next one
    return None


def take(s: Session, job_id: int, now: dt.datetime) -> bool:
    """The guarded step of a claim: queued → running, true for exactly one of any number of runners that
    try it (the caller commits)."""
    taken = s.execute(update(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.state == QUEUED)
                      .values(state=RUNNING, started_at=now, heartbeat_at=now, finished_at=None)
                      .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        return False
    job = s.get(BackgroundJob, job_id, populate_existing=True)
    job.result = {"attempts": int((job.result or {}).get("attempts", 0)) + 1}
    s.flush()
    return True


class Progress:
    """The handler's progress callback, ``progress(done, total=None, stage="")``: commits progress,
    total, stage and heartbeat in a short transaction of its own connection — at most every
    ``PROGRESS_SECONDS``, and whenever the stage changes — so the page sees them while the handler's
    own transaction is still open."""

    def __init__(self, engine: Engine, claim: Claim, clock: Callable[[], dt.datetime],
                 interval: float | None = None):
        self.engine, self.claim, self.clock = engine, claim, clock
        self.interval = PROGRESS_SECONDS if interval is None else interval
        self._last = -math.inf
        self._stage: str | None = None

    def __call__(self, done: int, total: int | None = None, stage: str = "") -> None:
        moment = time.monotonic()
        if stage == self._stage and moment - self._last < self.interval:
            return
        self._last, self._stage = moment, stage
        values: dict[str, Any] = {"progress": done, "heartbeat_at": self.clock()}
        if total is not None:
            values["total"] = total
        if stage:
            values["message"] = stage
        with self.engine.begin() as conn:
            conn.execute(_held(self.claim).values(**values))


class Heartbeat:
    """Keeps ``heartbeat_at`` fresh from a thread of its own while the handler runs, so a long quiet step
    (reading a large workbook, compressing one) never looks like a dead process. A beat that fails (with
    SQLite, while the import holds the write lock) is skipped; the next one tries again."""

    def __init__(self, engine: Engine, claim: Claim, clock: Callable[[], dt.datetime],
                 seconds: float | None = None):
        self.engine, self.claim, self.clock = engine, claim, clock
        self.seconds = HEARTBEAT_SECONDS if seconds is None else seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{claim.job_id}-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                with self.engine.begin() as conn:
                    conn.execute(_held(self.claim).values(heartbeat_at=self.clock()))
            except SQLAlchemyError:
                log.debug("后台任务 %s 心跳未写入，稍后重试", self.claim.job_id, exc_info=True)


def recover_stale(s: Session, now: dt.datetime) -> int:
    """Running jobs whose heartbeat stopped (the process died): queued again once, then failed. Commits."""
    cutoff = now - STALE_AFTER
    query = select(BackgroundJob).where(BackgroundJob.state == RUNNING, BackgroundJob.heartbeat_at < cutoff
                                        ).with_for_update(skip_locked=True)
    count = 0
    for job in s.scalars(query.order_by(BackgroundJob.id)).all():
        attempts = int((job.result or {}).get("attempts", 1))
        if attempts < MAX_ATTEMPTS:
            values: dict[str, Any] = {"state": QUEUED, "progress": 0, "total": None, "message": REQUEUED}
        else:
            values = {"state": FAILED, "message": INTERRUPTED, "finished_at": now,
                      "result": {**(job.result or {}), "message": {"msgid": INTERRUPTED, "params": {}}}}
        taken = s.execute(update(BackgroundJob).where(BackgroundJob.id == job.id, BackgroundJob.state == RUNNING,
                                                      BackgroundJob.heartbeat_at < cutoff)
                          .values(**values).execution_options(synchronize_session=False)).rowcount
        if taken:
            record_event(s, None, now, "recover", entity="background_job", entity_id=job.id,
                         data={"kind": job.kind, "state": values["state"], "attempts": attempts})
            count += 1
    s.commit()
    return count


# --- running ---------------------------------------------------------------------------------------------


@dataclass
class JobContext:
    """What a handler gets: the session (whose transaction ends with the job), the job, its membership,
    the clock reading it started at, the jobs folder and the progress callback."""

    s: Session
    job: BackgroundJob
    actor: Membership
    now: dt.datetime
    folder: Path
    progress: Progress

    def output(self, suffix: str) -> Path:
        """A new file in the jobs folder for the result (renamed when the job is done)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{secrets.token_hex(16)}.part{suffix}"


@dataclass
class Outcome:
    state: str  # DONE or FAILED
    message: Msg
    result: dict[str, Any] = field(default_factory=dict)
    file: Path | None = None  # the produced file (DONE only)
    download_name: str = ""


def _run_ledger_export(ctx: JobContext) -> Outcome:
    params = ctx.job.params
    region = _ledger_region(ctx.s, ctx.actor, params.get("region_id"))  # still in scope?
    fmt, month = params["format"], params["month"]
    path = ctx.output(f".{fmt}")
    try:
        summary = ledger.export(ctx.s, region, month, path, today=local_date(ctx.now),
                                settings=settings.time_settings(ctx.s),
                                progress=functools.partial(ctx.progress, stage=STAGE_EXPORT))
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, ValueError):
            raise ActionError(str(exc)) from None
        raise
    as_of = summary.as_of
    record_event(ctx.s, ctx.actor, ctx.now, "export", entity="ledger", entity_id=region.id,
                 data={"region": region.name, "month": month, "as_of": as_of, "format": fmt, "rows": summary.rows,
                       "job": ctx.job.id})
    message = Msg("已生成{year}年{month}月台账：{rows}项任务", year=as_of.year, month=as_of.month, rows=summary.rows)
    return Outcome(DONE, message, {"rows": summary.rows, "as_of": as_of.isoformat(), "sheets": summary.sheets},
                   path, f"{region.name}整改销号台账{as_of.year}年{as_of.month}月.{fmt}")


def _run_intake(ctx: JobContext) -> Outcome:
    p = ctx.job.params
    region = ctx.s.get(Region, p["region_id"]) if p.get("region_id") else None
    report = intake.import_ledger(
        ctx.s, storage.path_of(ctx.folder, p["upload"]), ctx.actor, ctx.now, dry_run=p["dry_run"],
        update=p["update"], create_missing=p["create_missing"], region=region, name=p["file"],
        max_bytes=p["max_bytes"], progress=ctx.progress)
    return Outcome(DONE if report.ok else FAILED, _intake_message(report), {"report": report_json(report)})


def _intake_message(report: intake.ImportReport) -> Msg:
    counts = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    if report.errors:
        return Msg("导入失败：发现{n}个问题，未写入任何数据", n=len(report.errors))
    if report.dry_run:
        return Msg("校验通过（试运行，未写入）：将新建{created}项，更新{updated}项，未变{unchanged}项", **counts)
    return Msg("已导入：新建{created}项，更新{updated}项，未变{unchanged}项", **counts)


def report_json(report: intake.ImportReport) -> dict[str, Any]:
    """An import's report as kept with its job: counts, what was created, and the problems (row, column,
    reason), the first ``MAX_PROBLEMS`` of each kind."""
    def problems(found: list[intake.ImportProblem]) -> list[dict[str, Any]]:
        return [{"row": p.row, "column": p.column, "header": p.header, "message": str(p.message)}
                for p in found[:MAX_PROBLEMS]]

    return {"file": report.file, "ok": report.ok, "dry_run": report.dry_run, "rows": report.rows,
            "created": report.created, "updated": report.updated, "unchanged": report.unchanged,
            "created_units": report.created_units, "created_regions": report.created_regions,
            "created_rounds": report.created_rounds, "errors": problems(report.errors),
            "warnings": problems(report.warnings), "error_count": len(report.errors),
            "warning_count": len(report.warnings)}


HANDLERS: dict[str, Callable[[JobContext], Outcome]] = {LEDGER_EXPORT: _run_ledger_export, INTAKE: _run_intake}


@dataclass
class RunSummary:
    """What one ``run_pending`` did."""

    done: int = 0
    failed: int = 0
    lost: int = 0  # finished by a runner that no longer held the job: nothing committed
    recovered: int = 0  # stale jobs queued again or failed

    @property
    def count(self) -> int:
        return self.done + self.failed + self.lost

    def add(self, state: str) -> None:
        if state == DONE:
            self.done += 1
        elif state == FAILED:
            self.failed += 1
        else:
            self.lost += 1

    def describe(self) -> str:
        text = f"后台任务：完成{self.done}个，失败{self.failed}个"
        if self.recovered:
            text += f"，处理中断的{self.recovered}个"
        return text


def run_pending(app: Flask, *, clock: Callable[[], dt.datetime] = utcnow, limit: int | None = None) -> RunSummary:
    """Recover stale jobs, then run queued jobs one after another until none is left (or ``limit``)."""
    summary = RunSummary()
    maker = app.extensions["tracker.sessionmaker"]
    with app.app_context():
        with maker() as s:
            summary.recovered = recover_stale(s, clock())
        while limit is None or summary.count < limit:
            with maker() as s:
                held = claim(s, clock())
            if held is None:
                break
            summary.add(run_claimed(app, held, clock))
    return summary


def run_claimed(app: Flask, held: Claim, clock: Callable[[], dt.datetime] = utcnow) -> str:
    """Run a job this runner has claimed, and end it: DONE, FAILED, or "lost" (no longer ours)."""
    engine = app.extensions["tracker.engine"]
    folder = Path(app.config["JOBS_FOLDER"])
    with Heartbeat(engine, held, clock), app.extensions["tracker.sessionmaker"]() as s:
        job = s.get(BackgroundJob, held.job_id)
        ctx = JobContext(s, job, job.membership, clock(), folder, Progress(engine, held, clock))
        try:
            outcome = _execute(ctx)
        except ActionError as exc:
            outcome = Outcome(FAILED, _msg_of(exc))
        except Exception:
            log.exception("后台任务 %s（%s）出错", held.job_id, job.kind)
            outcome = Outcome(FAILED, Msg(UNEXPECTED))
        except BaseException:  # Ctrl-C, SIGTERM: give the job back to the queue, then stop
            _release(s, held)
            raise
        return _finish(s, held, outcome, folder, clock())


def _msg_of(exc: ActionError) -> Msg:
    """A refusal's message with its msgid and parameters (a plain Chinese text when it carries none)."""
    found = getattr(exc, "msg", None)
    return found if isinstance(found, Msg) else Msg(str(exc))


def _execute(ctx: JobContext) -> Outcome:
    actor = ctx.actor
    if not actor.active or not actor.user.active or actor.user_id != ctx.job.user_id:
        raise ActionError(MEMBERSHIP_GONE)
    handler = HANDLERS.get(ctx.job.kind)
    if handler is None:
        raise ActionError("未知的后台任务类型：{kind}", kind=ctx.job.kind)
    return handler(ctx)


def _message_values(job: BackgroundJob, outcome: Outcome) -> dict[str, Any]:
    message = outcome.message if isinstance(outcome.message, Msg) else Msg(str(outcome.message))
    result = {**(job.result or {}), **outcome.result,
              "message": {"msgid": message.msgid, "params": message.params}}
    return {"state": outcome.state, "message": str(message), "result": result}


def _finish(s: Session, held: Claim, outcome: Outcome, folder: Path, now: dt.datetime) -> str:
    if outcome.state == DONE:
        try:
            return _complete(s, held, s.get(BackgroundJob, held.job_id), outcome, folder, now)
        except (SQLAlchemyError, OSError):
            log.exception("后台任务 %s 无法完成", held.job_id)
            outcome = Outcome(FAILED, Msg(UNEXPECTED), file=outcome.file)
    s.rollback()  # nothing of a failed job is kept (an invalid import writes nothing)
    if outcome.file is not None:
        outcome.file.unlink(missing_ok=True)
    job = s.get(BackgroundJob, held.job_id)
    values = _message_values(job, outcome) | {"finished_at": now, "heartbeat_at": now}
    won = s.execute(_held(held).values(**values)).rowcount == 1
    s.commit()
    return FAILED if won else "lost"


def _complete(s: Session, held: Claim, job: BackgroundJob, outcome: Outcome, folder: Path,
              now: dt.datetime) -> str:
    """DONE, in the handler's transaction: the file under its stored name, then the guarded UPDATE."""
    stored = None
    if outcome.file is not None:
        stored = secrets.token_hex(16)
        outcome.file.replace(folder / stored)
    values = _message_values(job, outcome) | {
        "progress": func.coalesce(BackgroundJob.total, BackgroundJob.progress), "stored_name": stored,
        "download_name": outcome.download_name, "finished_at": now, "heartbeat_at": now}
    try:
        if s.execute(_held(held).values(**values)).rowcount != 1:
            s.rollback()  # taken over meanwhile: this run's work is discarded
            log.warning("后台任务 %s 已被其他处理进程接管，本次结果作废", held.job_id)
            if stored:
                (folder / stored).unlink(missing_ok=True)
            return "lost"
        s.commit()
    except BaseException:
        if stored:
            (folder / stored).unlink(missing_ok=True)
        raise
    return DONE


def _release(s: Session, held: Claim) -> None:
    """Put an interrupted job back in the queue (the attempt does not count)."""
    try:
        s.rollback()
        job = s.get(BackgroundJob, held.job_id)
        attempts = max(int((job.result or {}).get("attempts", 1)) - 1, 0)
        s.execute(_held(held).values(state=QUEUED, progress=0, total=None, message=WAITING,
                                     result={"attempts": attempts}))
        s.commit()
    except SQLAlchemyError:
        log.exception("后台任务 %s 未能放回队列；%s后由其他处理进程恢复", held.job_id, STALE_AFTER)


# --- cleaning up -----------------------------------------------------------------------------------------


def cleanup(s: Session, now: dt.datetime, folder: Path, keep_days: int) -> int:
    """Delete the files (results and uploaded workbooks) older than ``keep_days`` that no queued or running
    job needs, and forget the result files of jobs finished before then; the jobs stay listed. Returns
    the number of files deleted; the caller commits."""
    cutoff = now - dt.timedelta(days=keep_days)
    needed = {str((job.params or {}).get("upload")) for job in s.scalars(
        select(BackgroundJob).where(BackgroundJob.state.in_(OPEN_STATES)))}
    removed = 0
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and path.name not in needed and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
                removed += 1
    expired = s.execute(update(BackgroundJob).where(
        BackgroundJob.state.in_((DONE, FAILED)), BackgroundJob.stored_name.is_not(None),
        or_(BackgroundJob.finished_at < cutoff, BackgroundJob.finished_at.is_(None)))
        .values(stored_name=None).execution_options(synchronize_session=False)).rowcount
    if removed or expired:
        record_event(s, None, now, "cleanup", entity="background_job",
                     data={"files": removed, "jobs": expired, "keep_days": keep_days})
    return removed
