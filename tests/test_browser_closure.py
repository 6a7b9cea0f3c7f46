"""In headless Chromium: a verifier sees a duplicate photo flagged and can close only through the 销号标准."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer
from tests.conftest import NOW, fake_file
from tests.test_browser import logged_in
from tracker import closure

pytestmark = pytest.mark.browser


def test_a_duplicate_photo_is_flagged_and_closure_needs_every_checklist_item(app, world, s, browser):
    channel, admin = world.channels["省级生态环境保护督察"], world.m["admin_hn"]
    items = ["整改措施全部落实，达到整改目标", "整改前、整改后现场照片齐全", "整改情况已公示，无异议"]
    photo = b"the-photo-of-the-other-site"
    other = world.advance(world.assigned(title="中材日新矿运输道路扬尘", region="湘乡市", lead="湘乡市人民政府"),
                          "closed", lead_user="unit_xx",
                          files=[fake_file("after", "整改后运输道路照片.jpg", photo)])
    task = world.advance(world.assigned(title="湘乡鑫碧石材加工废水直排"), "verifying",
                         files=[fake_file("before", "整改前石粉浆堆放照片.jpg", b"before"),
                                fake_file("after", "整改后车间照片.jpg", photo)])
    closure.add_criterion(s, admin, NOW, channel, items[0])
    closure.add_criterion(s, admin, NOW, channel, items[1], ["before", "after"])
    closure.add_criterion(s, admin, NOW, channel, items[2])
    s.commit()
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "sup_hn")
        url = f"{server.url}/tasks/{task.id}"
        page.goto(url)
        flags = page.locator("#evidence-flags")
        expect(flags).to_be_visible()  # before unfolding anything
        expect(flags).to_contain_text("佐证材料存疑")
        expect(flags).to_contain_text("整改后车间照片.jpg")
        expect(flags.get_by_role("link", name=f"{other.code} 中材日新矿运输道路扬尘")).to_be_visible()

        box = page.locator("#action-close")
        box.locator("summary").click()
        box.get_by_label("验收意见", exact=True).fill("现场核查：车间已封闭，废水循环利用")
        box.get_by_label(items[0]).check()
        box.locator("button[type=submit]").click()
        expect(page.locator(".flash.error")).to_contain_text(
            f"请逐项核对销号标准，尚未勾选：{items[1]}；{items[2]}")
        expect(page.locator("h1 .badge")).to_have_text("待验收")

        box = page.locator("#action-close")
        if not box.get_attribute("open"):
            box.locator("summary").click()
        expect(box.get_by_label(items[0])).to_be_checked()  # what was ticked is kept
        box.get_by_label("验收意见", exact=True).fill("经核实，照片系重新拍摄补充，整改到位")
        for text in items:
            box.get_by_label(text).check()
        box.locator("button[type=submit]").click()
        expect(page.locator(".flash.success")).to_contain_text("已办理")
        expect(page.locator("h1 .badge")).to_have_text("已销号")
        event = page.locator("ol.timeline li.event-close").last
        expect(event).to_contain_text("验收销号")
