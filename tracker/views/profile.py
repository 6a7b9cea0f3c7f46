"""个人设置: the user's own password (修改密码), and personal API tokens — listed, created (the token is shown
once) and revoked."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from tracker import db, tokens
from tracker.accounts import change_own_password
from tracker.audit import ActionError
from tracker.auth import SessionUser, current_membership, mark_seen, membership_by_id
from tracker.babel import translate
from tracker.forms import CsrfOnlyForm, PasswordChangeForm, options
from tracker.templating import membership_label
from tracker.timeutil import utcnow

bp = Blueprint("profile", __name__, url_prefix="/profile")


class TokenForm(FlaskForm):
    name = StringField(_l("令牌名称"), validators=[DataRequired(message=_l("此项必填")),
                                                Length(max=tokens.MAX_NAME_LENGTH)],
                       description=_l("用途，如：省级平台对接"))
    membership_id = SelectField(_l("以哪个身份调用"), coerce=int)


def _token_form() -> TokenForm:
    form = TokenForm()
    form.membership_id.choices = options([(m.id, membership_label(m)) for m in current_user.memberships if m.active])
    if form.membership_id.data is None:
        form.membership_id.data = current_membership().id
    return form


def _page(form: TokenForm, secret: str | None = None, status: int = 200):
    listed = tokens.tokens_of(db.session(), current_user.user)
    return render_template("profile.html", form=form, tokens=listed, secret=secret, revoke_form=CsrfOnlyForm(),
                           usable=tokens.is_usable), status


@bp.route("")
@login_required
def index():
    return _page(_token_form())


@bp.post("/tokens")
@login_required
def create_token():
    """The new token is rendered in this answer only (never flashed: the session cookie is not encrypted)."""
    form = _token_form()
    if not form.validate_on_submit():
        return _page(form, status=400)
    s = db.session()
    membership = membership_by_id(form.membership_id.data)
    try:
        if membership is None:
            raise ActionError("所选身份不存在或已停用")
        made = tokens.create_token(s, current_membership(), utcnow(), current_user.user, membership, form.name.data,
                                   remote_addr=request.remote_addr or "")
        s.commit()
    except ActionError as exc:
        s.rollback()
        flash(translate(exc), "error")
        return _page(form, status=400)
    return _page(_token_form(), secret=made.secret)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    s = db.session()
    token = tokens.token_of(s, current_user.user, token_id)
    if token is None:
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        try:
            tokens.revoke_token(s, current_membership(), utcnow(), token, remote_addr=request.remote_addr or "")
            s.commit()
            flash(_("已撤销令牌“%(name)s”", name=token.name), "success")
        except ActionError as exc:
            s.rollback()
            flash(translate(exc), "error")
    return redirect(url_for("profile.index"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """修改密码; after an admin's forced reset every page leads here until it is done (``auth``)."""
    form = PasswordChangeForm()
    user = current_user.user
    if form.validate_on_submit():
        s = db.session()
        try:
            change_own_password(s, current_membership() if current_user.memberships else None, utcnow(), user,
                                form.current.data, form.password.data, remote_addr=request.remote_addr or "",
                                hash_method=current_app.config["PASSWORD_HASH_METHOD"])
            s.commit()
        except ActionError as exc:
            s.rollback()
            flash(translate(exc), "error")
            return render_template("password.html", form=form, forced=user.must_change_password), 400
        login_user(SessionUser(user))  # this session goes on under the new generation; every other one ended
        mark_seen()
        flash(_("密码已修改；其他设备上的登录已退出，API令牌已全部撤销"), "success")
        return redirect(url_for("tasks.index"))
    return render_template("password.html", form=form, forced=user.must_change_password), (
        400 if form.is_submitted() else 200)
