"""The unit type-ahead in headless Chromium: a supervisor assigns a task by typing the lead and participant
units into the 交办 form's search boxes (the page lists no unit until one is picked), and filters the list by
a unit found the same way; no Content-Security-Policy violation on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer
from tests.test_browser import logged_in
from tracker.models import Task
from tracker.workflow import State

pytestmark = pytest.mark.browser


def _watch_csp(page) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return refused


def test_a_supervisor_assigns_by_typing_unit_names(app, world, s, browser):
    task = world.register(title="双马填埋场渗滤液处理不到位")
    s.commit()
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "sup_xt")
        refused = _watch_csp(page)
        page.goto(f"{server.url}/tasks/{task.id}")
        box = page.locator("#action-assign")
        box.locator("summary").click()
        expect(box.locator("input[type=checkbox]")).to_have_count(0)  # no unit listed before one is picked

        lead = box.locator("#assign-leads-search")
        expect(box.get_by_role("combobox", name="牵头单位")).to_have_attribute("id", "assign-leads-search")  # its label
        lead.press_sequentially("雨湖区人民")
        expect(box.locator("#assign-leads-matches option")).to_have_count(1)
        lead.press("Enter")  # the only match is taken; the form is not submitted
        expect(box.get_by_label("雨湖区人民政府（雨湖区）")).to_be_checked()
        expect(lead).to_have_value("")

        participants = box.locator("#assign-participants-search")
        participants.fill("湘潭市生态环境局（湘潭市）")  # a whole name as the list offers it is taken at once
        expect(box.get_by_label("湘潭市生态环境局（湘潭市）")).to_be_checked()
        participants.fill("攸县")  # another city's unit: not offered to 湘潭市
        expect(box.locator("#assign-participants-matches option")).to_have_count(0)
        participants.fill("")

        box.get_by_label("整改时限", exact=True).fill("2027-06-30")
        box.locator("button[type=submit]").click()
        expect(page.locator(".flash.success")).to_contain_text("已办理")
        assert refused == []

    s.expire_all()
    task = s.get(Task, task.id)
    assert task.state == State.assigned.value
    assert [u.name for u in task.lead_units] == ["雨湖区人民政府"]
    assert [u.name for u in task.participant_units] == ["湘潭市生态环境局"]


def test_the_list_is_filtered_by_a_unit_found_by_typing(app, world, s, browser):
    world.assigned(title="双马填埋场渗滤液处理不到位")
    world.assigned(title="湘江河道非法采砂整治", lead="湘乡市人民政府", region="湘乡市")
    s.commit()
    unit_id = world.units["湘乡市人民政府"].id
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "sup_xt")
        refused = _watch_csp(page)
        page.goto(f"{server.url}/tasks?sort=deadline")
        expect(page.locator("table.list tbody tr[data-row]")).to_have_count(2)
        search = page.locator("#unit-search")
        expect(page.locator("label[for=unit-search]")).to_have_text("责任单位")
        search.press_sequentially("湘乡")
        expect(page.locator("#unit-matches option")).to_have_count(1)
        search.press("Enter")
        expect(page.locator("#unit")).to_have_value(str(unit_id))
        page.get_by_role("button", name="筛选", exact=True).click()
        expect(page).to_have_url(re.compile(rf"[?&]unit={unit_id}(&|$)"))
        expect(page.locator("table.list tbody tr[data-row]")).to_have_count(1)
        expect(page.locator("table.list")).to_contain_text("湘江河道非法采砂整治")
        expect(page.locator("#unit option:checked")).to_have_text("湘乡市人民政府（湘乡市）")  # kept after the reload
        assert refused == []
