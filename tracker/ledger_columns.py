"""The columns of the 整改台账 sheet (DESIGN §7), shared by the export and the Excel intake so that a
ledger exported here imports back cell for cell. Data, and the text form of 阶段目标 both read and write."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str  # the field it carries (see the export and the importer)
    header: str  # the header as exported
    width: int  # in Latin characters (a CJK character is about two)
    synonyms: tuple[str, ...] = ()  # other headers government sheets use for it (import)
    importable: bool = True  # read by the importer (False: computed as of the month end, export only)


LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("seq", "序号", 6, ("编号序号",), importable=False),
    Column("code", "问题编号", 16, ("编号", "问题序号", "交办编号", "案件编号")),
    Column("channel", "问题来源", 20, ("交办渠道", "问题渠道", "来源")),
    Column("round", "批次/轮次", 14, ("批次", "轮次", "督察批次")),
    Column("kind", "问题类型", 12, ("类型",)),
    Column("problem", "所属问题", 30, ("反馈问题", "所属反馈问题", "督察反馈问题")),
    Column("title", "问题名称", 30, ("问题", "问题标题", "名称")),
    Column("description", "问题描述", 50, ("问题内容", "具体问题", "问题情况")),
    Column("region", "所在地区", 12, ("所在区县", "属地", "地区", "所在县市区", "县市区")),
    Column("category", "问题领域", 10, ("领域", "问题类别")),
    Column("leads", "责任单位（牵头）", 24, ("责任单位", "牵头单位", "责任主体", "牵头责任单位")),
    Column("participants", "参与单位", 24, ("配合单位", "协办单位", "参与责任单位")),
    Column("leader", "责任领导", 12, ("责任人", "牵头领导")),
    Column("contact", "联系人及电话", 18, ("联系人", "联系方式")),
    Column("target", "整改目标", 30, ("目标",)),
    Column("measures", "整改措施", 40, ("措施", "整改方案")),
    Column("milestones", "阶段目标", 40, ("阶段性目标", "阶段目标及完成情况")),
    Column("deadline_text", "时限要求", 16, ("整改时限", "完成时限", "整改期限")),
    Column("deadline", "现行时限", 12, ("现行整改时限",), importable=False),
    Column("assigned_on", "交办日期", 12, ("交办时间",)),
    Column("state", "整改状态", 12, ("完成情况", "状态", "整改情况")),
    Column("schedule", "序时进度", 12, (), importable=False),
    Column("progress", "最新进展", 40, ("整改进展", "进展情况", "工作进展")),
    Column("progress_on", "进展日期", 12, ("报送日期", "最新报送日期", "进展报送日期")),
    Column("percent", "完成进度", 10, ("完成比例", "进度")),
    Column("closure_applied_on", "申请销号日期", 12, ("申请销号时间",)),
    Column("closed_on", "销号日期", 12, ("销号时间",)),
    Column("verifier", "验收单位", 20, ("验收部门",)),
    Column("closure_doc_no", "销号文号", 18, ("销号文件",)),
    Column("escalation", "督办等级", 10, (), importable=False),
    Column("accountability", "问责情况", 20, ("问责",)),
    Column("remarks", "备注", 24, ("说明",)),
    Column("not_reported", "本期未报送", 10, (), importable=False),
)

# State words of imported sheets (DESIGN §7): the state they mean.
STATE_WORDS: dict[str, str] = {
    "已销号": "closed",
    "已完成": "completed",  # closed when a 销号日期 is given, otherwise verifying
    "完成整改": "completed",
    "待验收": "verifying",
    "申请销号": "verifying",
    "整改中": "rectifying",
    "推进中": "rectifying",
    "持续推进": "rectifying",
    "达到序时进度": "rectifying",
    "滞后": "rectifying",
    "待交办": "pending",
}


# 阶段目标: one line per milestone, "2026-06-30 完成主体工程 60%（已完成 2026-06-20）" — the planned percent
# and the met date are optional. The export joins the lines with line breaks; the import also takes "；"
# before a date as a separator.
_MILESTONE_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
_MILESTONE = re.compile(rf"^{_MILESTONE_DATE}\s*(.*?)(?:\s+(\d{{1,3}})\s*[%％])?"
                        rf"\s*(?:[（(]\s*已完成\s*{_MILESTONE_DATE}\s*[）)])?$", re.S)
_MILESTONE_SEPARATOR = re.compile(r"\s*(?:\n|[；;](?=\s*\d{4}\s*[-/.年]))\s*")


@dataclass(frozen=True)
class MilestoneLine:
    due_on: dt.date
    description: str
    planned_percent: int | None = None
    met_on: dt.date | None = None


def format_milestone(m: MilestoneLine) -> str:
    return milestone_text(m.due_on, m.description, m.planned_percent, m.met_on)


def milestone_text(due_on: dt.date, description: str, planned_percent: int | None = None,
                   met_on: dt.date | None = None) -> str:
    """``format_milestone`` of the parts (the export formats ~2 milestones per task, 10⁵ tasks at a time)."""
    text = f"{due_on.isoformat()} {description}"
    if planned_percent is not None:
        text += f" {planned_percent}%"
    if met_on is not None:
        text += f"（已完成 {met_on.isoformat()}）"
    return text


def parse_milestones(text: str) -> list[MilestoneLine]:
    """The milestones of a 阶段目标 cell; ValueError (a Chinese message) naming the first bad one."""
    found = []
    for line in (part.strip() for part in _MILESTONE_SEPARATOR.split(text.strip())):
        if not line:
            continue
        match = _MILESTONE.match(line)
        if match is None or not match.group(4).strip():
            raise ValueError(f"阶段目标“{line}”应为“日期 内容 计划进度%（已完成 日期）”，"
                             "如“2026-06-30 完成主体工程 60%”")
        groups = match.groups()
        try:
            due_on = dt.date(*(int(g) for g in groups[0:3]))
            met_on = dt.date(*(int(g) for g in groups[5:8])) if groups[5] else None
        except ValueError:
            raise ValueError(f"阶段目标“{line}”的日期无效") from None
        percent = int(groups[4]) if groups[4] else None
        if percent is not None and percent > 100:
            raise ValueError(f"阶段目标“{line}”的计划进度须在0到100之间")
        found.append(MilestoneLine(due_on, groups[3].strip(), percent, met_on))
    return found
