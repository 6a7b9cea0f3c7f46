"""``/api/v1/openapi.json``: the OpenAPI 3.1 document, generated from the endpoint registry and the very
pydantic models that validate requests, so document and code cannot disagree."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tracker.api import idempotency
from tracker.api.problems import PROBLEM_TYPE, STATUS_DESCRIPTIONS
from tracker.api.registry import ENDPOINTS, JSON_TYPE, MULTIPART_TYPE, PREFIX, Endpoint
from tracker.api.schemas import MAX_ID, Problem

REF = "#/components/schemas/{model}"
VERSION = "1.0.0"

DESCRIPTION = """整改台账的 JSON API：省级平台等外部系统读取台账、驱动整改流程（统一督办、统一调度与办结反馈）。

- **认证**：在“个人设置”页面创建个人API令牌，请求头 `Authorization: Bearer <令牌>`。
  令牌绑定一个身份，权限与该身份在网页上完全相同；管辖范围外的任务返回404。
- **错误**：`application/problem+json`，含机器可读的 `code` 和中文 `detail`。
- **日期**：日期为 `YYYY-MM-DD`；时间为ISO 8601并带东八区时差（`+08:00`）。
- **并发**：办理操作须提交任务的 `version`，已被他人修改时返回409。
- **幂等**：POST请求可带 `Idempotency-Key` 请求头，24小时内以同一键重试不会重复办理，返回首次的结果。

The JSON API of the rectification ledger. Authenticate with a personal API token (`Authorization: Bearer …`)
made on the profile page; it acts exactly as its membership does on the web, and out-of-scope tasks are 404.
Errors are `application/problem+json` with a machine `code` and a Chinese `detail`. Dates are `YYYY-MM-DD`;
instants are ISO 8601 with the Asia/Shanghai offset. Actions carry the task's `version` (409 when stale).
POST requests may carry an `Idempotency-Key`: a retry within 24 hours answers as the first call and acts once.
See docs/API.md."""

TAGS = [
    {"name": "tasks", "description": "任务台账（读取）/ the ledger: reading tasks"},
    {"name": "actions", "description": "登记与办理操作（DESIGN §4）/ registering and workflow actions"},
    {"name": "ledger", "description": "序时进度报表、月度台账与归档 / report, monthly ledger, archives"},
    {"name": "reference", "description": "身份与基础数据 / the token's membership and reference lists"},
]


def document() -> dict[str, Any]:
    models = _models()
    refs, defs = models_json_schema([(m, mode) for m, mode in models], ref_template=REF)
    schemas = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        paths.setdefault(PREFIX + e.path, {})[e.method.lower()] = _operation(e, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "整改台账 API · Rectification ledger API", "version": VERSION, "description": DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": _problem_responses(),
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "个人API令牌（个人设置页面创建）/ a personal API token from the profile page"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _models() -> list[tuple[type[BaseModel], str]]:
    found: dict[tuple[type[BaseModel], str], None] = {(Problem, "serialization"): None}
    for e in ENDPOINTS:
        if e.body is not None:
            found[(e.body, "validation")] = None
        if e.response is not None:
            found[(e.response, "serialization")] = None
    return list(found)


def _operation(e: Endpoint, refs: dict) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": e.name, "summary": e.summary, "tags": [e.tag]}
    if e.description:
        op["description"] = e.description
    parameters = [_path_parameter(name) for name in e.path_params] + _query_parameters(e)
    if e.method == "POST":
        parameters.append({
            "name": idempotency.HEADER, "in": "header", "required": False,
            "description": "幂等键：24小时内以同一键重试只办理一次 / retries with the same key act once",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": idempotency.KEY_PATTERN}})
    if parameters:
        op["parameters"] = parameters
    if e.body is not None:
        content = {JSON_TYPE: {"schema": refs[(e.body, "validation")]}}
        if e.multipart:
            content[MULTIPART_TYPE] = {"schema": _multipart_schema(e.body),
                                       "encoding": {"files": {"contentType": "application/octet-stream"}}}
        op["requestBody"] = {"required": True, "content": content}
    op["responses"] = {str(e.status): _success(e, refs), **_errors(e)}
    return op


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": "ID",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _query_parameters(e: Endpoint) -> list[dict[str, Any]]:
    if e.query is None:
        return []
    schema = e.query.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    result = []
    for name, prop in schema["properties"].items():
        prop = _drop_null(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter.update(style="form", explode=True)
        result.append(parameter)
    return result


def _drop_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` fields as plain X where null cannot be sent (query strings, form fields)."""
    schema = copy.deepcopy(schema)
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        del schema["anyOf"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
        if schema.get("default", 0) is None:
            del schema["default"]
    return schema


def _multipart_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    schema["properties"] = {name: _drop_null(prop) for name, prop in schema["properties"].items()}
    schema["properties"]["files"] = {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "description": "佐证材料文件（可多个）/ evidence files"}
    return schema


def _success(e: Endpoint, refs: dict) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "成功 / success"}
    if e.download:
        answer["content"] = {media: {"schema": {"type": "string", "format": "binary"}} for media in e.download}
    elif e.response is not None:
        answer["content"] = {JSON_TYPE: {"schema": refs[(e.response, "serialization")]}}
    if e.method == "POST":
        answer["headers"] = {idempotency.REPLAYED_HEADER: {
            "description": "重放了同一幂等键的首次结果 / the answer of an earlier call with this key",
            "schema": {"type": "string", "enum": ["true"]}}}
    return answer


def _errors(e: Endpoint) -> dict[str, Any]:
    statuses = {401, 429, *e.errors}
    if e.path_params:
        statuses.add(404)
    if e.query is not None or e.body is not None:
        statuses.add(422)
    if e.body is not None:
        statuses.update({400, 413, 415})
    return {str(code): {"$ref": f"#/components/responses/Problem{code}"} for code in sorted(statuses)}


def _problem_responses() -> dict[str, Any]:
    problem = {PROBLEM_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}
    return {f"Problem{code}": {"description": text, "content": problem} for code, text in STATUS_DESCRIPTIONS.items()}
