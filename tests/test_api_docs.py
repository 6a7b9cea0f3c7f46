"""docs/API.md can be followed: its curl commands, run with real curl against a live server (the example
ids swapped for the seeded ones), list the overdue tasks of one county and close tasks."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser import LiveServer
from tests.test_api import LATER
from tracker import schedule, settings, tokens
from tracker.timeutil import local_date, utcnow

DOC = (Path(__file__).resolve().parent.parent / "docs" / "API.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    """Every curl command of the document's shell blocks, continuation lines joined."""
    found: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", DOC, re.S):
        current = None
        for line in block.splitlines():
            if line.startswith("curl"):
                current = [line]
                found.append(current)
            elif not line.strip() or line.startswith(("#", "export")):
                current = None
            elif current is not None:  # a continued line, or the rest of a quoted JSON body
                current.append(line)
    return [re.sub(r"\\\n\s*", " ", "\n".join(lines)) for lines in found]


def find(*words: str, without: str = "\x00") -> str:
    matches = [c for c in commands() if all(w in c for w in words) and without not in c]
    assert len(matches) == 1, (words, matches)
    return matches[0]


@pytest.fixture
def live(app, s, world, tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl not found: the documented examples need it (Debian package curl)")
    then = utcnow() - dt.timedelta(days=120)
    late = local_date(then) + dt.timedelta(days=30)
    overdue = [world.assigned(title=title, deadline=late + dt.timedelta(days=i), now=then)
               for i, title in enumerate(["双马填埋场渗滤液处理不到位", "涓水直排口"])]
    world.assigned(title="不逾期的问题", deadline=LATER, now=then)
    closing = [world.advance(world.assigned(title=f"待验收{i}", deadline=LATER), "verifying") for i in range(2)]
    m = world.m["sup_xt"]
    secret = tokens.create_token(s, m, utcnow(), m.user, m, "文档示例").secret
    s.commit()
    schedule.refresh_all(s, local_date(utcnow()), settings.time_settings(s))
    s.commit()
    (tmp_path / "验收报告.pdf").write_bytes(b"%PDF-1.4 report")
    with LiveServer(app) as server:
        env = {"ZG": f"{server.url}/api/v1", "TOKEN": secret, "PATH": "/usr/bin:/bin"}
        yield {"env": env, "cwd": tmp_path, "overdue": overdue, "closing": closing, "yuhu": world.regions["雨湖区"]}


def run(live, command: str):
    done = subprocess.run(["bash", "-c", command], env=live["env"], cwd=live["cwd"], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_the_documented_calls_list_a_countys_overdue_tasks_and_close_tasks(live, s):
    assert run(live, find("$ZG/me"))["membership"]["role"] == "supervisor"
    regions = run(live, find("$ZG/regions", "雨湖区"))["items"]
    assert [r["name"] for r in regions] == ["雨湖区"] and regions[0]["id"] == live["yuhu"].id

    region = f"region={live['yuhu'].id}"
    listing = find("$ZG/tasks", "schedule=overdue", without="cursor").replace("region=16", region)
    listed = run(live, listing)
    assert [t["id"] for t in listed["items"]] == [t.id for t in live["overdue"]] and listed["next_cursor"] is None
    first_page = run(live, listing.replace("limit=100", "limit=1"))
    assert [t["id"] for t in first_page["items"]] == [live["overdue"][0].id]
    following = find("$ZG/tasks", "schedule=overdue", "cursor=").replace("region=16", region)
    following = re.sub(r"cursor=\S+", f"cursor={first_page['next_cursor']}", following.replace("limit=100", "limit=1"))
    assert [t["id"] for t in run(live, following)["items"]] == [live["overdue"][1].id]

    first, second = live["closing"]
    today = local_date(utcnow()).isoformat()
    close_json = find("actions/close", "application/json")
    close_json = (close_json.replace("/tasks/231/", f"/tasks/{first.id}/")
                  .replace('"version": 9', f'"version": {first.version}')
                  .replace('"closed_on": "2026-11-22"', f'"closed_on": "{today}"'))
    closed = run(live, close_json)
    assert closed["state"] == "closed" and closed["closure"]["doc_no"] == "湘突改办〔2026〕18号"
    close_file = find("actions/close", "files=@")
    closed = run(live, close_file.replace("/tasks/231/", f"/tasks/{second.id}/").replace(
        "version=9", f"version={second.version}"))
    assert closed["state"] == "closed" and [e["original_name"] for e in closed["evidence"]][-1] == "验收报告.pdf"


def test_the_documented_report_and_ledger_calls_work(live):
    report = run(live, find("$ZG/report"))
    assert report["as_of"] == "2026-10-31" and report["by"] == "region"
    run(live, find("$ZG/ledger"))
    assert (live["cwd"] / "台账2026年10月.xlsx").read_bytes()[:2] == b"PK"
    assert run(live, find("$ZG/archives"))["items"] == []
