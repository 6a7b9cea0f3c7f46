"""Monthly archives: the first working day of a month, once per region with a supervisor or viewer,
stored for good, mailed, listed and served within scope."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import login
from tracker import archive, calendars, settings
from tracker.models import LedgerArchive, OutboxMail
from tracker.operations import perform
from tracker.scheduler import job, run_job
from tracker.timeutil import SHANGHAI

D = dt.date


@pytest.mark.parametrize("day, first", [
    (D(2026, 1, 4), True),  # a Sunday worked (元旦调休)
    (D(2026, 1, 5), False),
    (D(2026, 5, 6), True),  # after 劳动节
    (D(2026, 10, 8), True),  # after 国庆
    (D(2026, 10, 9), False),
    (D(2026, 6, 1), True),
])
def test_the_first_working_day_of_a_month(s, day, first):
    assert archive.is_first_workday_of_month(calendars.load(s), day) is first


def test_previous_month():
    assert archive.previous_month(D(2026, 1, 4)) == "2025-12"
    assert archive.previous_month(D(2026, 10, 8)) == "2026-09"


def archive_september(s, app):
    now = dt.datetime(2026, 10, 8, 7, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    return archive.archive_month(s, "2026-09", now, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                                 base_url="https://zg.example.cn")


def test_each_region_with_a_supervisor_or_viewer_gets_one_archive_once(app, world, s):
    world.assigned()
    s.commit()
    run = archive_september(s, app)
    s.commit()
    names = sorted(a.region.name for a in run.created)
    assert names == sorted(["湖南省", "湘潭市", "株洲市", "雨湖区"])
    for item in run.created:
        path = Path(app.config["LEDGER_FOLDER"]) / item.stored_name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256 and item.as_of == D(2026, 9, 30)
    mails = s.scalars(select(OutboxMail).where(OutboxMail.subject.contains("月度台账"))).all()
    to = sorted(addr for m in mails for addr in m.recipients)
    assert "sup_xt@example.cn" in to and "viewer_xt@example.cn" in to and "unit_yh@example.cn" not in to
    assert all(m.attachments and m.attachments[0]["name"].endswith(".xlsx") for m in mails)

    again = archive_september(s, app)
    s.commit()
    assert again.created == [] and again.skipped == 4
    assert s.scalar(select(func.count()).select_from(LedgerArchive)) == 4
    assert s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.subject.contains("月度台账"))) \
        == len(mails)


def test_the_monthly_job_runs_on_the_first_working_day_only(app, world, s):
    first = dt.datetime(2026, 10, 8, 7, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    assert run_job(app, job("monthly_ledger"), now=first) is True
    assert run_job(app, job("monthly_ledger"), now=first + dt.timedelta(days=1)) is False
    months = set(s.scalars(select(LedgerArchive.month)))
    assert months == {"2026-09"}


def test_archives_are_listed_and_served_within_scope(app, world, s, client):
    archive_september(s, app)
    s.commit()
    xiangtan = s.scalar(select(LedgerArchive).where(LedgerArchive.region_id == world.regions["湘潭市"].id))
    zhuzhou = s.scalar(select(LedgerArchive).where(LedgerArchive.region_id == world.regions["株洲市"].id))
    login(client, "sup_xt")
    listing = client.get("/archives").get_data(as_text=True)
    assert "湘潭市" in listing and "株洲市" not in listing
    response = client.get(f"/archives/{xiangtan.id}")
    assert response.status_code == 200 and response.data[:2] == b"PK"
    assert client.get(f"/archives/{zhuzhou.id}").status_code == 404
    login(client, "unit_yh")
    assert client.get("/archives").status_code == 403


def test_the_report_page_shows_how_live_figures_differ_from_the_archive(app, world, s, client):
    september = dt.datetime(2026, 9, 10, 9, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)
    task = world.assigned(now=september, deadline=D(2026, 12, 31))
    world.advance(task, "verifying", now=september)
    s.commit()
    archive_september(s, app)
    s.commit()
    login(client, "sup_xt")
    url = f"/reports?region={world.regions['湘潭市'].id}&as_of=2026-09-30"
    html = client.get(url).get_data(as_text=True)
    assert "与该日归档的台账一致" in html
    # A 销号日期 entered later, inside September: the live figure for 30 September changes, the archive not.
    perform(s, s.merge(task), "close", world.m["sup_hn"], september + dt.timedelta(days=60), opinion="验收合格",
            closed_on=D(2026, 9, 25))
    s.commit()
    html = client.get(url).get_data(as_text=True)
    assert "以下统计与归档时不同" in html and "已完成 0 → 1" in html


def test_a_large_archive_is_mailed_as_a_link(app, world, s):
    now = dt.datetime(2026, 10, 8, 7, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    archive.archive_month(s, "2026-09", now, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn", attachment_limit=1)
    s.commit()
    mails = s.scalars(select(OutboxMail).where(OutboxMail.subject.contains("月度台账"))).all()
    assert mails and all(not m.attachments and "https://zg.example.cn/archives/" in m.text for m in mails)
