"""Errors of the API as RFC 9457 problem details (``application/problem+json``): a machine code and a
Chinese ``detail``; validation errors list every field with a Chinese reason."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from pydantic import ValidationError

from tracker.api.schemas import FieldError, Problem

PROBLEM_TYPE = "application/problem+json"

# code -> (HTTP status, title)
CODES: dict[str, tuple[int, str]] = {
    "BAD_REQUEST": (400, "请求无效"),
    "UNAUTHORIZED": (401, "未认证"),
    "FORBIDDEN": (403, "无权操作"),
    "NOT_FOUND": (404, "不存在"),
    "METHOD_NOT_ALLOWED": (405, "不支持该请求方式"),
    "VERSION_CONFLICT": (409, "版本冲突"),
    "IDEMPOTENCY_IN_PROGRESS": (409, "请求正在处理"),
    "PAYLOAD_TOO_LARGE": (413, "请求过大"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "不支持的请求格式"),
    "VALIDATION_ERROR": (422, "请求数据校验失败"),
    "ACTION_REFUSED": (422, "操作被拒绝"),
    "IDEMPOTENCY_KEY_REUSED": (422, "幂等键已用于其他请求"),
    "TOO_MANY_REQUESTS": (429, "请求过于频繁"),
    "STORAGE_FAILED": (500, "文件未能保存"),
    "INSUFFICIENT_STORAGE": (507, "服务器存储空间不足"),
}

# Statuses an operation may answer besides its success, with the meaning shown in the document.
STATUS_DESCRIPTIONS = {
    400: "请求无效（如JSON格式错误）/ malformed request",
    401: "缺少或无效的API令牌 / missing, invalid or revoked token",
    403: "当前身份无权执行 / the token's membership may not do this",
    404: "不存在或不在管辖范围内 / not found, or out of the membership's scope",
    409: "版本冲突：已被他人修改，请刷新后重试 / the task changed since its version was read",
    413: "上传的文件过大 / upload too large",
    415: "请求体须为JSON或multipart/form-data / unsupported body type",
    422: "校验失败或操作被拒绝 / validation failed, or the action was refused by the rules",
    429: "令牌校验失败次数过多 / too many failed token checks from this address",
}


class ApiError(Exception):
    """An answer other than success, raised anywhere below the dispatcher."""

    def __init__(self, code: str, detail: str, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.errors, self.headers = code, detail, errors, headers or {}

    @property
    def status(self) -> int:
        return CODES[self.code][0]


def problem_response(error: ApiError) -> Response:
    status, title = CODES[error.code]
    body = Problem(type=f"urn:zhenggai:problem:{error.code.lower()}", title=title, status=status, code=error.code,
                   detail=error.detail, errors=error.errors)
    response = Response(body.model_dump_json(exclude_none=True), status=status, mimetype=PROBLEM_TYPE)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    errors = [FieldError(field=_location(prefix, e["loc"]), code=e["type"], message=_message(e))
              for e in exc.errors(include_url=False)]
    return ApiError("VALIDATION_ERROR", "请求数据校验失败：" + "；".join(f"{e.field} {e.message}" for e in errors),
                    errors=errors)


def _location(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    return ".".join([prefix, *parts] if prefix else parts) or "(body)"


_MESSAGES = {
    "missing": "此项必填",
    "extra_forbidden": "不允许的字段",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "bool_parsing": "须为true或false",
    "bool_type": "须为true或false",
    "string_type": "须为字符串",
    "string_pattern_mismatch": "格式不正确",
    "date_parsing": "须为YYYY-MM-DD格式的日期",
    "date_from_datetime_parsing": "须为YYYY-MM-DD格式的日期",
    "date_from_datetime_inexact": "须为YYYY-MM-DD格式的日期",
    "date_type": "须为YYYY-MM-DD格式的日期",
    "list_type": "须为数组",
    "model_type": "须为JSON对象",
    "model_attributes_type": "须为JSON对象",
    "dict_type": "须为JSON对象",
    "json_invalid": "不是有效的JSON",
    "literal_error": "取值无效",
    "enum": "取值无效",
    "value_error": "取值无效",
}


def _message(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("greater_than_equal", "greater_than"):
        return f"须不小于{ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"须不大于{ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_short":
        return "不能为空"
    if kind == "string_too_long":
        return f"不能超过{ctx.get('max_length')}个字符"
    if kind == "too_short":
        return f"至少需要{ctx.get('min_length')}项"
    if kind == "too_long":
        return f"最多{ctx.get('max_length')}项"
    if kind == "literal_error" and "expected" in ctx:
        return f"须为以下之一：{ctx['expected']}"
    if kind == "value_error" and "date must lie" in str(ctx.get("error", "")):
        return "日期须在2000年至2099年之间"
    if kind == "value_error" and "NUL" in str(ctx.get("error", "")):
        return "不能包含NUL字符"
    return _MESSAGES.get(kind, "取值无效")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
