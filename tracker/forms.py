"""WTForms (Flask-WTF: CSRF on every form). Choices are filled by the views from scoped queries.

Each workflow action has one form; ``ACTION_FORMS`` maps the action to it, and ``params`` turns a
validated form into the keyword arguments ``operations.perform`` takes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import escape
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    MultipleFileField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from tracker.babel import translate
from tracker.models import CATEGORIES, DEADLINE_KINDS, EVIDENCE_KINDS, TASK_KINDS

REQUIRED = _l("此项必填")
# A task id typed into a form: ids are 32-bit in the database (a longer number would overflow its driver).
TASK_ID = NumberRange(1, 2**31 - 1, _l("没有这个编号的任务"))


class _Label(LazyString):
    """An option's label, translated when shown and escaped like any text: flask_babel's ``LazyString``
    claims to be markup (``__html__`` returns it raw), and these labels carry names users typed."""

    def __html__(self) -> str:
        return escape(str(self))


def options(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices. Labels show in the user's language when the catalogue
    knows them (roles, kinds, measures …); names of units and regions are data and come back as they are."""
    return [SelectChoice(value, _Label(translate, label) if isinstance(label, str) else label)
            for value, label in pairs]


def _required():
    return DataRequired(message=REQUIRED)


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[_required(), Length(max=80)])
    password = PasswordField(_l("密码"), validators=[_required(), Length(max=200)])


class SwitchMembershipForm(FlaskForm):
    membership_id = SelectField(_l("当前身份"), coerce=int)


# --- registering and editing ---------------------------------------------------------------------


class TaskFieldsForm(FlaskForm):
    """The ledger fields a supervisor enters by hand (登记) or edits (修改台账)."""

    code = StringField(_l("问题编号"), validators=[Optional(), Length(max=100)],
                       description=_l("留空则自动生成"))
    title = StringField(_l("问题名称"), validators=[_required(), Length(max=300)])
    kind = SelectField(_l("问题类型"), choices=options((k, k) for k in TASK_KINDS))
    category = SelectField(_l("问题领域"), choices=options((c, c) for c in CATEGORIES))
    description = TextAreaField(_l("问题描述"), validators=[Length(max=20000)])
    responsible_leader = StringField(_l("责任领导"), validators=[Length(max=200)])
    contact = StringField(_l("联系人及电话"), validators=[Length(max=200)])
    target = TextAreaField(_l("整改目标"), validators=[Length(max=20000)])
    measures = TextAreaField(_l("整改措施"), validators=[Length(max=20000)])
    accountability = TextAreaField(_l("问责情况"), validators=[Length(max=20000)])
    remarks = TextAreaField(_l("备注"), validators=[Length(max=20000)])
    version = HiddenField()


class RegisterForm(TaskFieldsForm):
    channel_id = SelectField(_l("问题来源"), coerce=int)
    round_id = SelectField(_l("批次/轮次"), coerce=int)
    region_id = SelectField(_l("所在地区"), coerce=int)
    problem_title = StringField(_l("所属问题"), validators=[Length(max=2000)],
                                description=_l("同一督察反馈问题分解的多个任务填写相同的所属问题"))
    complainant_name = StringField(_l("信访人姓名"), validators=[Length(max=100)])
    complainant_phone = StringField(_l("信访人电话"), validators=[Length(max=50)])
    complainant_address = StringField(_l("信访人地址"), validators=[Length(max=300)])
    complainant_content = TextAreaField(_l("信访内容"), validators=[Length(max=20000)])


# --- workflow actions ------------------------------------------------------------------------------


def _deadline_fields():
    return (
        SelectField(_l("时限类型"), choices=options(DEADLINE_KINDS.items()), default="date"),
        DateField(_l("整改时限"), validators=[Optional()]),
        StringField(_l("时限要求（原文）"), validators=[Length(max=200)], description=_l("如：2026年6月底前")),
    )


