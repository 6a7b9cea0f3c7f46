"""批量交办 in headless Chromium: a supervisor filters the list to 待交办, ticks every task on the page
(with the mouse, then again from the keyboard), chooses 批量交办, picks a lead unit (typed into its search
box) and a deadline and submits; every task is 已交办 with one event each, and the list comes back with its
filter remembered."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser import LiveServer
from tests.test_browser import logged_in
from tracker.models import Event, Task
from tracker.workflow import State

pytestmark = pytest.mark.browser

PENDING = ("双马填埋场渗滤液处理不到位", "涓水直排口污水直排湘江", "湘乡皮革工业园污水处理厂超标排放")


def test_a_supervisor_bulk_assigns_new_problems_from_the_list(app, world, s, browser):
    tasks = [world.register(title=PENDING[0]), world.register(title=PENDING[1]),
             world.register(title=PENDING[2], region="湘乡市")]
    world.assigned(title="南尧村重金属尾砂污染")  # already 已交办: filtered out
    s.commit()
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "sup_xt")
        page.get_by_role("link", name="任务列表").first.click()

        # Keyboard: "/" jumps to the search box, Esc leaves it, j moves to a row and x ticks it.
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("/")
        expect(page.get_by_label("关键词")).to_be_focused()
        page.keyboard.press("Escape")
        page.get_by_label("状态").select_option("pending")
        page.get_by_role("button", name="筛选").click()
        expect(page).to_have_url(re.compile(r"/tasks\?state=pending&sort=deadline$"))  # empty fields left out
        rows = page.locator("table.list tbody tr[data-row]")
        expect(rows).to_have_count(3)
        expect(page.locator("table.list")).not_to_contain_text("南尧村")
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("input[data-select]").first).to_be_checked()
        expect(page.locator("[data-selected-count]")).to_have_text("已选 1 个")

        page.get_by_label("全选本页").check()
        for box in page.locator("input[data-select]").all():
            expect(box).to_be_checked()
        expect(page.locator("[data-selected-count]")).to_have_text("已选 3 个")
        page.get_by_role("button", name="批量交办").click()

        expect(page.get_by_role("heading", name="批量交办")).to_be_visible()
        expect(page.locator("#bulk-tasks td.verdict")).to_have_text(["可以办理"] * 3)
        lead = page.locator("#bulk-leads-search")  # 牵头单位 is a type-ahead (static/js/units.js)
        expect(lead).to_be_focused()  # autofocus on the first field's search box
        lead.fill("雨湖区人民政府（雨湖区）")
        expect(page.get_by_label("雨湖区人民政府（雨湖区）")).to_be_checked()
        page.get_by_label("整改时限", exact=True).fill("2030-06-30")
        page.get_by_role("button", name="确认批量交办").click()

        expect(page.locator(".flash.success")).to_contain_text("已批量交办 3 个任务")
        expect(page).to_have_url(re.compile(r"/tasks\?state=pending&sort=deadline$"))  # the filter was remembered
        expect(page.locator("table.list tbody")).to_contain_text("没有符合条件的任务")

    s.expire_all()
    for task in tasks:
        task = s.get(Task, task.id)
        assert task.state == State.assigned.value and task.deadline == dt.date(2030, 6, 30)
        assert [u.name for u in task.lead_units] == ["雨湖区人民政府"]
    per_task = dict(s.execute(select(Event.task_id, func.count()).where(
        Event.action == "assign", Event.task_id.in_([t.id for t in tasks])).group_by(Event.task_id)).all())
    assert per_task == {t.id: 1 for t in tasks}

