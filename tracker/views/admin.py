"""Administration within the admin's region subtree: users and memberships, units, regions."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from tracker import calendars, db, escalation, ladder, notify, outbox, schedule, settings
from tracker.accounts import (
    NewUser,
    add_membership,
    change_role,
    create_region,
    create_unit,
    create_user,
    end_membership,
    set_password,
    set_user_active,
)
from tracker.auth import current_membership
from tracker.forms import (
    CalendarDayForm,
    CalendarImportForm,
    CsrfOnlyForm,
    LadderRuleForm,
    MembershipForm,
    PasswordResetForm,
    RegionForm,
    RoleChangeForm,
    SettingsForm,
    UnitForm,
    UserForm,
    options,
)
from tracker.i18n import N_
from tracker.models import (
    ROLE_LABELS,
    UNIT_KIND_LABELS,
    CalendarDay,
    CalendarYear,
    EscalationRule,
    Membership,
    OutboxMail,
    Region,
    Unit,
    User,
)
from tracker.permissions import can_admin_province, in_subtree, visible_regions, visible_units
from tracker.queries import region_choices, unit_choices
from tracker.timeutil import local_date, utcnow
from tracker.views.common import attempt

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def _admins_only():
    if current_membership().role != "admin":
        abort(403)


def _user_in_scope_or_404(user_id: int) -> User:
    user = db.session().get(User, user_id)
    membership = current_membership()
    if user is None or not any(in_subtree(membership, m.unit.region) for m in user.memberships):
        abort(404)
    return user


def _read_only_unless(editable: bool) -> None:
    """Nation- and province-wide settings: other admins read the page, and their POST is refused (403)."""
    if request.method == "POST" and not editable:
        abort(403)


def _role_choices():
    return list(ROLE_LABELS.items())


@bp.route("/users", methods=["GET", "POST"])
def users():
    s, membership = db.session(), current_membership()
    form = UserForm()
    form.unit_id.choices = options(unit_choices(s, membership))
    form.role.choices = options(_role_choices())
    if form.validate_on_submit():
        new = NewUser(form.username.data, form.display_name.data, form.password.data, form.email.data or "",
                      form.phone.data or "")
        unit = s.get(Unit, form.unit_id.data)
        if attempt(lambda: create_user(s, membership, utcnow(), new, unit, form.role.data,
                                        hash_method=current_app.config["PASSWORD_HASH_METHOD"],
                                        remote_addr=request.remote_addr or ""),
                    _("已创建用户 %(name)s", name=new.username)):
            return redirect(url_for("admin.users"))
    unit_ids = select(Unit.id).where(Unit.id.in_(visible_units(membership).with_only_columns(Unit.id)))
    listed = s.scalars(select(User).join(Membership).where(Membership.unit_id.in_(unit_ids)).distinct()
                       .order_by(User.username)).all()
    return render_template("admin/users.html", form=form, users=listed), 400 if form.errors else 200


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user(user_id: int):
    s, membership = db.session(), current_membership()
    account = _user_in_scope_or_404(user_id)
    form = MembershipForm(prefix="m")
    form.unit_id.choices = options(unit_choices(s, membership))
    form.role.choices = options(_role_choices())
    if form.validate_on_submit():
        unit = s.get(Unit, form.unit_id.data)
        if attempt(lambda: add_membership(s, membership, utcnow(), account, unit, form.role.data,
                                          remote_addr=request.remote_addr or ""), _("已授予身份")):
            return redirect(url_for("admin.user", user_id=user_id))
    role_form = RoleChangeForm(prefix="r")
    role_form.role.choices = options(_role_choices())
    return render_template("admin/user.html", account=account, form=form, reset=PasswordResetForm(prefix="p"),
                           button=CsrfOnlyForm(), role_form=role_form), 400 if form.errors else 200


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    s, membership = db.session(), current_membership()
    account = _user_in_scope_or_404(user_id)
    form = PasswordResetForm(prefix="p")
    if form.validate_on_submit():
        attempt(lambda: set_password(s, membership, utcnow(), account, form.password.data,
                                      temporary=form.temporary.data, remote_addr=request.remote_addr or "",
                                      hash_method=current_app.config["PASSWORD_HASH_METHOD"]),
                _("密码已重置，该用户须登录后立即修改") if form.temporary.data else _("密码已重置"))
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/active/<int:active>")
def set_active(user_id: int, active: int):
    s, membership = db.session(), current_membership()
    account = _user_in_scope_or_404(user_id)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: set_user_active(s, membership, utcnow(), account, bool(active),
                                        remote_addr=request.remote_addr or ""), _("已保存"))
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/memberships/<int:membership_id>/end")
def revoke(membership_id: int):
    s, membership = db.session(), current_membership()
    target = s.get(Membership, membership_id)
    if target is None or not in_subtree(membership, target.unit.region):
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: end_membership(s, membership, utcnow(), target, remote_addr=request.remote_addr or ""),
                _("已停用该身份"))
    return redirect(url_for("admin.user", user_id=target.user_id))


@bp.post("/memberships/<int:membership_id>/role")
def set_role(membership_id: int):
    """变更角色 of one membership (same unit); the user's sessions and API tokens end."""
    s, membership = db.session(), current_membership()
    target = s.get(Membership, membership_id)
    if target is None or not in_subtree(membership, target.unit.region):
        abort(404)
    form = RoleChangeForm(prefix="r")
    form.role.choices = options(_role_choices())
    if form.validate_on_submit():
        attempt(lambda: change_role(s, membership, utcnow(), target, form.role.data,
                                    remote_addr=request.remote_addr or ""), _("已变更角色"))
    return redirect(url_for("admin.user", user_id=target.user_id))