def posted_version(field) -> int:
    """The task version a form was made from; anything but a number is a version no task has (-1), so the
    operation answers with the conflict message (已被他人修改，请刷新后重试)."""
    try:
        return int(str(field.data).strip())
    except (TypeError, ValueError):
        return -1


class ActionForm(FlaskForm):
    """Every action form carries the task version it was made from."""

    version = HiddenField()

    def params(self) -> dict[str, Any]:
        return {name: f.data for name, f in self._fields.items() if name not in {"version", "csrf_token"}}


def _evidence_fields(required: bool):
    files_validators = [Optional()] if not required else []
    return (
        SelectField(_l("材料类型"), choices=options(EVIDENCE_KINDS.items()), default="after"),
        MultipleFileField(_l("佐证材料"), validators=files_validators),
    )


class AssignForm(ActionForm):
    leads = SelectMultipleField(_l("牵头单位"), coerce=int, validators=[InputRequired(message=REQUIRED)])
    participants = SelectMultipleField(_l("参与单位"), coerce=int, validators=[Optional()])
    deadline_kind, deadline, deadline_text = _deadline_fields()


class ReasonForm(ActionForm):
    reason = TextAreaField(_l("理由"), validators=[_required(), Length(max=5000)])


class EmptyForm(ActionForm):
    pass


class OpinionForm(ActionForm):
    opinion = TextAreaField(_l("意见"), validators=[Optional(), Length(max=5000)])


class PlanForm(ActionForm):
    target = TextAreaField(_l("整改目标"), validators=[_required(), Length(max=20000)])
    measures = TextAreaField(_l("整改措施"), validators=[_required(), Length(max=20000)])
    milestones = TextAreaField(
        _l("阶段目标"), validators=[Length(max=20000)],
        description=_l("每行一个：日期 内容 计划进度，如 2026-06-30 完成截污管网建设 60%"),
    )
    responsible_leader = StringField(_l("责任领导"), validators=[Length(max=200)])
    contact = StringField(_l("联系人及电话"), validators=[Length(max=200)])

    def validate_milestones(self, field):
        self.parsed_milestones = parse_milestones(field.data or "")

    def params(self) -> dict[str, Any]:
        data = super().params()
        data["milestones"] = getattr(self, "parsed_milestones", [])
        return data


MILESTONE_LINE = re.compile(r"^\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?\s+(.+?)(?:\s+(\d{1,3})\s*[%％])?\s*$")


def parse_milestones(text: str) -> list[dict[str, Any]]:
    """Lines of ``日期 内容 [计划进度%]`` into milestone dicts; a bad line is a ValidationError."""
    result = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = MILESTONE_LINE.match(line)
        if not match:
            raise ValidationError(gettext("第%(n)s行格式不对，应为“2026-06-30 内容 60%%”", n=number))
        year, month, day, description, percent = match.groups()
        try:
            due_on = dt.date(int(year), int(month), int(day))
        except ValueError:
            raise ValidationError(gettext("第%(n)s行的日期无效", n=number)) from None
        result.append({"due_on": due_on, "description": description.strip(),
                       "planned_percent": int(percent) if percent else None})
    return result


class ReportForm(ActionForm):
    text = TextAreaField(_l("进展情况"), validators=[_required(), Length(max=20000)])
    percent = IntegerField(_l("完成进度（%）"), validators=[Optional(), NumberRange(0, 100, _l("须在0到100之间"))])
    milestones_met = SelectMultipleField(_l("本次完成的阶段目标"), coerce=int, validators=[Optional()])
    evidence_kind, files = _evidence_fields(required=False)


class SubmitForm(ActionForm):
    text = TextAreaField(_l("整改完成情况"), validators=[_required(), Length(max=20000)])
    evidence_kind, files = _evidence_fields(required=True)


class PreVerifyForm(ActionForm):
    opinion = TextAreaField(_l("初验意见"), validators=[_required(), Length(max=5000)])
    evidence_kind, files = _evidence_fields(required=False)


