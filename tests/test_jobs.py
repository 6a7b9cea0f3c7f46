"""后台任务 (background jobs): a large ledger export and an Excel import run outside the request — queued,
claimed by exactly one runner, with progress committed while they run, ended done with their file or
failed with a Chinese message and nothing half-written, recovered when their process died, downloaded
only by their owner while in scope, and cleaned up after the kept days."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import event, func, select, text

from tests.conftest import NOW, csrf_token, login
from tests.test_intake import FIRST_DATA_ROW, IMPORT_NOW, _column, _with, save
from tracker import jobs, ledger, scheduler, storage
from tracker.accounts import add_membership, end_membership
from tracker.audit import ActionError
from tracker.models import BackgroundJob, Event, Task

MARCH = "2026-03"
MINUTE = dt.timedelta(minutes=1)


def at(moment: dt.datetime):
    return lambda: moment


@pytest.fixture
def tasks(world, s):
    """Two tasks of 湘潭市 (雨湖区, 湘乡市) and one of 株洲市 (攸县), assigned on NOW."""
    made = [world.assigned(title="双马填埋场渗滤液处理不到位"),
            world.assigned(title="涓水直排口生活污水直排", region="湘乡市", lead="湘乡市人民政府"),
            world.assigned(title="攸县矿山生态修复", region="攸县", lead="攸县人民政府", actor="sup_zz")]
    s.commit()
    return made


def folder_of(app) -> Path:
    return Path(app.config["JOBS_FOLDER"])


def submit_export(s, world, who="sup_xt", region="湘潭市", fmt="xlsx", month=MARCH) -> BackgroundJob:
    job = jobs.submit(s, world.m[who], NOW, jobs.LEDGER_EXPORT,
                      {"region_id": world.regions[region].id, "month": month, "format": fmt})
    s.commit()
    return job


def submit_import(app, s, world, path: Path, who="sup_xt", **options) -> BackgroundJob:
    with path.open("rb") as fh:
        stored = storage.store(folder_of(app), fh, kind="intake", filename=path.name, content_type="")
    job = jobs.submit(s, world.m[who], IMPORT_NOW, jobs.INTAKE, options, upload=stored)
    s.commit()
    return job


def fresh(s, job: BackgroundJob) -> BackgroundJob:
    s.expire_all()
    return s.get(BackgroundJob, job.id)


def count(s, model, *where) -> int:
    s.expire_all()
    return s.scalar(select(func.count()).select_from(model).where(*where))


def utc(value: dt.datetime) -> dt.datetime:
    """A stored instant as aware UTC (SQLite gives it back naive)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def titles(path: Path) -> set[str]:
    ws = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)["整改台账"]
    headers = [c.value for c in next(ws.iter_rows(min_row=2, max_row=2))]
    column = headers.index("问题名称")
    return {row[column] for row in ws.iter_rows(min_row=3, values_only=True) if row[column]}


# --- the ledger export as a job ----------------------------------------------------------------------


def test_an_export_job_runs_to_done_with_its_file(app, s, world, tasks):
    job = submit_export(s, world)
    assert (job.state, job.progress, job.stored_name) == (jobs.QUEUED, 0, None)
    submitted = s.scalar(select(Event).where(Event.entity == "background_job", Event.action == "submit"))
    assert submitted.membership_id == world.m["sup_xt"].id and submitted.entity_id == job.id
    assert submitted.data["kind"] == "ledger_export" and submitted.data["region"] == "湘潭市"

    summary = jobs.run_pending(app, clock=at(NOW))
    assert (summary.done, summary.failed) == (1, 0)
    job = fresh(s, job)
    assert job.state == jobs.DONE and (job.progress, job.total) == (2, 2)
    assert job.finished_at is not None and job.result["attempts"] == 1 and job.result["rows"] == 2
    assert str(jobs.message_of(job)) == job.message == "已生成2026年3月台账：2项任务"
    assert job.download_name == "湘潭市整改销号台账2026年3月.xlsx"
    path = jobs.result_path(folder_of(app), job)
    assert titles(path) == {"双马填埋场渗滤液处理不到位", "涓水直排口生活污水直排"}  # not 攸县's
    assert sorted(p.name for p in folder_of(app).iterdir()) == [job.stored_name]  # no part file left over
    exported = s.scalar(select(Event).where(Event.entity == "ledger", Event.action == "export"))
    assert exported.data["job"] == job.id and exported.data["rows"] == 2
    assert jobs.run_pending(app, clock=at(NOW)).count == 0


