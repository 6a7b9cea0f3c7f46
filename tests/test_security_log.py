"""安全日志 (issue 9, item 3): logins, logouts, account and membership changes, tokens, exports, downloads
and backups are recorded with who, through which membership and from where; kept at least six months
(SECURITY_LOG_KEEP_DAYS, cleaned by the scheduler); shown to admins within their scope, filtered and paged
by keyset."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from config import Config
from tests.conftest import NOW, csrf_token, login
from tracker import archive, jobs, securitylog, settings, storage, tokens
from tracker.models import ApiToken, Evidence, LedgerArchive, SecurityLog
from tracker.operations import perform
from tracker.scheduler import job, run_job
from tracker.timeutil import local_date, utcnow

ADDR = "10.43.1.7"  # the client's address as the app sees it (REMOTE_ADDR, or X-Forwarded-For behind nginx)


def entries(s, kind: str | None = None) -> list[SecurityLog]:
    s.expire_all()
    query = select(SecurityLog).order_by(SecurityLog.id)
    return list(s.scalars(query.where(SecurityLog.kind == kind) if kind else query))


def last(s, kind: str) -> SecurityLog:
    found = entries(s, kind)
    assert found, f"no {kind} entry"
    return found[-1]


def client_from(app, addr: str = ADDR):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


# --- what is recorded ------------------------------------------------------------------------------------


def test_logins_failures_and_logouts_are_recorded_with_the_address(app, world, s):
    client = client_from(app)
    assert login(client, "unit_yh", "wrong-password-1").status_code == 401
    assert login(client, "no_such_person", "wrong-password-1").status_code == 401
    assert login(client, "unit_yh").status_code == 302
    html = page(client, "/todo")
    client.post("/logout", data={"csrf_token": csrf_token(html)})
    found = [(e.kind, e.username, e.user_id, e.remote_addr, e.detail.get("reason"))
             for e in entries(s) if e.kind.startswith(("login", "logout"))]
    yh = world.user("unit_yh").id
    assert found == [("login_failed", "unit_yh", yh, ADDR, "wrong_password"),
                     ("login_failed", "no_such_person", None, ADDR, "no_such_user"),
                     ("login_ok", "unit_yh", yh, ADDR, None),
                     ("logout", "unit_yh", yh, ADDR, None)]
    assert all(e.at is not None for e in entries(s))


def test_account_membership_and_token_changes_are_recorded_with_the_acting_admin(app, world, s):
    admin = client_from(app, "10.43.0.2")
    login(admin, "admin_hn")
    html = page(admin, "/admin/users")
    admin.post("/admin/users", data={
        "csrf_token": csrf_token(html), "username": "pingjiang_new", "display_name": "平江县新用户",
        "password": "Pingjiang-2026", "unit_id": world.units["平江县人民政府"].id, "role": "unit"})
    created = last(s, "user_created")
    assert created.username == "pingjiang_new" and created.membership_id == world.m["admin_hn"].id
    assert created.remote_addr == "10.43.0.2" and created.detail == {"by": "admin_hn"}
    added = last(s, "membership_added")
    assert added.user_id == created.user_id
    assert (added.detail["unit"], added.detail["role"]) == ("平江县人民政府", "unit")

    target = world.user("unit_yx")
    html = page(admin, f"/admin/users/{target.id}")
    admin.post(f"/admin/users/{target.id}/active/0", data={"csrf_token": csrf_token(html)})
    admin.post(f"/admin/users/{target.id}/active/1", data={"csrf_token": csrf_token(html)})
    assert [e.kind for e in entries(s) if e.user_id == target.id and e.kind.startswith("user_")][-2:] == [
        "user_deactivated", "user_activated"]

    user = client_from(app, "10.43.5.5")
    login(user, "sup_xt")
    html = page(user, "/profile")
    made = user.post("/profile/tokens", data={"csrf_token": csrf_token(html), "name": "省级平台对接",
                                              "membership_id": world.m["sup_xt"].id})
    secret = re.search(r'id="new-token">(zg_[^<]+)<', made.get_data(as_text=True)).group(1)
    created = last(s, "token_created")
    assert created.user_id == world.user("sup_xt").id and created.remote_addr == "10.43.5.5"
    assert created.detail["name"] == "省级平台对接" and secret not in str(created.detail)
    token_id = s.scalar(select(func.max(ApiToken.id)))
    user.post(f"/profile/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(page(user, "/profile"))})
    revoked = last(s, "token_revoked")
    assert revoked.detail["reason"] == "by_user" and "by" not in revoked.detail


def test_exports_and_downloads_on_the_web_are_recorded(app, world, s):
    task = world.assigned(title="涓水直排口污水直排湘江")
    s.commit()
    archive.archive_month(s, "2026-02", NOW, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn")
    s.commit()
    client = client_from(app)
    login(client, "sup_xt")
    assert client.get("/tasks/export.csv?q=涓水").status_code == 200
    xiangtan = world.regions["湘潭市"].id
    assert client.get(f"/reports/ledger?region={xiangtan}&month=2026-03&format=csv").status_code == 200
    saved = s.scalar(select(LedgerArchive).where(LedgerArchive.region_id == xiangtan))
    assert client.get(f"/archives/{saved.id}").status_code == 200

    photo = storage.store(Path(app.config["UPLOAD_FOLDER"]), io.BytesIO(b"\xff\xd8\xff\xe0photo"), kind="after",
                          filename="涓水现场照片.jpg")
    world.advance(task, "verifying", files=[photo])
    s.commit()
    evidence = s.scalar(select(Evidence).where(Evidence.original_name == "涓水现场照片.jpg"))
    unit = client_from(app, "10.43.9.9")
    login(unit, "unit_yh")
    assert unit.get(f"/evidence/{evidence.id}").status_code == 200

    exports = entries(s, "export")
    assert [(e.detail["what"], e.user_id, e.membership_id) for e in exports] == [
        (securitylog.WHAT_TASK_LIST, world.user("sup_xt").id, world.m["sup_xt"].id),
        (securitylog.WHAT_LEDGER, world.user("sup_xt").id, world.m["sup_xt"].id)]
    assert unquote(exports[0].detail["query"]) == "q=涓水" and exports[1].detail["region"] == "湘潭市"
    downloads = entries(s, "download")
    assert [(d.detail["what"], d.username, d.remote_addr) for d in downloads] == [
        (securitylog.WHAT_ARCHIVE, "sup_xt", ADDR), (securitylog.WHAT_EVIDENCE, "unit_yh", "10.43.9.9")]
    assert downloads[1].detail["file"] == "涓水现场照片.jpg" and downloads[1].detail["task"] == task.id


def test_a_background_jobs_file_download_is_recorded(app, world, s):
    world.assigned()
    s.commit()
    made = jobs.submit(s, world.m["sup_xt"], NOW, jobs.LEDGER_EXPORT,
                       {"region_id": world.regions["湘潭市"].id, "month": "2026-03", "format": "xlsx"})
    s.commit()
    jobs.run_pending(app, clock=lambda: NOW)
    client = client_from(app)
    login(client, "sup_xt")
    assert client.get(f"/jobs/{made.id}/download").status_code == 200
    entry = last(s, "download")
    assert entry.detail["what"] == securitylog.WHAT_JOB_FILE and entry.detail["file"].endswith(".xlsx")
    assert entry.user_id == world.user("sup_xt").id


def test_api_exports_and_downloads_are_recorded_with_the_token(app, client, world, s):
    task = world.assigned()
    perform(s, task, "sign", world.m["unit_yh"], NOW)
    s.commit()
    archive.archive_month(s, "2026-02", NOW, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn")
    s.commit()
    m = world.m["sup_xt"]
    made = tokens.create_token(s, m, NOW, m.user, m, "省级平台对接")
    s.commit()
    headers = {"Authorization": f"Bearer {made.secret}"}
    assert client.get("/api/v1/ledger?format=csv", headers=headers).status_code == 200
    saved = s.scalar(select(LedgerArchive).where(LedgerArchive.region_id == world.regions["湘潭市"].id))
    assert client.get(f"/api/v1/archives/{saved.id}/file", headers=headers).status_code == 200
    export, download = last(s, "export"), last(s, "download")
    assert export.detail["via"] == "api" and export.detail["prefix"] == made.token.prefix
    assert export.detail["what"] == securitylog.WHAT_LEDGER and export.membership_id == m.id
    assert download.detail["what"] == securitylog.WHAT_ARCHIVE and download.user_id == m.user_id


def test_cli_backups_and_ledger_exports_are_recorded(app, world, s, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "zhenggai-2026-03-02.tar.gz"
    assert runner.invoke(args=["backup", "--out", str(out)]).exit_code == 0
    backup = last(s, "backup")
    assert backup.detail["file"] == str(out.resolve()) and backup.detail["by"] == securitylog.BY_COMMAND_LINE
    assert backup.user_id is None and backup.remote_addr == ""
    ledger_file = tmp_path / "湘潭市台账.xlsx"
    result = runner.invoke(args=["ledger", "export", "--month", "2026-03", "--region", "湘潭市", "--out",
                                 str(ledger_file)])
    assert result.exit_code == 0, result.output
    export = last(s, "export")
    assert export.detail["region"] == "湘潭市" and export.detail["file"] == str(ledger_file.resolve())


def test_an_unknown_kind_is_refused(s):
    with pytest.raises(ValueError):
        securitylog.record(s, "something_else", now=NOW)


# --- kept at least six months -------------------------------------------------------------------------------


def test_the_keep_days_default_to_400_and_fewer_than_183_are_refused():
    assert Config(environ={"SECRET_KEY": "k"}, instance_path="/tmp/zg-config").SECURITY_LOG_KEEP_DAYS == 400
    assert Config(environ={"SECRET_KEY": "k", "SECURITY_LOG_KEEP_DAYS": "183"},
                  instance_path="/tmp/zg-config").SECURITY_LOG_KEEP_DAYS == 183
    with pytest.raises(ValueError, match="至少保留六个月"):
        Config(environ={"SECRET_KEY": "k", "SECURITY_LOG_KEEP_DAYS": "182"}, instance_path="/tmp/zg-config")


def test_the_scheduler_deletes_only_entries_older_than_the_kept_days(app, world, s):
    now = utcnow()
    for days, name in [(401, "too_old"), (399, "kept"), (150, "recent"), (0, "today")]:
        securitylog.record(s, "login_ok", now=now - dt.timedelta(days=days), username=name)
    s.commit()
    assert app.config["SECURITY_LOG_KEEP_DAYS"] == 400
    assert run_job(app, job("security_log_cleanup"), now=now) is True
    kept = {e.username for e in entries(s, "login_ok")}
    assert kept == {"kept", "recent", "today"}
    with pytest.raises(ValueError, match="至少保留六个月"):
        securitylog.cleanup(s, now, 100)
    s.rollback()
    assert {e.username for e in entries(s, "login_ok")} == kept
    app.config["SECURITY_LOG_KEEP_DAYS"] = 183
    run_job(app, job("security_log_cleanup"), now=now)
    assert {e.username for e in entries(s, "login_ok")} == {"recent", "today"}
    assert job("security_log_cleanup").description and "03:10" in job("security_log_cleanup").when


# --- the admin page ------------------------------------------------------------------------------------------


def seed(s, world):
    """Entries about users of 湘潭市 (雨湖区) and 株洲市 (攸县), and a failed login of nobody."""
    base = NOW - dt.timedelta(days=3)
    rows = [("unit_yh", "login_ok", 0), ("unit_yx", "login_ok", 1), ("unit_yx", "login_failed", 2),
            ("", "login_failed", 3), ("unit_yh", "download", 4), ("unit_yx", "export", 5)]
    for username, kind, hours in rows:
        user = world.user(username) if username else None
        securitylog.record(s, kind, now=base + dt.timedelta(hours=hours), user=user, username=username or "guess_who",
                           remote_addr="10.1.1.1")
    s.commit()


def usernames(html: str) -> list[str]:
    return re.findall(r'<td data-label="用户名">([^<]*)</td>', html)


def test_only_admins_open_the_log_and_the_nav_links_it_for_them(client, world):
    login(client, "sup_hn")
    assert client.get("/admin/security-log").status_code == 403
    assert "/admin/security-log" not in page(client, "/todo")
    login(client, "admin_zz")
    assert "/admin/security-log" in page(client, "/todo")
    client.post("/logout", data={"csrf_token": csrf_token(page(client, "/todo"))})
    assert client.get("/admin/security-log").status_code == 302


def test_a_province_admin_sees_everything_and_a_city_admin_only_the_users_of_their_region(client, world, s):
    seed(s, world)
    login(client, "admin_hn")
    window = "/admin/security-log?from=2026-02-20&to=2026-03-01"  # the seeded entries, newest first
    assert usernames(page(client, window)) == ["unit_yx", "unit_yh", "guess_who", "unit_yx", "unit_yx", "unit_yh"]
    login(client, "admin_zz")  # 株洲市: 攸县's user only, not 雨湖区's nor a login of no known user
    assert usernames(page(client, window)) == ["unit_yx", "unit_yx", "unit_yx"]
    assert usernames(page(client, "/admin/security-log?username=unit_yh")) == []


def test_filters_by_kind_username_and_dates(client, world, s):
    seed(s, world)
    login(client, "admin_hn")
    assert usernames(page(client, "/admin/security-log?kind=login_failed")) == ["guess_who", "unit_yx"]
    only_yx = usernames(page(client, "/admin/security-log?username=UNIT_YX&from=2026-02-20"))
    assert only_yx and set(only_yx) == {"unit_yx"}
    assert usernames(page(client, "/admin/security-log?username=guess_who")) == ["guess_who"]
    day = local_date(NOW - dt.timedelta(days=3))
    on_day = usernames(page(client, f"/admin/security-log?from={day}&to={day}"))
    assert len(on_day) == 6
    assert usernames(page(client, f"/admin/security-log?to={day - dt.timedelta(days=1)}")) == []


def test_the_log_pages_by_keyset_without_gaps_or_repeats(app, client, world, s):
    for i in range(7):  # two entries share each instant: the id breaks the tie
        securitylog.record(s, "download", now=NOW - dt.timedelta(minutes=i // 2), username=f"dl{i}")
    s.commit()
    app.config["PAGE_SIZE"] = 3
    login(client, "admin_hn")
    seen, url = [], "/admin/security-log?kind=download"
    while url:
        html = page(client, url)
        seen += usernames(html)
        found = re.search(r'<a rel="next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == ["dl1", "dl0", "dl3", "dl2", "dl5", "dl4", "dl6"]  # newest first; a tie by id, highest first


@pytest.mark.parametrize("query", ["after=!!!", "after=bm90IGpzb24", "from=2026-13-45&to=yesterday",
                                   "kind=<script>", "username=" + "x" * 500, "after=WzEsMl0"])
def test_malformed_filters_and_cursors_show_the_first_page(client, world, s, query):
    seed(s, world)
    login(client, "admin_hn")
    html = page(client, "/admin/security-log?" + query)
    assert "<script>" not in html.split("<main>")[1]


def test_the_page_shows_the_entry_in_the_users_language(client, world, s):
    securitylog.record(s, "role_changed", now=NOW, user=world.user("unit_yh"), membership=world.m["admin_hn"],
                       detail={"by": "admin_hn", "unit": "雨湖区人民政府", "old_role": "unit", "role": "viewer"})
    s.commit()
    login(client, "admin_hn")
    html = page(client, "/admin/security-log")
    assert "变更角色" in html and "原角色：责任单位" in html and "角色：查阅" in html
    assert "湖南省生态环境保护督察工作领导小组办公室 · 管理员" in html
    client.post("/locale", data={"csrf_token": csrf_token(html), "locale": "en"})
    english = page(client, "/admin/security-log")
    assert "Security log" in english and "Change role" in english and "Previous role" in english
    assert "变更角色" not in english.split("<main>")[1]