@bp.route("/units", methods=["GET", "POST"])
def units():
    s, membership = db.session(), current_membership()
    form = UnitForm()
    form.region_id.choices = options(region_choices(s, membership))
    form.kind.choices = options(list(UNIT_KIND_LABELS.items()))
    if form.validate_on_submit():
        region = s.get(Region, form.region_id.data)
        aliases = [a for a in (form.aliases.data or "").replace("，", ",").split(",")]
        if attempt(lambda: create_unit(s, membership, utcnow(), form.name.data, region, form.kind.data, aliases),
                    _("已添加单位")):
            return redirect(url_for("admin.units"))
    listed = s.scalars(visible_units(membership).order_by(Region.path, Unit.name)).all()
    return render_template("admin/units.html", form=form, units=listed), 400 if form.errors else 200


@bp.route("/regions", methods=["GET", "POST"])
def regions():
    s, membership = db.session(), current_membership()
    form = RegionForm()
    form.parent_id.choices = options(region_choices(s, membership))
    if form.validate_on_submit():
        parent = s.get(Region, form.parent_id.data)
        if attempt(lambda: create_region(s, membership, utcnow(), form.name.data, parent,
                                          is_zone=form.is_zone.data), _("已添加地区")):
            return redirect(url_for("admin.regions"))
    listed = s.scalars(visible_regions(membership).order_by(Region.path)).all()
    return render_template("admin/regions.html", form=form, regions=listed,
                           base_level=membership.unit.region.level), 400 if form.errors else 200


@bp.route("/calendar", methods=["GET", "POST"])
def calendar():
    s, membership = db.session(), current_membership()
    year = request.args.get("year", type=int) or local_date(utcnow()).year
    if not 1900 <= year <= 2200:  # a date outside these years is a typing error, not a calendar
        year = local_date(utcnow()).year
    form = CalendarDayForm(prefix="d")
    editable = can_admin_province(membership)
    _read_only_unless(editable)
    if form.validate_on_submit() and editable:
        workday = {"holiday": False, "workday": True, "normal": None}[form.kind.data]
        if attempt(lambda: calendars.set_day(s, membership, utcnow(), form.day.data, workday, form.name.data or ""),
                    _("工作日历已更新")):
            return redirect(url_for("admin.calendar", year=form.day.data.year))
    days = s.scalars(select(CalendarDay).where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
                     .order_by(CalendarDay.day)).all()
    return render_template("admin/calendar.html", year=year, days=days, form=form, editable=editable,
                           year_row=s.get(CalendarYear, year), upload=CalendarImportForm(prefix="u"),
                           button=CsrfOnlyForm(), statutory=calendars.load(s).is_provisional(dt.date(year, 1, 1)))