def test_a_csv_export_job(app, s, world, tasks):
    job = submit_export(s, world, region="湖南省", fmt="csv", who="sup_hn")
    jobs.run_pending(app, clock=at(NOW))
    job = fresh(s, job)
    assert job.state == jobs.DONE and job.download_name.endswith(".csv") and jobs.mimetype(job) == "text/csv"
    data = jobs.result_path(folder_of(app), job).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and "攸县矿山生态修复" in data.decode("utf-8-sig")


@pytest.mark.parametrize("who, region, month, fmt, message", [
    ("unit_yh", "雨湖区", MARCH, "xlsx", "只有督办、查阅人员和管理员可以导出台账"),
    ("sup_xt", "株洲市", MARCH, "xlsx", "该地区不在您的管辖范围内"),
    ("sup_xt", "湘潭市", "2026-13", "xlsx", "月份“2026-13”无效"),
    ("sup_xt", "湘潭市", "2099-01", "xlsx", "不能导出尚未开始的月份"),
    ("sup_xt", "湘潭市", MARCH, "pdf", "只能导出.xlsx或.csv文件"),
])
def test_a_bad_export_is_refused_at_once_and_queues_nothing(s, world, who, region, month, fmt, message):
    with pytest.raises(ActionError, match=message):
        submit_export(s, world, who=who, region=region, month=month, fmt=fmt)
    s.rollback()
    assert count(s, BackgroundJob) == 0


def test_progress_is_committed_while_the_job_runs(app, s, world, tasks, monkeypatch):
    monkeypatch.setattr(ledger, "BATCH", 1)  # one task per batch: a progress step per task
    monkeypatch.setattr(jobs, "PROGRESS_SECONDS", 0)
    engine = app.extensions["tracker.engine"]
    steps = []

    def watch(_conn, _cursor, statement, parameters, _context, _many):
        if statement.startswith("UPDATE background_job SET progress"):
            steps.append(parameters["progress"] if isinstance(parameters, dict) else parameters[0])

    job = submit_export(s, world)
    event.listen(engine, "before_cursor_execute", watch)
    try:
        jobs.run_pending(app, clock=at(NOW))
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert steps == [0, 1, 2]
    assert (fresh(s, job).progress, fresh(s, job).total) == (2, 2)


def test_progress_is_seen_by_others_before_the_job_ends_and_only_while_the_claim_holds(app, s, world, tasks):
    job = submit_export(s, world)
    other = app.extensions["tracker.sessionmaker"]()
    held = jobs.claim(other, NOW)
    other.close()
    engine = app.extensions["tracker.engine"]
    progress = jobs.Progress(engine, held, at(NOW + MINUTE), interval=3600)
    progress(1, 3, jobs.STAGE_EXPORT)
    job = fresh(s, job)
    assert (job.state, job.progress, job.total, job.message) == (jobs.RUNNING, 1, 3, "正在生成台账")
    assert job.heartbeat_at is not None
    progress(2, 3, jobs.STAGE_EXPORT)  # within the interval, same stage: not written
    assert fresh(s, job).progress == 1
    progress(3, 3, "正在写入")  # a new stage is always written
    assert (fresh(s, job).progress, fresh(s, job).message) == (3, "正在写入")
    jobs.Progress(engine, jobs.Claim(job.id, NOW - MINUTE), at(NOW), interval=0)(0, 9, "x")  # not the claim
    assert fresh(s, job).total == 3


