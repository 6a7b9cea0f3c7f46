"""The main flow in headless Chromium: a unit and a supervisor take a task from 签收 to 销号."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import LiveServer
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def logged_in(browser, base: str, username: str) -> Page:
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name=re.compile("待办"))).to_be_visible()
    return page


def act(page: Page, url: str, action: str, fill: dict[str, str] | None = None, files: dict[str, list] | None = None):
    """Open the task, unfold one action form, fill it, submit it, and expect success."""
    page.goto(url)
    box = page.locator(f"#action-{action}")
    box.locator("summary").click()
    for label, value in (fill or {}).items():
        box.get_by_label(label, exact=True).fill(value)
    for label, payloads in (files or {}).items():
        box.get_by_label(label, exact=True).set_input_files(payloads)
    box.locator("button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("已办理")


def photo(name: str, content: bytes) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": content}


def test_unit_and_supervisor_take_a_task_from_signing_to_closure(app, world, s, browser):
    task = world.assigned(title="涓水直排口污水直排湘江")
    s.commit()
    with LiveServer(app) as server:
        url = f"{server.url}/tasks/{task.id}"
        unit = logged_in(browser, server.url, "unit_yh")
        sup = logged_in(browser, server.url, "sup_xt")

        expect(unit.get_by_role("link", name="涓水直排口污水直排湘江")).to_be_visible()  # in 待办
        act(unit, url, "sign")
        plan = {"整改目标": "直排口全部截污，出水达标", "整改措施": "建设截污干管，接入河东污水处理厂",
                "阶段目标": "2026-12-15 完成截污干管铺设 80%"}
        act(unit, url, "submit_plan", plan)
        act(sup, url, "return_plan", {"理由": "措施不够具体，请补充工程量和资金来源"})
        act(unit, url, "submit_plan", {**plan, "整改措施": "建设截污干管2.3公里，资金由区财政安排"})
        act(sup, url, "approve_plan", {"意见": "同意"})
        act(unit, url, "report", {"进展情况": "截污干管已完成1.5公里", "完成进度（%）": "60"},
            {"佐证材料": [photo("整改前现场照片.jpg", b"before-photo")]})
        act(unit, url, "submit", {"整改完成情况": "截污干管全部建成，直排口已封堵"},
            {"佐证材料": [photo("整改后现场照片.jpg", b"after-photo")]})
        act(sup, url, "return", {"理由": "缺少水质监测报告"})
        act(unit, url, "submit", {"整改完成情况": "补充了监测报告"},
            {"佐证材料": [photo("水质监测报告.jpg", b"monitoring-report")]})
        act(sup, url, "close", {"验收意见": "现场核查，直排口已封堵，水质达标", "销号文号": "潭突改〔2026〕12号"})

        sup.goto(url)
        expect(sup.locator("h1 .badge")).to_have_text("已销号")
        timeline = sup.locator("ol.timeline")
        steps = timeline.locator("li strong").all_inner_texts()
        assert steps == ["登记", "交办", "签收", "报送整改方案", "退回整改方案", "报送整改方案", "审核通过整改方案",
                         "报送进展", "申请销号", "退回整改", "申请销号", "验收销号"]
        expect(timeline).to_contain_text("缺少水质监测报告")
        with sup.expect_download() as download:
            sup.get_by_role("link", name="水质监测报告.jpg").first.click()
        assert download.value.suggested_filename == "水质监测报告.jpg"
