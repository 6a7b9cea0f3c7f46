"""安全日志 for admins (a province admin sees every entry, another admin those about the users of their
region's units), and ``record_request``: the entry for what the logged-in user does in this request."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user, login_required

from tracker import db, securitylog
from tracker.auth import current_membership
from tracker.models import Role

bp = Blueprint("security_log", __name__, url_prefix="/admin/security-log")


def record_request(kind: str, now: dt.datetime, **detail: Any) -> None:
    """An entry about the logged-in user acting through their membership, from this request's address
    (added to the session: the caller commits)."""
    securitylog.record(db.session(), kind, now=now, user=current_user.user, membership=current_membership(),
                       remote_addr=request.remote_addr or "", detail=detail)


@bp.route("")
@login_required
def index():
    membership = current_membership()
    if membership.role != Role.admin.value:
        abort(403)
    f = securitylog.LogFilter.from_args(request.args)
    page = securitylog.log_page(db.session(), membership, f, request.args.get("after"),
                                current_app.config["PAGE_SIZE"])
    args = {k: v for k, v in {"kind": f.kind, "username": f.username, "from": f.date_from and f.date_from.isoformat(),
                              "to": f.date_to and f.date_to.isoformat()}.items() if v}
    return render_template(
        "admin/security_log.html", page=page, f=f, kinds=securitylog.KINDS,
        detail_labels=securitylog.DETAIL_LABELS, reasons=securitylog.REASONS, by_cli=securitylog.BY_COMMAND_LINE,
        everything=securitylog.is_province_admin(membership),
        first_url=url_for("security_log.index", **args),
        next_url=url_for("security_log.index", **args, after=page.next_cursor) if page.next_cursor else None)