# --- the import as a job -----------------------------------------------------------------------------


def test_a_failed_import_keeps_its_problems_and_writes_nothing(app, s, world, tmp_path):
    bad = submit_import(app, s, world, save(tmp_path, _with("XT-001", 整改时限="尽快完成")))
    summary = jobs.run_pending(app, clock=at(IMPORT_NOW))
    assert (summary.done, summary.failed) == (0, 1)
    bad = fresh(s, bad)
    assert bad.state == jobs.FAILED and bad.message == "导入失败：发现1个问题，未写入任何数据"
    report = bad.result["report"]
    assert report["ok"] is False and report["error_count"] == 1 and report["file"] == "湘潭市整改台账.xlsx"
    problem = report["errors"][0]
    assert (problem["row"], problem["column"]) == (FIRST_DATA_ROW, _column("整改时限"))
    assert "无法识别的时限要求：“尽快完成”" in problem["message"]
    assert bad.total == 6 and bad.stored_name is None
    assert count(s, Task) == 0 and count(s, Event, Event.action == "import") == 0

    dry = submit_import(app, s, world, save(tmp_path), dry_run=True)
    jobs.run_pending(app, clock=at(IMPORT_NOW))
    assert fresh(s, dry).message == "校验通过（试运行，未写入）：将新建6项，更新0项，未变0项"
    assert count(s, Task) == 0

    good = submit_import(app, s, world, save(tmp_path))
    jobs.run_pending(app, clock=at(IMPORT_NOW))
    good = fresh(s, good)
    assert good.state == jobs.DONE and good.message == "已导入：新建6项，更新0项，未变0项"
    assert good.result["report"]["created"] == 6 and count(s, Task) == 6
    imported = s.scalar(select(Event).where(Event.entity == "import", Event.action == "import"))
    assert imported.membership_id == world.m["sup_xt"].id


def test_an_import_is_refused_for_viewers_and_without_a_file(app, s, world, tmp_path):
    with pytest.raises(ActionError, match="只有督办人员和管理员可以导入台账"):
        submit_import(app, s, world, save(tmp_path), who="viewer_xt")
    s.rollback()
    with pytest.raises(ActionError, match="请选择要导入的台账文件"):
        jobs.submit(s, world.m["sup_xt"], NOW, jobs.INTAKE, {})
    s.rollback()
    assert count(s, BackgroundJob) == 0


def test_a_runner_that_lost_its_job_commits_nothing_of_the_import(app, s, world, tmp_path):
    job = submit_import(app, s, world, save(tmp_path))
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as other:
        first = jobs.claim(other, IMPORT_NOW)
    with maker() as other:  # the first runner looked dead: its job is queued again and taken by another
        assert jobs.recover_stale(other, IMPORT_NOW + jobs.STALE_AFTER + MINUTE) == 1
        second = jobs.claim(other, IMPORT_NOW + jobs.STALE_AFTER + MINUTE)
    assert second is not None and second != first
    assert jobs.run_claimed(app, first, at(IMPORT_NOW)) == "lost"
    assert count(s, Task) == 0 and fresh(s, job).state == jobs.RUNNING
    assert jobs.run_claimed(app, second, at(IMPORT_NOW)) == jobs.DONE
    assert count(s, Task) == 6 and fresh(s, job).result["attempts"] == 2


# --- two runners, dead runners ---------------------------------------------------------------------