class CloseForm(ActionForm):
    opinion = TextAreaField(_l("验收意见"), validators=[_required(), Length(max=5000)])
    closed_on = DateField(_l("销号日期"), validators=[_required()])
    verifier_unit_id = SelectField(_l("验收单位"), coerce=int, validators=[Optional()])
    closure_doc_no = StringField(_l("销号文号"), validators=[Length(max=100)])
    evidence_kind, files = _evidence_fields(required=False)
    # 销号标准: the ids of the channel's active items the verifier ticked (choices filled by the view).
    checklist = SelectMultipleField(_l("销号标准"), coerce=int, validators=[Optional()])


class ReopenForm(ActionForm):
    reason = TextAreaField(_l("重新整改理由"), validators=[_required(), Length(max=5000)])
    deadline_kind, deadline, deadline_text = _deadline_fields()


class ReassignForm(ActionForm):
    leads = SelectMultipleField(_l("新的牵头单位"), coerce=int, validators=[InputRequired(message=REQUIRED)])
    participants = SelectMultipleField(_l("参与单位"), coerce=int, validators=[Optional()])
    reason = TextAreaField(_l("改派理由"), validators=[Length(max=5000)])


class MergeForm(ActionForm):
    merge_into = IntegerField(_l("保留的任务（编号ID）"), validators=[InputRequired(message=REQUIRED), TASK_ID])
    reason = TextAreaField(_l("合并理由"), validators=[_required(), Length(max=5000)])


class ExtensionRequestForm(ActionForm):
    new_deadline = DateField(_l("申请延期至"), validators=[_required()])
    reason = TextAreaField(_l("延期理由"), validators=[_required(), Length(max=5000)])


class ExtensionDecisionForm(ActionForm):
    decision = SelectField(_l("审批意见"), choices=options([("approve", _l("同意延期")), ("deny", _l("不同意延期"))]))
    note = TextAreaField(_l("说明"), validators=[Length(max=5000)], description=_l("不同意时必填"))


class ChangeDeadlineForm(ActionForm):
    reason = TextAreaField(_l("调整理由"), validators=[_required(), Length(max=5000)])
    deadline_kind, deadline, deadline_text = _deadline_fields()


class ConfirmMeasureForm(ActionForm):
    level = SelectField(_l("督办措施"), coerce=int)
    doc_no = StringField(_l("文号"), validators=[Length(max=100)], description=_l("函告至约谈须填写"))
    decided_on = DateField(_l("决定日期"), validators=[Optional()])
    note = TextAreaField(_l("说明"), validators=[Length(max=5000)])


ACTION_FORMS: dict[str, type[ActionForm]] = {
    "confirm_measure": ConfirmMeasureForm,
    "request_extension": ExtensionRequestForm,
    "decide_extension": ExtensionDecisionForm,
    "change_deadline": ChangeDeadlineForm,
    "assign": AssignForm,
    "decline": ReasonForm,
    "sign": EmptyForm,
    "submit_plan": PlanForm,
    "approve_plan": OpinionForm,
    "return_plan": ReasonForm,
    "report": ReportForm,
    "submit": SubmitForm,
    "pre_verify": PreVerifyForm,
    "return": ReasonForm,
    "close": CloseForm,
    "reopen": ReopenForm,
    "reassign": ReassignForm,
    "cancel": ReasonForm,
    "merge": MergeForm,
}


class SplitChildForm(FlaskForm):
    """One row of the 分解交办 form (a sub-form: CSRF is on the outer form)."""

    class Meta:
        csrf = False

    region_id = SelectField(_l("地区"), coerce=int, validators=[Optional()])
    title = StringField(_l("子任务名称"), validators=[Length(max=300)])
    leads = SelectMultipleField(_l("牵头单位"), coerce=int, validators=[Optional()])
    deadline = DateField(_l("整改时限"), validators=[Optional()])


class LinkForm(FlaskForm):
    other_id = IntegerField(_l("关联任务ID"), validators=[InputRequired(message=REQUIRED), TASK_ID])
    note = StringField(_l("说明"), validators=[Length(max=500)])


# --- administration --------------------------------------------------------------------------------


