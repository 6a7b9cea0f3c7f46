"""What several blueprints share: run one operation, commit or roll back, flash the outcome."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash

from tracker import db
from tracker.audit import ActionError
from tracker.babel import translate


def attempt(change: Callable[[], object], success: str) -> bool:
    """Run ``change``; on success commit and flash ``success``, on a refusal roll back and flash why."""
    s = db.session()
    try:
        change()
        s.commit()
    except ActionError as exc:
        s.rollback()
        flash(translate(exc), "error")
        return False
    flash(success, "success")
    return True
