"""Monthly ledger archives (DESIGN §7 "Archive"): on the first working day of a month, last month's
ledger is built once per region that has a supervisor or viewer, stored, and mailed to them.

An archived ledger is the official figure and never changes: one row per (region, month), which
the database enforces, and a file written once under ``LEDGER_FOLDER``. The report page compares
today's live figures for the month with the archive's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import ledger, notify, outbox
from tracker.audit import record_event
from tracker.models import LedgerArchive, Membership, Region, Role, Unit, User
from tracker.settings import TimeSettings
from tracker.timeutil import local_date
from tracker.workdays import WorkCalendar

DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024  # above this size the mail carries a link instead
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def previous_month(day: dt.date) -> str:
    first = day.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def is_first_workday_of_month(calendar: WorkCalendar, day: dt.date) -> bool:
    """2026-01-04 (a Sunday worked), 2026-05-06 and 2026-10-08 are such days."""
    return calendar.first_workday_of_month(day.year, day.month) == day


def regions_to_archive(s: Session) -> list[Region]:
    """Regions with at least one active supervisor or viewer."""
    query = (select(Region).join(Unit, Unit.region_id == Region.id).join(Membership, Membership.unit_id == Unit.id)
             .join(User, User.id == Membership.user_id)
             .where(Membership.active.is_(True), User.active.is_(True),
                    Membership.role.in_([Role.supervisor.value, Role.viewer.value]))
             .distinct().order_by(Region.path))
    return list(s.scalars(query))


def recipients(s: Session, region: Region) -> list[User]:
    return notify.region_users(s, region, [Role.supervisor.value, Role.viewer.value])


@dataclass
class ArchiveRun:
    month: str
    created: list[LedgerArchive]
    skipped: int

    def describe(self) -> str:
        names = "、".join(a.region.name for a in self.created) or "无"
        return f"{self.month}月度台账：新归档{len(self.created)}份（{names}），已有{self.skipped}份"


def archive_month(s: Session, month: str, now: dt.datetime, folder: Path, settings: TimeSettings, *,
                  base_url: str, attachment_limit: int = DEFAULT_ATTACHMENT_LIMIT) -> ArchiveRun:
    """Build, store and mail ``month``'s ledger for every region that has no archive of it yet."""
    done = set(s.scalars(select(LedgerArchive.region_id).where(LedgerArchive.month == month)))
    run = ArchiveRun(month, [], 0)
    for region in regions_to_archive(s):
        if region.id in done:
            run.skipped += 1
            continue
        archived = archive_region(s, region, month, now, folder, settings)
        if archived is None:
            run.skipped += 1
            continue
        run.created.append(archived)
        _mail(s, archived, now, folder, base_url, attachment_limit)
    return run


def archive_region(s: Session, region: Region, month: str, now: dt.datetime, folder: Path,
                   settings: TimeSettings) -> LedgerArchive | None:
    """One region's archive; None when another run made it first (the unique constraint decides)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(suffix=".xlsx", dir=folder)
    os.close(fd)
    try:
        summary = ledger.export(s, region, month, Path(temp), today=local_date(now), settings=settings)
        digest = hashlib.sha256(Path(temp).read_bytes()).hexdigest()
        stored = f"{month}/{region.id}-{digest[:16]}.xlsx"
        (folder / month).mkdir(exist_ok=True)
        os.replace(temp, folder / stored)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    archive = LedgerArchive(region_id=region.id, month=month, as_of=summary.as_of, stored_name=stored,
                            size=(folder / stored).stat().st_size, sha256=digest, rows=summary.rows,
                            figures=list(summary.figures), created_at=now)
    try:
        with s.begin_nested():
            s.add(archive)
    except IntegrityError:
        return None
    record_event(s, None, now, "archive", entity="ledger", entity_id=archive.id,
                 data={"region": region.name, "month": month, "rows": summary.rows, "sha256": digest})
    return archive


def _mail(s: Session, archive: LedgerArchive, now: dt.datetime, folder: Path, base_url: str, limit: int) -> None:
    users = recipients(s, archive.region)
    year, month = archive.month.split("-")
    title = f"{archive.region.name}突出生态环境问题整改销号台账（{year}年{int(month)}月）"
    link = f"{base_url}/archives/{archive.id}"
    attach = archive.size <= limit
    where = "台账见附件。" if attach else f"文件较大，请登录系统下载：{link}"
    text = (f"{title}已归档，截至{archive.as_of.isoformat()}，共{archive.rows}项任务。\n{where}"
            f"\n\n归档列表：{base_url}/archives")
    attachments = [{"path": str(folder / archive.stored_name), "name": f"{title}.xlsx",
                    "content_type": XLSX_TYPE}] if attach else []
    for user in users:
        notify.tell(s, [user], kind="notice", task=None, title=title, body=text, now=now, notified=True)
        if user.email:
            outbox.enqueue(s, [user.email], f"【月度台账】{title}", f"{user.display_name}：\n\n{text}", now=now,
                           attachments=attachments)


def differences(archive: LedgerArchive, live: list[dict]) -> list[dict]:
    """Rows (by group) whose live figures differ from the archived ones, with both values."""
    archived = {tuple(row["group"]): row for row in archive.figures}
    current = {tuple(row["group"]): row for row in live}
    keys = ("total", "completed", "on_schedule", "behind", "overdue", "extended")
    result = []
    for group in sorted(set(archived) | set(current)):
        old, new = archived.get(group, {}), current.get(group, {})
        changed = {k: (old.get(k, 0), new.get(k, 0)) for k in keys if old.get(k, 0) != new.get(k, 0)}
        if changed:
            result.append({"group": list(group), "changes": changed})
    return result
