"""Every page satisfies the Content-Security-Policy (issue 9, item 3): headless Chromium logs in as each role
and opens every HTML page of the app — 待办, lists, the task page and its forms, 总览, reports, archives,
jobs, 回头看, profile and 修改密码, every admin page and the 安全日志 — and fails on any CSP violation
(the ``securitypolicyviolation`` event and Chromium's console report), any script error or console error,
and any inline script, style or event handler in the HTML the server sent.

``PAGES`` names the page of every GET endpoint, and ``NOT_PAGES`` the GET endpoints that answer something
else (downloads, JSON); a new endpoint in neither fails ``test_every_page_of_the_url_map_is_visited``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from tests.browser import LiveServer
from tests.conftest import NOW, PASSWORD
from tracker import archive, jobs, recheck, settings
from tracker.accounts import set_password
from tracker.recheck import SampleCriteria

pytestmark = pytest.mark.browser

# Installed before any page script runs (an init script is not subject to the page's CSP).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""
# What a CSP of default-src 'self' without 'unsafe-inline' refuses, looked for in the HTML as sent.
INLINE = [
    (re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]

# GET endpoints that are not pages: files, CSV, JSON, redirects, the health check.
NOT_PAGES = {
    "static", "health.healthz", "tasks.index", "tasks.download", "lists.export_csv", "lists.unit_search",
    "reports.ledger_download", "archives.download", "jobs.status", "jobs.download",
}


@dataclass
class World:
    pending: int  # registered, not yet assigned (edit, split, bulk 交办)
    rectifying: int
    closed: int
    job: int
    sample: int
    admin_user: int


def build(app, world, s) -> World:
    pending = world.register(title="双马填埋场渗滤液处理不到位", code="XT-0001")
    rectifying = world.advance(world.assigned(title="涓水直排口污水直排湘江", code="XT-0002"), "rectifying")
    closed = [world.advance(world.assigned(title=f"雨湖区黑臭水体{i}", code=f"XT-01{i}"), "closed") for i in range(3)]
    s.commit()
    archive.archive_month(s, "2026-02", NOW, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn")
    job = jobs.submit(s, world.m["sup_xt"], NOW, jobs.LEDGER_EXPORT,
                      {"region_id": world.regions["湘潭市"].id, "month": "2026-03", "format": "xlsx"})
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 2, SampleCriteria(), seed="2026-回头看")
    s.commit()
    return World(pending.id, rectifying.id, closed[0].id, job.id, sample.id, world.user("unit_yh").id)


def pages(w: World) -> dict[str, list[tuple[str, str]]]:
    """endpoint -> [(role, url)]: who opens the page, and where."""
    return {
        "auth.login": [("", "/login")],
        "tasks.todo": [("unit_yh", "/todo"), ("sup_xt", "/todo"), ("viewer_xt", "/todo"), ("admin_hn", "/todo")],
        "tasks.task_list": [("unit_yh", "/tasks"), ("sup_xt", "/tasks?state=pending&sort=updated"),
                            ("viewer_xt", "/tasks")],
        "tasks.detail": [("unit_yh", f"/tasks/{w.rectifying}"), ("sup_xt", f"/tasks/{w.rectifying}"),
                         ("sup_xt", f"/tasks/{w.pending}"), ("sup_hn", f"/tasks/{w.closed}")],
        "tasks.register": [("sup_xt", "/tasks/new")],
        "tasks.edit": [("sup_xt", f"/tasks/{w.pending}/edit")],
        "tasks.split": [("sup_xt", f"/tasks/{w.pending}/split")],
        "closure.similar": [("sup_xt", f"/tasks/{w.closed}/similar")],
        "lists.bulk_action": [("sup_xt", f"/tasks/bulk?action=assign&task={w.pending}:1")],
        "lists.filters": [("sup_xt", "/filters")],
        "dashboard.index": [("sup_xt", "/dashboard"), ("viewer_xt", "/dashboard")],
        "messages.index": [("unit_yh", "/messages"), ("sup_xt", "/messages")],
        "messages.restrictions": [("sup_xt", "/restrictions")],
        "reports.index": [("sup_xt", "/reports"), ("viewer_xt", "/reports")],
        "reports.tasks": [("sup_xt", "/reports/tasks?cell=total&group=" + quote('["合计"]'))],
        "archives.index": [("sup_xt", "/archives")],
        "intake.upload": [("sup_xt", "/import"), ("admin_hn", "/import")],
        "jobs.index": [("sup_xt", "/jobs")],
        "jobs.detail": [("sup_xt", f"/jobs/{w.job}")],
        "closure.samples": [("sup_xt", "/recheck")],
        "closure.sample": [("sup_xt", f"/recheck/{w.sample}")],
        "closure.reopen_rates": [("sup_xt", "/recheck/reopen-rates")],
        "closure.checklists": [("admin_hn", "/admin/closure")],
        "profile.index": [("unit_yh", "/profile"), ("sup_xt", "/profile")],
        "profile.change_password": [("unit_yh", "/profile/password"), ("must_change", "/todo")],
        "security_log.index": [("admin_hn", "/admin/security-log"), ("admin_zz", "/admin/security-log?kind=login_ok")],
        "admin.users": [("admin_hn", "/admin/users")],
        "admin.user": [("admin_hn", f"/admin/users/{w.admin_user}")],
        "admin.units": [("admin_hn", "/admin/units")],
        "admin.regions": [("admin_hn", "/admin/regions")],
        "admin.calendar": [("admin_hn", "/admin/calendar")],
        "admin.time_settings": [("admin_hn", "/admin/settings")],
        "admin.mail": [("admin_hn", "/admin/mail")],
        "admin.escalation_rules": [("admin_hn", "/admin/escalation")],
    }


def test_every_page_of_the_url_map_is_visited(app):
    listed = set(pages(World(1, 2, 3, 4, 5, 6)))
    get_endpoints = {rule.endpoint for rule in app.url_map.iter_rules()
                     if "GET" in rule.methods and not rule.endpoint.startswith("api.")}
    assert get_endpoints - NOT_PAGES - listed == set(), "a page no one opens in the CSP test"
    assert listed - get_endpoints == set() and NOT_PAGES - get_endpoints == set(), "stale entries"


class Watcher:
    """What went wrong on the page being looked at: CSP reports, script errors, console errors."""

    def __init__(self, page: Page):
        self.page, self.problems = page, []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))

    def _console(self, msg) -> None:
        if msg.location.get("url", "").endswith("/favicon.ico"):
            return
        if msg.type == "error" or "Content Security Policy" in msg.text:
            self.problems.append(f"console {msg.type}: {msg.text}")

    def visit(self, url: str, expected: int = 200) -> list[str]:
        self.problems = []
        response = self.page.goto(url, wait_until="load")
        error_page = f"the server responded with a status of {expected}"  # the answer itself, when expected
        found = [p for p in self.problems if expected == 200 or error_page not in p]
        if response.status != expected:
            found.append(f"status {response.status}")
        html = response.text()
        found += [f"{what}: …{html[max(0, m.start() - 60):m.end() + 40]}…"
                  for pattern, what in INLINE for m in pattern.finditer(html)]
        self.page.wait_for_timeout(150)  # deferred scripts and their first timers
        found += [f"CSP: {v}" for v in self.page.evaluate("window.__csp")]
        found += [p for p in self.problems if p not in found and (expected == 200 or error_page not in p)]
        return found


def logged_in(browser, base: str, username: str, password: str = PASSWORD) -> Watcher:
    context = browser.new_context(locale="zh-CN")
    context.add_init_script(WATCH_CSP)
    watcher = Watcher(context.new_page())
    if username:
        page = watcher.page
        page.goto(f"{base}/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_load_state("load")
        assert "/login" not in page.url, f"{username} could not log in"
    return watcher


def test_every_page_for_every_role_satisfies_the_content_security_policy(app, world, s, browser):
    w = build(app, world, s)
    set_password(s, None, NOW, world.user("unit_xx"), "Linshi-mima-7", temporary=True,
                 hash_method=app.config["PASSWORD_HASH_METHOD"])
    s.commit()
    by_role: dict[str, list[tuple[str, str]]] = {}
    for endpoint, visits in pages(w).items():
        for role, url in visits:
            by_role.setdefault(role, []).append((endpoint, url))
    failures: dict[str, list[str]] = {}
    visited = 0
    with LiveServer(app) as server:
        for role, visits in by_role.items():
            if role == "must_change":  # an admin's forced reset: every page leads to 修改密码, which must pass too
                watcher = logged_in(browser, server.url, "unit_xx", "Linshi-mima-7")
            else:
                watcher = logged_in(browser, server.url, role)
            for endpoint, url in visits:
                problems = watcher.visit(server.url + url)
                if role == "must_change":
                    assert watcher.page.url.endswith("/profile/password")
                visited += 1
                if problems:
                    failures[f"{role or 'anonymous'} {url} ({endpoint})"] = problems
            if role == "unit_yh":
                problems = watcher.visit(server.url + "/no-such-page", expected=404)
                if problems:
                    failures["unit_yh /no-such-page (404 page)"] = problems
            watcher.page.context.close()
    assert failures == {}, "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in failures.items())
    assert visited >= 45
