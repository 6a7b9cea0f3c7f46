"""What several blueprints share: run one operation, commit or roll back, flash the outcome; unit
fields as a type-ahead."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, url_for
from flask_babel import gettext as _
from wtforms import SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget

from tracker import db
from tracker.audit import ActionError
from tracker.babel import translate
from tracker.forms import options
from tracker.models import Membership
from tracker.queries import unit_choices


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


def unit_picker(field, s, membership: Membership, *, anywhere: bool = False, first=()) -> None:
    """Make a unit field (``SelectField`` or ``SelectMultipleField`` of unit ids) a type-ahead.

    Its choices are only its chosen units — its default or what was posted, if in scope — not every unit
    of the scope (a province holds about a thousand: rendering them made a page several times slower), so
    validation is unchanged: a posted unit out of scope is no choice and fails. ``static/js/units.js``
    adds a search box that asks ``lists.unit_search`` for matching units and adds the picked one. Several
    units show as ticked checkboxes (untick to drop one); without JavaScript the chosen units still post."""
    chosen = field.data if isinstance(field.data, list | tuple) else [field.data]
    field.choices = options([*first, *unit_choices(s, membership, anywhere=anywhere, ids=chosen)])
    attributes = {"class": "unit-picker", "data-search-label": _("输入名称查找单位"),
                  "data-units": url_for("lists.unit_search", **({"anywhere": 1} if anywhere else {}))}
    if isinstance(field, SelectMultipleField):
        field.option_widget = _Attributes(CheckboxInput(), {"required": False})  # one ticked box is enough
        field.widget = _Attributes(ListWidget(prefix_label=False), {**attributes, "data-name": field.name})
    else:
        field.widget = _Attributes(field.widget, attributes)


class _Attributes:
    """A widget that adds attributes to its field's element only (``render_kw`` would also reach each
    option's checkbox)."""

    def __init__(self, widget, attributes: dict[str, str]):
        self.widget, self.attributes = widget, attributes

    def __call__(self, field, **kwargs):
        return self.widget(field, **{**self.attributes, **kwargs})
