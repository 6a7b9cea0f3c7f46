"""The language switch in headless Chromium: log in, switch to English, read the nav and a task in English,
log out and in again (the choice is kept), switch back to Chinese."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer
from tests.catalogue import compile_catalogue
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_user_switches_to_english_and_back(app, world, s, browser):
    compile_catalogue()
    task = world.assigned(title="涓水直排口污水直排湘江")
    s.commit()
    with LiveServer(app) as server:
        page = browser.new_context(locale="zh-CN").new_page()
        page.goto(f"{server.url}/login")
        page.get_by_role("button", name="English").click()  # the login page switches too
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        page.get_by_role("button", name="中文").click()
        page.get_by_label("用户名").fill("unit_yh")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", name=re.compile("待办"))).to_be_visible()

        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        nav = page.locator("header.top nav")
        for label in ("To-do", "Tasks", "Messages"):
            expect(nav.get_by_role("link", name=re.compile(f"^{label}"))).to_be_visible()
        expect(page.get_by_role("heading", name=re.compile("To-do"))).to_be_visible()
        expect(page.locator("table.list")).to_contain_text("Assigned (waiting to be signed for)")
        expect(page.locator("table.list")).to_contain_text("Dec 31, 2026")

        page.get_by_role("link", name="涓水直排口污水直排湘江").click()  # data stays as it was entered
        expect(page.locator("#action-sign summary")).to_have_text("Sign for")
        expect(page.get_by_role("heading", name="History (record of duties performed)")).to_be_visible()
        page.get_by_role("button", name="中文").click()  # back on the same page, in Chinese
        expect(page).to_have_url(f"{server.url}/tasks/{task.id}")
        expect(page.locator("#action-sign summary")).to_have_text("签收")

        page.get_by_role("button", name="English").click()
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()  # logged out: no response in flight
        page.context.clear_cookies()  # a new browser session: the stored choice applies at the next login
        page.goto(f"{server.url}/login")
        page.get_by_label("用户名").fill("unit_yh")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", name=re.compile("To-do"))).to_be_visible()
        page.get_by_role("button", name="中文").click()
        expect(page.get_by_role("heading", name=re.compile("待办"))).to_be_visible()
        expect(page.locator("header.top nav").get_by_role("link", name="任务列表")).to_be_visible()