def test_a_queued_job_is_taken_by_exactly_one_runner(app, s, world, tasks):
    first, second = submit_export(s, world), submit_export(s, world)
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as a, maker() as b:
        # Both runners read the same candidate; the guarded UPDATE lets only one have it.
        seen = [x.scalar(select(BackgroundJob.id).where(BackgroundJob.state == jobs.QUEUED)
                         .order_by(BackgroundJob.id)) for x in (a, b)]
        assert seen == [first.id, first.id]
        assert jobs.take(a, first.id, NOW) is True
        a.commit()
        assert jobs.take(b, first.id, NOW) is False
        b.rollback()
        assert jobs.claim(b, NOW) == jobs.Claim(second.id, NOW)
        assert jobs.claim(a, NOW) is None


@pytest.mark.postgres_only
def test_skip_locked_lets_a_second_runner_pass_a_job_being_claimed(app, s, world, tasks):
    if app.extensions["tracker.engine"].dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    first, second = submit_export(s, world), submit_export(s, world)
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as a, maker() as b:
        a.execute(select(BackgroundJob.id).where(BackgroundJob.id == first.id).with_for_update())  # mid-claim
        b.execute(text("SET lock_timeout = '3s'"))  # would fail, not hang, if the claim waited on the lock
        assert jobs.claim(b, NOW) == jobs.Claim(second.id, NOW)
        assert jobs.claim(b, NOW) is None  # the locked one is skipped, not waited for
        a.rollback()
        assert jobs.claim(b, NOW) == jobs.Claim(first.id, NOW)


def test_runners_side_by_side_run_each_job_once(app, s, world, tasks):
    queued = [submit_export(s, world, fmt="csv") for _ in range(4)]
    summaries = []

    def runner():
        summaries.append(jobs.run_pending(app, clock=at(NOW)))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(x.done for x in summaries) == 4 and sum(x.count for x in summaries) == 4
    assert all(fresh(s, job).state == jobs.DONE and fresh(s, job).result["attempts"] == 1 for job in queued)
    assert count(s, Event, Event.entity == "ledger", Event.action == "export") == 4


def test_a_stale_running_job_is_queued_again_once_then_failed(app, s, world, tasks):
    job = submit_export(s, world)
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as other:
        jobs.claim(other, NOW)  # …and the process dies
    alive = jobs.run_pending(app, clock=at(NOW + 4 * MINUTE))
    assert alive.recovered == 0 and fresh(s, job).state == jobs.RUNNING
    later = NOW + jobs.STALE_AFTER + MINUTE
    with maker() as other:
        assert jobs.recover_stale(other, later) == 1
    job = fresh(s, job)
    assert (job.state, job.message) == (jobs.QUEUED, "处理进程中断，已重新排队")
    with maker() as other:
        jobs.claim(other, later)  # the second attempt dies too
    summary = jobs.run_pending(app, clock=at(later + jobs.STALE_AFTER + MINUTE))
    assert (summary.recovered, summary.count) == (1, 0)
    job = fresh(s, job)
    assert job.state == jobs.FAILED and job.message == "处理进程中断，任务未完成，请重新提交"
    assert job.result["attempts"] == 2 and job.finished_at is not None
    recovered = s.scalars(select(Event).where(Event.action == "recover").order_by(Event.id)).all()
    assert [e.data["state"] for e in recovered] == ["queued", "failed"]


def test_the_heartbeat_beats_while_a_job_runs(app, s, world, tasks):
    job = submit_export(s, world)
    with app.extensions["tracker.sessionmaker"]() as other:
        held = jobs.claim(other, NOW)
    engine = app.extensions["tracker.engine"]
    later = NOW + 30 * MINUTE
    with jobs.Heartbeat(engine, held, at(later), seconds=0.02):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and utc(fresh(s, job).heartbeat_at) != later:
            time.sleep(0.02)
    assert utc(fresh(s, job).heartbeat_at) == later
    with app.extensions["tracker.sessionmaker"]() as other:
        assert jobs.recover_stale(other, later + MINUTE) == 0  # beating: not stale