@bp.post("/calendar/import")
def calendar_import():
    s, membership = db.session(), current_membership()
    form = CalendarImportForm(prefix="u")
    if not can_admin_province(membership):
        abort(403)
    if form.validate_on_submit():
        def load():
            text = form.file.data.read().decode("utf-8-sig", errors="strict")
            return calendars.import_year(s, membership, utcnow(), calendars.parse_csv(text), form.source.data or "")
        try:
            attempt(load, _("工作日历已导入并确认"))
        except UnicodeDecodeError:
            s.rollback()
            flash(_("文件不是UTF-8编码的CSV"), "error")
    return redirect(url_for("admin.calendar"))


@bp.post("/calendar/<int:year>/confirm/<int:confirmed>")
def calendar_confirm(year: int, confirmed: int):
    s, membership = db.session(), current_membership()
    if not can_admin_province(membership):
        abort(403)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: calendars.set_confirmed(s, membership, utcnow(), year, bool(confirmed)), _("已保存"))
    return redirect(url_for("admin.calendar", year=year))


@bp.route("/settings", methods=["GET", "POST"])
def time_settings():
    s, membership = db.session(), current_membership()
    current = settings.time_settings(s)
    form = SettingsForm(data={"every": current.reporting.every, "due_day": current.reporting.due_day,
                              "tolerance": current.tolerance, "immediate_workdays": current.immediate_workdays})
    editable = can_admin_province(membership)
    _read_only_unless(editable)
    if form.validate_on_submit() and editable:
        def save():
            now = utcnow()
            settings.set_reporting_period(s, membership, now, form.every.data, form.due_day.data)
            settings.set_number(s, membership, now, "schedule_tolerance", "points", form.tolerance.data, 0, 100,
                                N_("进度容差"))
            settings.set_number(s, membership, now, "immediate_workdays", "days", form.immediate_workdays.data,
                                1, 60, N_("立行立改时限"))
            schedule.refresh_all(s, local_date(now), settings.time_settings(s))
        if attempt(save, _("设置已保存")):
            return redirect(url_for("admin.time_settings"))
    return render_template("admin/settings.html", form=form, editable=editable)


@bp.get("/mail")
def mail():
    """发件箱: mails that failed and mails waiting for a retry (province admins)."""
    s = db.session()
    if not can_admin_province(current_membership()):
        abort(403)
    return render_template("admin/mail.html", failed=outbox.failed_mails(s), retrying=outbox.retrying_mails(s),
                           counts=outbox.queue_counts(s), server=current_app.config.get("MAIL_SERVER"),
                           folder=current_app.config.get("MAIL_FOLDER"), button=CsrfOnlyForm())


@bp.post("/mail/<int:mail_id>/retry")
def mail_retry(mail_id: int):
    s, membership = db.session(), current_membership()
    if not can_admin_province(membership):
        abort(403)
    mail = s.get(OutboxMail, mail_id)
    if mail is None:
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: outbox.retry(s, membership, utcnow(), mail), _("已重新排队，将在下次投递时发送"))
    return redirect(url_for("admin.mail"))


@bp.route("/escalation", methods=["GET", "POST"])
def escalation_rules():
    s, membership = db.session(), current_membership()
    rules = s.scalars(select(EscalationRule).order_by(EscalationRule.level)).all()
    editable = can_admin_province(membership)
    _read_only_unless(editable)
    # 预警 has no mode to choose (the scan applies it; the page shows no select): its form carries a valid
    # placeholder, which ``update_rule`` ignores — with its stored "scan" the whole page could never be saved.
    forms = {r.level: LadderRuleForm(prefix=f"r{r.level}", data={
        "threshold": r.threshold_workdays, "mode": r.mode if r.level > ladder.WARNING else "auto"})
        for r in rules if r.mode != "manual"}
    outer = CsrfOnlyForm()
    if editable and outer.validate_on_submit() and all(f.validate() for f in forms.values()):
        def save():
            now = utcnow()
            for level, form in forms.items():
                escalation.update_rule(s, membership, now, level, form.threshold.data, form.mode.data)
            schedule.refresh_all(s, local_date(now))
        if attempt(save, _("督办规则已保存")):
            return redirect(url_for("admin.escalation_rules"))
    return render_template("admin/escalation.html", rules=rules, forms=forms, outer=outer, editable=editable,
                           unreachable=notify.unreachable_units(s, membership.unit.region))
