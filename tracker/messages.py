"""Mail texts (pure): the escalation digest and the immediate notices, in Chinese, as plain text and
HTML. User text is escaped in HTML; links are absolute (``BASE_URL``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import escape

SIGNATURE = "——突出生态环境问题整改台账（系统自动发送，请勿直接回复）"


@dataclass(frozen=True)
class Item:
    """One line of a digest: a task, the level or reminder, and why."""

    code: str
    title: str
    region: str
    level_name: str
    reason: str
    deadline: dt.date | None
    overdue_workdays: int | None
    url: str
    decide: bool = False  # the recipient decides (confirms) this measure


def _deadline_text(item: Item) -> str:
    return item.deadline.isoformat() if item.deadline else "长期坚持"


def digest(recipient: str, items: list[Item], scan_date: dt.date) -> tuple[str, str, str]:
    """(subject, text, html) of one recipient's digest for one scan."""
    levels = sorted({i.level_name for i in items})
    subject = f"【整改督办】{scan_date.isoformat()} {len(items)}项任务需关注（{'、'.join(levels)}）"
    day = f"{scan_date.year}年{scan_date.month}月{scan_date.day}日"
    lines = [f"{recipient}：", "", f"截至{day}，以下整改任务需要关注：", ""]
    for n, item in enumerate(items, start=1):
        overdue = f"，已逾期{item.overdue_workdays}个工作日" if item.overdue_workdays else ""
        action = "（请确认督办措施）" if item.decide else ""
        lines += [f"{n}. [{item.level_name}]{action} {item.code} {item.title}（{item.region}）",
                  f"   原因：{item.reason}；整改时限：{_deadline_text(item)}{overdue}", f"   {item.url}", ""]
    lines.append(SIGNATURE)
    rows = "".join(
        f"<tr><td>{escape(i.level_name)}{'（待确认）' if i.decide else ''}</td><td>{escape(i.code)}</td>"
        f"<td><a href=\"{escape(i.url)}\">{escape(i.title)}</a></td><td>{escape(i.region)}</td>"
        f"<td>{escape(i.reason)}</td><td>{escape(_deadline_text(i))}</td>"
        f"<td>{i.overdue_workdays or ''}</td></tr>" for i in items)
    html = (f"<p>{escape(recipient)}：</p><p>截至{scan_date.isoformat()}，以下整改任务需要关注：</p>"
            "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><thead><tr><th>督办等级</th><th>问题编号</th>"
            "<th>问题名称</th><th>所在地区</th><th>原因</th><th>整改时限</th><th>逾期工作日</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p>{escape(SIGNATURE)}</p>")
    return subject, "\n".join(lines), html


@dataclass(frozen=True)
class Notice:
    """An immediate notice of one workflow step (交办, 申请销号 …)."""

    action_label: str
    code: str
    title: str
    region: str
    actor: str
    detail: str
    url: str


def notice(recipient: str, n: Notice) -> tuple[str, str, str]:
    """(subject, text, html) of an immediate notice."""
    subject = f"【{n.action_label}】{n.code} {n.title}"
    detail = f"\n{n.detail}" if n.detail else ""
    text = (f"{recipient}：\n\n{n.actor}对整改任务“{n.code} {n.title}”（{n.region}）办理了：{n.action_label}。"
            f"{detail}\n\n{n.url}\n\n{SIGNATURE}")
    html = (f"<p>{escape(recipient)}：</p><p>{escape(n.actor)}对整改任务“<a href=\"{escape(n.url)}\">"
            f"{escape(n.code)} {escape(n.title)}</a>”（{escape(n.region)}）办理了：<strong>{escape(n.action_label)}"
            f"</strong>。</p>{f'<p>{escape(n.detail)}</p>' if n.detail else ''}<p>{escape(SIGNATURE)}</p>")
    return subject, text, html