# One address, name@host.domain, nothing else (WTForms' Email needs the email_validator package, not installed).
EMAIL = Regexp(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]+\Z", message=_l("邮箱格式不对"))


class UserForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[_required(), Length(max=80)])
    display_name = StringField(_l("姓名"), validators=[_required(), Length(max=100)])
    email = StringField(_l("电子邮箱"), validators=[Optional(), Length(max=200), EMAIL])
    phone = StringField(_l("电话"), validators=[Length(max=50)])
    password = PasswordField(_l("初始密码"), validators=[_required(), Length(max=200)])
    unit_id = SelectField(_l("单位"), coerce=int)
    role = SelectField(_l("角色"))


class MembershipForm(FlaskForm):
    unit_id = SelectField(_l("单位"), coerce=int)
    role = SelectField(_l("角色"))


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("新密码"), validators=[_required(), Length(max=200)])
    temporary = BooleanField(_l("临时密码：用户登录后须立即修改"), default=True)


class RoleChangeForm(FlaskForm):
    role = SelectField(_l("新角色"))


class PasswordChangeForm(FlaskForm):
    """修改密码 by the user: the current one, and the new one twice."""

    current = PasswordField(_l("当前密码"), validators=[_required(), Length(max=200)])
    password = PasswordField(_l("新密码"), validators=[_required(), Length(max=200)],
                             description=_l("至少10个字符，须同时包含字母和数字（或含符号），不能包含用户名"))
    confirm = PasswordField(_l("再次输入新密码"), validators=[_required(), Length(max=200)])

    def validate_confirm(self, field) -> None:
        if field.data != self.password.data:
            raise ValidationError(gettext("两次输入的新密码不一致"))


class UnitForm(FlaskForm):
    name = StringField(_l("单位名称"), validators=[_required(), Length(max=200)])
    region_id = SelectField(_l("所在地区"), coerce=int)
    kind = SelectField(_l("单位类型"))
    aliases = StringField(_l("简称/别名"), validators=[Length(max=1000)], description=_l("多个用逗号分隔"))


class RegionForm(FlaskForm):
    name = StringField(_l("地区名称"), validators=[_required(), Length(max=100)])
    parent_id = SelectField(_l("上级地区"), coerce=int)
    is_zone = BooleanField(_l("功能区（高新区、经开区等）"))


class CsrfOnlyForm(FlaskForm):
    """A button that changes data (logout, deactivate …): CSRF only."""


class CalendarDayForm(FlaskForm):
    day = DateField(_l("日期"), validators=[_required()])
    kind = SelectField(_l("类型"), choices=options([("holiday", _l("放假")), ("workday", _l("调休上班")),
                                                    ("normal", _l("恢复为普通日"))]))
    name = StringField(_l("名称"), validators=[Length(max=100)], description=_l("如：国庆节、国庆节调休上班"))


class CalendarImportForm(FlaskForm):
    file = FileField(_l("CSV文件（日期,是否上班,名称）"), validators=[_required()])
    source = StringField(_l("依据"), validators=[Length(max=200)], description=_l("如：国办发明电〔2026〕5号"))


class SettingsForm(FlaskForm):
    every = SelectField(_l("报送周期"), choices=options([("month", _l("每月")), ("quarter", _l("每季度"))]))
    due_day = IntegerField(_l("报送截止日（每期最后一个月的几号）"),
                           validators=[InputRequired(message=REQUIRED), NumberRange(1, 31, _l("须在1到31之间"))])
    tolerance = IntegerField(_l("进度容差（百分点）"),
                             validators=[InputRequired(message=REQUIRED), NumberRange(0, 100, _l("须在0到100之间"))])
    immediate_workdays = IntegerField(_l("立行立改时限（工作日）"), validators=[
        InputRequired(message=REQUIRED), NumberRange(1, 60, _l("须在1到60之间"))])


