"""Every Chinese string in the templates goes through Flask-Babel, so a catalogue can translate it."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir

from tracker.paths import TEMPLATE_DIR

CJK = re.compile(r"[\u4e00-\u9fff]")
# Text passed to the gettext functions, and Jinja comments, are what may hold Chinese.
MARKED = re.compile(r"""_\(\s*(?:"[^"]*"|'[^']*')|\{#.*?#\}""", re.S)


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATE_DIR).as_posix()
                                            for p in TEMPLATE_DIR.rglob("*.html")))
def test_no_chinese_text_outside_gettext(template):
    source = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
    left = MARKED.sub("", source)
    offending = [line.strip() for line in left.splitlines() if CJK.search(line)]
    assert offending == [], f"unmarked Chinese text in {template}"


def test_babel_extracts_the_template_strings():
    method_map = [("**.html", "jinja2")]
    found = {message for _, _, message, *_ in extract_from_dir(str(TEMPLATE_DIR), method_map)}
    assert {"待办", "任务列表", "办理记录（履责留痕）", "登录"} <= found