def test_a_job_of_an_ended_membership_fails_without_running(app, s, world, tasks):
    job = submit_export(s, world)
    end_membership(s, world.m["admin_hn"], NOW, world.m["sup_xt"])
    s.commit()
    assert jobs.run_pending(app, clock=at(NOW)).failed == 1
    job = fresh(s, job)
    assert job.state == jobs.FAILED and job.message == "提交任务的身份已停用，任务未执行"
    assert count(s, Event, Event.entity == "ledger") == 0 and list(folder_of(app).glob("*")) == []


def test_an_unexpected_error_fails_the_job_with_a_message_and_keeps_nothing(app, s, world, tasks, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the jobs folder should be")
    app.config["JOBS_FOLDER"] = blocked
    job = submit_export(s, world)
    assert jobs.run_pending(app, clock=at(NOW)).failed == 1
    job = fresh(s, job)
    assert job.state == jobs.FAILED and job.message == "处理时出错，任务未完成；请稍后重新提交，或联系管理员"
    assert job.stored_name is None and job.finished_at is not None
    assert count(s, Event, Event.entity == "ledger") == 0


# --- the web: submit → job page → download --------------------------------------------------------------


def post_ledger(client, region_id: int, fmt="xlsx", month=MARCH):
    token = csrf_token(client.get("/reports").get_data(as_text=True))
    return client.post("/reports/ledger", data={"csrf_token": token, "month": month, "region": region_id,
                                                "format": fmt})


def test_a_large_ledger_is_made_in_the_background_and_downloaded_by_its_owner(app, client, s, world, tasks):
    app.config["SYNC_EXPORT_MAX_TASKS"] = 1  # 湘潭市 holds two tasks
    xiangtan = world.regions["湘潭市"].id
    login(client, "sup_xt")
    assert "我的后台任务" in client.get("/reports").get_data(as_text=True)
    posted = post_ledger(client, xiangtan)
    assert posted.status_code == 302 and "/jobs/" in posted.headers["Location"]
    job = s.scalar(select(BackgroundJob))
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "排队中" in page and 'id="job-refresh"' in page and 'src="/static/js/jobs.js"' in page
    assert "<script>" not in page and "style=" not in page
    assert client.get(f"/jobs/{job.id}/status").get_json() == {
        "state": "queued", "label": "排队中", "progress": 0, "total": None, "message": "排队等待处理",
        "finished": False}
    assert "湘潭市 · 2026-03 · XLSX" in client.get("/jobs").get_data(as_text=True)
    assert client.get(f"/jobs/{job.id}/download").status_code == 404  # not done yet

    jobs.run_pending(app)
    status = client.get(f"/jobs/{job.id}/status").get_json()
    assert status["state"] == "done" and status["finished"] and status["progress"] == status["total"] == 2
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "已生成2026年3月台账：2项任务" in page and f"/jobs/{job.id}/download" in page
    download = client.get(f"/jobs/{job.id}/download")
    assert download.status_code == 200 and "filename*=UTF-8''" in download.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(download.get_data()))
    assert "整改台账" in book.sheetnames
    download.close()
    logged = s.scalar(select(Event).where(Event.entity == "background_job", Event.action == "download"))
    assert logged.entity_id == job.id and logged.membership_id == world.m["sup_xt"].id

    # A link (GET) to a large ledger queues nothing; it sends the user to the page's form.
    assert client.get(f"/reports/ledger?month={MARCH}&region={xiangtan}").status_code == 302
    assert count(s, BackgroundJob) == 1


