"""The workflow of a rectification task (交办 → 整改 → 验收 → 销号): states, actions and the one
transition table (DESIGN §4).

Pure: no database, no Flask. ``operations.perform`` is the only code that applies a transition and
the only code that sets ``Task.state``; ``permissions.can`` decides who may take an action now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tracker.i18n import N_


class State(enum.StrEnum):
    """Where a task stands. Values are stored in the database; labels are Chinese msgids."""

    pending = "pending"  # 待交办: registered, not yet handed to a unit
    assigned = "assigned"  # 已交办（待签收）: handed to the lead unit(s), waiting for 签收
    signed = "signed"  # 已签收（待报方案）: signed for, the 整改方案 is being written or reviewed
    rectifying = "rectifying"  # 整改中: plan approved, work under way
    verifying = "verifying"  # 待验收: the lead unit applied for 销号, waiting for 初验/验收
    closed = "closed"  # 已销号: verified and written off
    cancelled = "cancelled"  # 已作废: cancelled or merged into another task


STATE_LABELS: dict[State, str] = {
    State.pending: N_("待交办"),
    State.assigned: N_("已交办（待签收）"),
    State.signed: N_("已签收（待报方案）"),
    State.rectifying: N_("整改中"),
    State.verifying: N_("待验收"),
    State.closed: N_("已销号"),
    State.cancelled: N_("已作废"),
}

# States in which work is still going on; deadline changes, cancel/merge and measures apply here.
OPEN_STATES: frozenset[State] = frozenset(
    {State.pending, State.assigned, State.signed, State.rectifying, State.verifying}
)
# States that end a task (a closed task may still be reopened).
FINAL_STATES: frozenset[State] = frozenset({State.closed, State.cancelled})


class Party(enum.StrEnum):
    """Who may take an action, relative to the task (not a global role)."""

    supervisor = "supervisor"  # a supervisor membership whose region subtree holds the task
    lead = "lead"  # a `unit` membership of one of the task's lead units (牵头单位)
    participant = "participant"  # a `unit` membership of one of the task's participant units (参与单位)


@dataclass(frozen=True)
class Transition:
    """One row of the workflow table: an action, the states it starts from, where it leads."""

    action: str
    label: str  # 中文 name shown on buttons and in the timeline
    sources: frozenset[State | None]  # None: the task does not exist yet (register)
    target: State | None  # None: the state does not change
    parties: frozenset[Party]
    requires: tuple[str, ...] = ()  # form fields that must be given (checked by operations)


def _t(action, label, sources, target, parties, requires=()):
    return Transition(action, label, frozenset(sources), target, frozenset(parties), tuple(requires))


S, L, P = Party.supervisor, Party.lead, Party.participant
_OPEN = tuple(OPEN_STATES)

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("register", N_("登记"), [None], State.pending, [S], ["title", "region", "channel", "round"]),
        _t("assign", N_("交办"), [State.pending], State.assigned, [S], ["leads", "deadline"]),
        _t("split", N_("分解交办"), [State.pending], State.rectifying, [S], ["children"]),
        _t("decline", N_("退办"), [State.assigned], State.pending, [L], ["reason"]),
        _t("sign", N_("签收"), [State.assigned], State.signed, [L]),
        _t("submit_plan", N_("报送整改方案"), [State.signed], None, [L], ["target", "measures"]),
        _t("approve_plan", N_("审核通过整改方案"), [State.signed], State.rectifying, [S]),
        _t("return_plan", N_("退回整改方案"), [State.signed], None, [S], ["reason"]),
        _t("report", N_("报送进展"), [State.rectifying], None, [L, P], ["text"]),
        _t("submit", N_("申请销号"), [State.rectifying], State.verifying, [L], ["text", "evidence"]),
        _t("pre_verify", N_("初验"), [State.verifying], None, [S], ["opinion"]),
        _t("return", N_("退回整改"), [State.verifying], State.rectifying, [S], ["reason"]),
        _t("close", N_("验收销号"), [State.verifying], State.closed, [S], ["opinion", "closed_on"]),
        _t("reopen", N_("重新整改"), [State.closed], State.rectifying, [S], ["reason", "deadline"]),
        _t("reassign", N_("改派"), [State.assigned, State.signed, State.rectifying], State.assigned, [S], ["leads"]),
        _t("cancel", N_("作废"), _OPEN, State.cancelled, [S], ["reason"]),
        _t("merge", N_("合并"), _OPEN, State.cancelled, [S], ["reason", "merge_into"]),
        _t("request_extension", N_("申请延期"), [State.rectifying], None, [L], ["reason", "new_deadline"]),
        _t("decide_extension", N_("审批延期"), [State.rectifying], None, [S], ["decision"]),
        _t("change_deadline", N_("调整时限"), _OPEN, None, [S], ["reason", "deadline"]),
        _t("confirm_measure", N_("督办措施"), _OPEN, None, [S], ["level", "doc_no"]),
    )
}

# Actions a supervisor takes on a split parent (分解交办后的母任务) — the children carry the work.
PARENT_ACTIONS: frozenset[str] = frozenset({"cancel"})


def transition(action: str) -> Transition:
    """The table row for ``action``; a ``KeyError`` is a programming error, not user input."""
    return TRANSITIONS[action]


def is_allowed_from(action: str, state: State | None) -> bool:
    """Whether ``action`` may start from ``state`` at all (ignoring who asks)."""
    return state in TRANSITIONS[action].sources


def next_state(action: str, state: State) -> State:
    """The state after ``action``; actions with no target keep the state."""
    target = TRANSITIONS[action].target
    return state if target is None else target


def actions_from(state: State) -> list[str]:
    """Every action the table allows from ``state``, in table order."""
    return [name for name, t in TRANSITIONS.items() if state in t.sources]