class LadderRuleForm(FlaskForm):
    """One rung's threshold and mode (函告 … 约谈: proposed or applied at once)."""

    class Meta:
        csrf = False

    threshold = IntegerField(_l("逾期工作日"), validators=[Optional(), NumberRange(0, 1000, _l("须在0到1000之间"))])
    mode = SelectField(_l("生效方式"), choices=options([("proposed", _l("提出建议，确认文号后生效")),
                                                       ("auto", _l("扫描时直接生效"))]))


class RegionRestrictionForm(FlaskForm):
    region_id = SelectField(_l("限批地区"), coerce=int)
    doc_no = StringField(_l("文号"), validators=[_required(), Length(max=100)])
    note = TextAreaField(_l("事由"), validators=[Length(max=5000)])


class LedgerImportForm(FlaskForm):
    """导入整改台账: an .xlsx or .xls workbook and the importer's options (DESIGN §7)."""

    file = FileField(_l("台账文件（.xlsx 或 .xls）"), validators=[_required()])
    dry_run = BooleanField(_l("只校验，不写入"))
    update = BooleanField(_l("更新已有问题（只更新文件中有值的字段，不改变状态）"))
    create_missing = BooleanField(_l("新建缺少的单位、地区和批次（仅管理员）"))


# --- closure checklist, 回头看 and 举一反三 -------------------------------------------------------------


class CriterionForm(FlaskForm):
    """One item of a channel's closure checklist (销号标准)."""

    text = TextAreaField(_l("销号标准"), validators=[_required(), Length(max=500)])
    required_kinds = SelectMultipleField(
        _l("须具备的佐证材料"), choices=options(EVIDENCE_KINDS.items()), validators=[Optional()],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        description=_l("勾选后，任务须有这些类型的佐证材料才能勾选本项并销号"))


class RecheckDrawForm(FlaskForm):
    """回头看抽查: how many closed tasks to draw, and from which (0 in a choice: all)."""

    size = IntegerField(_l("抽取数量"), default=5, validators=[
        InputRequired(message=REQUIRED), NumberRange(1, 200, _l("须在1到200之间"))])
    channel_id = SelectField(_l("问题来源"), coerce=int, default=0)
    round_id = SelectField(_l("批次/轮次"), coerce=int, default=0)
    region_id = SelectField(_l("所在地区"), coerce=int, default=0)
    unit_id = SelectField(_l("牵头单位"), coerce=int, default=0)
    closed_from = DateField(_l("销号日期自"), validators=[Optional()])
    closed_to = DateField(_l("销号日期至"), validators=[Optional()])
    seed = StringField(_l("随机种子"), validators=[Length(max=64)],
                       description=_l("留空则自动生成；同一种子对同一范围可复现同一抽样结果"))
    note = TextAreaField(_l("说明"), validators=[Length(max=2000)])


class RecheckResultForm(FlaskForm):
    """The finding on one sampled task; a regression (返黑返臭) needs a new deadline for 重新整改."""

    result = SelectField(_l("复查结果"), choices=options([("passed", _l("通过：整改成效保持")),
                                                          ("regressed", _l("返黑返臭：重新整改"))]))
    note = TextAreaField(_l("复查情况"), validators=[Length(max=5000)], description=_l("返黑返臭时必填"))
    deadline_kind, deadline, deadline_text = _deadline_fields()


class SimilarRowForm(FlaskForm):
    """One row of the 举一反三 form (a sub-form: CSRF is on the outer form)."""

    class Meta:
        csrf = False

    region_id = SelectField(_l("地区"), coerce=int, validators=[Optional()])
    title = StringField(_l("问题名称"), validators=[Length(max=300)], description=_l("留空则沿用原任务名称"))
    leads = SelectMultipleField(_l("牵头单位"), coerce=int, validators=[Optional()],
                                description=_l("选择后直接交办；不选则待交办"))
    deadline = DateField(_l("整改时限"), validators=[Optional()])
    deadline_text = StringField(_l("时限要求（原文）"), validators=[Length(max=200)])


class SimilarForm(FlaskForm):
    note = StringField(_l("关联说明"), validators=[Length(max=500)])