def test_only_the_owner_sees_and_downloads_and_only_while_in_scope(app, client, s, world, tasks):
    job = submit_export(s, world)
    jobs.run_pending(app)
    login(client, "viewer_xt")  # same office, same scope: still not theirs
    for path in ("", "/status", "/download"):
        assert client.get(f"/jobs/{job.id}{path}").status_code == 404
    assert f"/jobs/{job.id}" not in client.get("/jobs").get_data(as_text=True)

    # sup_xt's supervisor membership ends; they keep a viewer one at 雨湖区.
    add_membership(s, world.m["admin_hn"], NOW, world.user("sup_xt"),
                   world.units["雨湖区突出环境问题整改办公室"], "viewer")
    end_membership(s, world.m["admin_hn"], NOW, world.m["sup_xt"])
    s.commit()
    other = app.test_client()
    login(other, "sup_xt")
    page = other.get(f"/jobs/{job.id}")
    assert page.status_code == 200 and f"/jobs/{job.id}/download" not in page.get_data(as_text=True)
    assert other.get(f"/jobs/{job.id}/download").status_code == 404


def test_a_small_ledger_is_still_sent_at_once(app, client, s, world, tasks):
    login(client, "sup_xt")
    response = post_ledger(client, world.regions["湘潭市"].id, fmt="csv")
    assert response.status_code == 200 and response.get_data().startswith(b"\xef\xbb\xbf")
    response.close()
    assert count(s, BackgroundJob) == 0


def test_units_cannot_export_and_have_no_jobs_link(app, client, world, tasks):
    login(client, "unit_yh")
    token = csrf_token(client.get("/todo").get_data(as_text=True))
    assert client.post("/reports/ledger", data={"csrf_token": token, "month": MARCH}).status_code == 403
    assert "我的后台任务" not in client.get("/todo").get_data(as_text=True)


# --- the scheduler, the command line, cleaning up ---------------------------------------------------------


def test_the_scheduler_runs_queued_jobs_every_few_seconds(app, s, world, tasks):
    spec = scheduler.job("background_jobs")
    second = dt.timedelta(seconds=1)
    assert spec.max_instances == 2 and spec.trigger.get_next_fire_time(None, NOW + second) == NOW + 5 * second
    job = submit_export(s, world)
    assert scheduler.run_job(app, spec) is True
    assert fresh(s, job).state == jobs.DONE


def test_the_command_line_lists_runs_and_cleans_up(app, s, world, tasks):
    job = submit_export(s, world)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and f"#{job.id}\t月度台账导出\t排队中" in listed.output
    assert "湘潭市 2026-03 XLSX" in listed.output and "sup_xt" in listed.output
    ran = runner.invoke(args=["jobs", "run", "--once"])
    assert ran.exit_code == 0 and "后台任务：完成1个，失败0个" in ran.output
    done = runner.invoke(args=["jobs", "list", "--state", "done"])
    assert f"#{job.id}" in done.output and "已生成2026年3月台账：2项任务" in done.output
    assert runner.invoke(args=["jobs", "list", "--state", "failed"]).output.strip() == "没有后台任务"
    kept = runner.invoke(args=["jobs", "cleanup"])
    assert kept.exit_code == 0 and "已删除0个超过7天的后台任务文件" in kept.output
    assert jobs.result_path(folder_of(app), fresh(s, job)).is_file()


def test_cleanup_deletes_old_files_but_not_those_an_open_job_needs(app, s, world, tasks, tmp_path):
    done = submit_export(s, world)
    jobs.run_pending(app)  # the real clock: finished now
    waiting = submit_import(app, s, world, save(tmp_path))
    folder = folder_of(app)
    result = jobs.result_path(folder, fresh(s, done))
    upload = folder / fresh(s, waiting).params["upload"]
    assert jobs.cleanup(s, dt.datetime.now(dt.UTC), folder, 7) == 0  # nothing is old yet
    s.commit()
    removed = jobs.cleanup(s, dt.datetime.now(dt.UTC) + dt.timedelta(days=8), folder, 7)
    s.commit()
    assert removed == 1 and not result.exists() and upload.exists()
    assert fresh(s, done).stored_name is None and fresh(s, done).state == jobs.DONE
    cleaned = s.scalar(select(Event).where(Event.action == "cleanup"))
    assert cleaned.data == {"files": 1, "jobs": 1, "keep_days": 7}
