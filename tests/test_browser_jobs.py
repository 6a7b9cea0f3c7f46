"""后台任务 in headless Chromium: a supervisor asks for a large ledger, lands on the job's page, watches it
finish without reloading (static/js/jobs.js polls the status), and downloads the file."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer
from tests.test_browser import logged_in
from tracker import jobs

pytestmark = pytest.mark.browser


def test_a_large_ledger_is_made_in_the_background_while_the_page_watches(app, world, s, browser):
    world.assigned(title="双马填埋场渗滤液处理不到位")
    world.assigned(title="涓水直排口生活污水直排", region="湘乡市", lead="湘乡市人民政府")
    s.commit()
    app.config["SYNC_EXPORT_MAX_TASKS"] = 1
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "sup_xt")
        problems = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto(f"{server.url}/reports")
        form = page.locator("form.ledger-download")
        form.get_by_label("月份").fill("2026-03")
        form.get_by_role("button", name="下载").click()

        expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
        expect(page.locator("#job-state")).to_have_text("排队中")
        expect(page.get_by_role("link", name="刷新")).to_be_visible()
        assert jobs.run_pending(app).done == 1  # what the scheduler does every few seconds

        expect(page.locator(".flash.success")).to_contain_text("已生成2026年3月台账：2项任务", timeout=10_000)
        expect(page.locator("#job-state")).to_have_text("已完成")
        with page.expect_download() as download:
            page.get_by_role("link", name="湘潭市整改销号台账2026年3月.xlsx").click()
        assert download.value.suggested_filename == "湘潭市整改销号台账2026年3月.xlsx"

        page.get_by_role("link", name="我的后台任务").first.click()
        expect(page.locator("table.jobs")).to_contain_text("湘潭市 · 2026-03 · XLSX")
        assert problems == []  # no CSP refusals, no script errors
