"""总览 in headless Chromium: a 湘潭市 supervisor opens the dashboard, Chart.js (served from static/vendor/)
draws every chart with no console error and no Content-Security-Policy violation, and clicking one
county's 逾期 number lands on the task list holding exactly that county's overdue tasks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer
from tests.conftest import PASSWORD
from tests.test_dashboard import ledger  # noqa: F401  (the 湘潭市 ledger fixture)

pytestmark = pytest.mark.browser

# Recorded before any page script runs (an init script is not subject to the page's CSP).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def watch(page, problems: list[str]) -> None:
    """Console errors and warnings, script errors, failed requests and error answers (the browser's own
    favicon request aside: the app has no icon)."""
    def console(msg):
        if msg.type in ("error", "warning") and not msg.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"console {msg.type}: {msg.text} {msg.location}")

    def response(resp):
        if resp.status >= 400 and not resp.url.endswith("/favicon.ico"):
            problems.append(f"{resp.status} {resp.url}")

    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"failed {req.url}"))
    page.on("response", response)


def test_a_supervisor_finds_one_countys_overdue_tasks_from_the_dashboard(app, world, s, ledger, browser):  # noqa: F811
    with LiveServer(app) as server:
        context = browser.new_context(locale="zh-CN")
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        problems: list[str] = []
        watch(page, problems)

        page.goto(f"{server.url}/login")
        page.get_by_label("用户名").fill("sup_xt")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.get_by_role("link", name="总览", exact=True).click()  # from the top bar, no URL typed
        expect(page.get_by_role("heading", name=re.compile("总览"))).to_be_visible()

        # Chart.js is loaded from our own server and has drawn every chart (a deferred script: the heading
        # can be visible before it has run, so wait for it — it fails after the timeout if it never loads).
        page.wait_for_load_state("load")
        page.wait_for_function("typeof window.Chart === 'function'", timeout=15000)
        assert page.evaluate("typeof window.Chart") == "function"
        assert page.evaluate("window.Chart.version").startswith("4.")
        for chart_id in ("chart-buckets", "chart-region", "chart-channel", "chart-months", "chart-levels"):
            canvas = page.locator(f"canvas#{chart_id}")
            expect(canvas).to_be_visible()
            box = canvas.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100, chart_id
        assert page.evaluate("window.dashboardCharts.length") == 5
        assert page.evaluate("window.Chart.getChart('chart-region').data.labels") == [
            "雨湖区", "湘乡市", "湘潭高新区", "本级"]
        expect(page.locator("#chart-missing")).to_be_hidden()
        assert page.evaluate("window.__csp") == []
        assert problems == []

        # 雨湖区's 逾期 in the 按地区 table.
        region_table = page.get_by_role("region", name="按地区")
        row = region_table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="雨湖区", exact=True))
        overdue = row.locator("td.cell-overdue a")
        expect(overdue).to_have_text("1")
        overdue.click()

        expect(page.get_by_role("heading", name="任务列表")).to_be_visible()
        assert re.search(rf"/tasks\?region={world.regions['雨湖区'].id}&schedule=overdue$", page.url), page.url
        expect(page.locator("p.counts")).to_contain_text("共 1 个")
        expect(page.get_by_role("link", name="双马填埋场渗滤液处理不到位")).to_be_visible()
        expect(page.get_by_role("link", name="湘乡皮革工业园污水处理厂超标排放")).to_have_count(0)
        assert page.evaluate("window.__csp") == []
        assert problems == []
        context.close()


def test_a_click_on_a_bar_opens_its_tasks(app, world, s, ledger, browser):  # noqa: F811
    """The charts link like the tables: a click on 湘乡市's 滞后 bar lists 湘乡市's behind tasks."""
    with LiveServer(app) as server:
        page = browser.new_context(locale="zh-CN").new_page()
        page.goto(f"{server.url}/login")
        page.get_by_label("用户名").fill("sup_xt")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.goto(f"{server.url}/dashboard")
        point = page.evaluate("""() => {
            const chart = Chart.getChart('chart-region');
            chart.canvas.scrollIntoView({block: 'center'});
            const behind = chart.data.datasets.findIndex(d => d.label === '滞后');
            const bar = chart.getDatasetMeta(behind).data[chart.data.labels.indexOf('湘乡市')];
            const box = chart.canvas.getBoundingClientRect();
            const center = bar.getCenterPoint();
            return {x: box.left + center.x, y: box.top + center.y};
        }""")
        page.mouse.click(point["x"], point["y"])
        expect(page.get_by_role("heading", name="任务列表")).to_be_visible()
        assert re.search(rf"/tasks\?region={world.regions['湘乡市'].id}&schedule=behind$", page.url), page.url
        expect(page.locator("p.counts")).to_contain_text("共 1 个")
        expect(page.get_by_role("link", name="湘乡皮革工业园污水处理厂超标排放")).to_be_visible()
