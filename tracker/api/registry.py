"""The one registry of API endpoints, and the dispatcher every call goes through.

An ``Endpoint`` names its method, path, query and body models, response model and descriptions (中文 /
English). ``register`` turns each into a Flask route; ``openapi.document`` turns the same list into the
OpenAPI document. The dispatcher authenticates the Bearer token (never a session cookie), validates
the query and body with the models, applies idempotency keys, calls the handler, commits, and turns
every refusal into ``application/problem+json``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tracker import db, securitylog, storage, tokens
from tracker.api import idempotency
from tracker.api.problems import ApiError, dumps, problem_response, validation_error
from tracker.api.schemas import MAX_ID, Input, Output
from tracker.audit import ActionError, ConflictError
from tracker.models import ApiToken, Membership
from tracker.timeutil import utcnow

PREFIX = "/api/v1"
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"
MAX_FILES = 20  # evidence files in one call
DEFAULT_TOKEN_FAILURES = 10  # failed token checks per address within LOGIN_WINDOW_MINUTES before 429


@dataclass
class ApiContext:
    """What a handler gets: the session, the token's membership (acting exactly as on the web), the time."""

    s: Session
    membership: Membership
    token: ApiToken
    now: dt.datetime
    uploads: list[FileStorage] = field(default_factory=list)  # files sent with this call, not stored yet
    files: list[storage.StoredFile] = field(default_factory=list)  # uploads of this call (discarded on failure)

    def store_uploads(self, kind: str) -> None:
        """Store the uploads (after the idempotency check: a replayed call stores nothing)."""
        self.files.extend(storage.store_uploads(current_app.config["UPLOAD_FOLDER"], self.uploads, kind))

    def security_log(self, kind: str, **detail: Any) -> None:
        """A security-log entry for this call (exports, downloads), committed with the call."""
        securitylog.record(self.s, kind, now=self.now, user=self.token.user, membership=self.membership,
                           remote_addr=request.remote_addr or "", detail={**detail, "via": "api",
                                                                          "prefix": self.token.prefix})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below PREFIX, OpenAPI style: /tasks/{task_id}
    name: str  # operationId and Flask endpoint name
    summary: str  # "中文 · English"
    description: str
    tag: str
    handler: Callable[..., Any]
    query: type[Input] | None = None
    body: type[Input] | None = None
    multipart: bool = False  # the body may also come as multipart/form-data with ``files``
    response: type[Output] | None = None
    status: int = 200
    download: tuple[str, ...] = ()  # media types of a file answer
    errors: tuple[int, ...] = ()

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + "[^/]+".join(re.escape(part) for part in re.split(r"{\w+}", PREFIX + self.path)) + "$")


ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, *, name: str, summary: str, tag: str, description: str = "",
             query: type[Input] | None = None, body: type[Input] | None = None, multipart: bool = False,
             response: type[Output] | None = None, status: int = 200, download: tuple[str, ...] = (),
             errors: tuple[int, ...] = ()) -> Callable:
    """Declare a handler ``fn(ctx, *, <path params>, query=..., body=...)`` as an endpoint."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        add(Endpoint(method, path, name, summary, description, tag, fn, query, body, multipart, response, status,
                     download, errors))
        return fn

    return decorate


def add(e: Endpoint) -> None:
    if any(other.name == e.name for other in ENDPOINTS):
        raise ValueError(f"duplicate API endpoint {e.name}")
    ENDPOINTS.append(e)


def register(bp: Blueprint) -> None:
    """A Flask route per endpoint, and a catch-all that answers unknown paths and methods as problems."""
    for e in ENDPOINTS:
        rule = re.sub(r"{(\w+)}", r"<\1>", e.path)
        bp.add_url_rule(rule, endpoint=e.name, view_func=functools.partial(dispatch, e), methods=[e.method])
    bp.add_url_rule("/", endpoint="unknown_root", view_func=unknown, defaults={"rest": ""},
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    bp.add_url_rule("/<path:rest>", endpoint="unknown", view_func=unknown,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"])


def unknown(rest: str) -> Response:
    allowed = sorted({e.method for e in ENDPOINTS if e.pattern.match(request.path)})
    if allowed:
        return problem_response(ApiError("METHOD_NOT_ALLOWED", f"该地址不支持{request.method}请求",
                                         headers={"Allow": ", ".join(allowed)}))
    return problem_response(ApiError("NOT_FOUND", "接口不存在"))


# --- the dispatcher -------------------------------------------------------------------------------------


def dispatch(e: Endpoint, **path: str) -> Response:
    s = db.session()
    ctx: ApiContext | None = None
    key: str | None = None
    fp = ""
    try:
        ctx = authenticate(s)
        kwargs: dict[str, Any] = {name: path_id(path[name]) for name in e.path_params}
        if e.query is not None:
            kwargs["query"] = validate(e.query, query_data(e.query), "query")
        body_repr = ""
        if e.body is not None:
            kwargs["body"], body_repr = read_body(e, ctx)
        key = idempotency.check_key(request.headers.get(idempotency.HEADER)) if e.method == "POST" else None
        if key is not None:  # only a call that may be retried needs its fingerprint
            fp = idempotency.fingerprint(e.method, request.path, request.query_string.decode("latin-1"), body_repr)
        if key is not None and (earlier := idempotency.lookup(s, ctx.token.id, key, fp, ctx.now)) is not None:
            return finish(s, ctx, idempotency.replay(earlier))
        if ctx.uploads:
            ctx.store_uploads(getattr(kwargs["body"], "evidence_kind", "after"))
        response = respond(e, e.handler(ctx, **kwargs))
        if key is not None:  # the answer is stored in the action's own transaction
            idempotency.remember(s, ctx.token.id, key, fp, response, ctx.now)
        return finish(s, ctx, response)
    except Exception as exc:  # every failure becomes a problem answer, or propagates (a real 500)
        return failed(s, ctx, exc, key, fp)


def finish(s: Session, ctx: ApiContext, response: Response) -> Response:
    s.commit()
    return response


def failed(s: Session, ctx: ApiContext | None, exc: Exception, key: str | None = None, fp: str = "") -> Response:
    s.rollback()
    if ctx is not None:
        storage.discard(current_app.config["UPLOAD_FOLDER"], ctx.files)
        if key is not None and isinstance(exc, ConflictError | StaleDataError | IntegrityError):
            replayed = replay_twin(s, ctx, key, fp)
            if replayed is not None:
                return replayed
    error = as_api_error(exc)
    if error is None:
        raise exc
    return problem_response(error)


def replay_twin(s: Session, ctx: ApiContext, key: str, fp: str) -> Response | None:
    """A concurrent call with the same key committed first (our version check or the key's unique row lost the
    race): answer as it did, so a retry never acts twice nor looks refused."""
    try:
        earlier = idempotency.lookup(s, ctx.token.id, key, fp, ctx.now)
    except ApiError as error:
        return problem_response(error)
    if earlier is None:
        return None
    s.commit()
    return idempotency.replay(earlier)


def as_api_error(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ConflictError | StaleDataError):
        return ApiError("VERSION_CONFLICT", ConflictError().args[0])
    if isinstance(exc, ActionError):
        return ApiError("ACTION_REFUSED", str(exc))
    if isinstance(exc, RequestEntityTooLarge):
        return ApiError("PAYLOAD_TOO_LARGE", "上传的文件过大")
    if isinstance(exc, storage.StorageError):
        return ApiError("INSUFFICIENT_STORAGE" if exc.no_space else "STORAGE_FAILED", str(exc))
    if isinstance(exc, HTTPException) and exc.code == 400:
        return ApiError("BAD_REQUEST", "请求无效")
    return None


def authenticate(s: Session) -> ApiContext:
    """The token's membership; session cookies are never looked at, so the API needs no CSRF token."""
    scheme, _, secret = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError("UNAUTHORIZED", "请在请求头中提供 Authorization: Bearer <API令牌>",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})
    now = utcnow()
    window = current_app.config["LOGIN_WINDOW_MINUTES"]
    try:
        token = tokens.authenticate(s, secret.strip(), request.remote_addr or "", now,
                                    max_failures=current_app.config.get("API_MAX_FAILURES", DEFAULT_TOKEN_FAILURES),
                                    window_minutes=window)
    except tokens.TokenThrottled as exc:
        raise ApiError("TOO_MANY_REQUESTS", str(exc), headers={"Retry-After": str(window * 60)}) from None
    except tokens.TokenInvalid as exc:
        s.commit()  # the failed check is kept: it is what throttling counts
        raise ApiError("UNAUTHORIZED", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    return ApiContext(s, token.membership, token, now)


def path_id(value: str) -> int:
    """Path ids are positive 32-bit integers; anything else names nothing (404)."""
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise ApiError("NOT_FOUND", "不存在，或不在您的管辖范围内")
    return int(value)


# --- reading requests ------------------------------------------------------------------------------------


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where) from None


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


def form_data(model: type[BaseModel], source) -> dict[str, Any]:
    """Query strings and multipart forms: list fields from repeated names, others single; empty means absent."""
    data: dict[str, Any] = {}
    for name in source:
        info = model.model_fields.get(name)
        values = [v for v in source.getlist(name) if v != ""]
        if info is not None and _is_list(info.annotation):
            data[name] = values
        elif values:
            data[name] = values[0] if len(values) == 1 else values
    return data


def query_data(model: type[BaseModel]) -> dict[str, Any]:
    return form_data(model, request.args)


def read_body(e: Endpoint, ctx: ApiContext) -> tuple[Any, str]:
    """The validated body and its canonical form (for the idempotency fingerprint); uploads are stored."""
    mimetype = request.mimetype
    if mimetype == JSON_TYPE or mimetype.endswith("+json"):
        raw = request.get_data(as_text=False) or b"null"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("BAD_REQUEST", "请求体不是有效的JSON") from None
        try:  # strict: JSON says what it means (7.0 is not an id, "7" is not a number)
            body = e.body.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise validation_error(exc, "body") from None
        return body, json.dumps(data, sort_keys=True, ensure_ascii=False)
    if e.multipart and mimetype == MULTIPART_TYPE:
        return read_multipart(e, ctx)
    accepted = "application/json" + ("或multipart/form-data" if e.multipart else "")
    raise ApiError("UNSUPPORTED_MEDIA_TYPE", f"请求体须为{accepted}")


def read_multipart(e: Endpoint, ctx: ApiContext) -> tuple[Any, str]:
    data = form_data(e.body, request.form)
    unexpected = [name for name in request.files if name != "files"]
    if unexpected:
        raise ApiError("VALIDATION_ERROR", "只能以files字段上传文件：" + "、".join(unexpected))
    body = validate(e.body, data, "body")
    uploads = [f for f in request.files.getlist("files") if f.filename or f.content_length]
    if len(uploads) > MAX_FILES:
        raise ApiError("VALIDATION_ERROR", f"一次最多上传{MAX_FILES}个文件")
    hashes = [_sha256(f) for f in uploads]
    ctx.uploads = uploads
    return body, json.dumps({"form": data, "files": hashes}, sort_keys=True, ensure_ascii=False)


def _sha256(upload: FileStorage) -> list[str]:
    digest = hashlib.sha256()
    while chunk := upload.stream.read(storage.CHUNK):
        digest.update(chunk)
    upload.stream.seek(0)
    return [upload.filename or "", digest.hexdigest()]


# --- answering ------------------------------------------------------------------------------------------


def respond(e: Endpoint, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        return Response(result.model_dump_json(), status=e.status, mimetype=JSON_TYPE)
    return Response(dumps(result), status=e.status, mimetype=JSON_TYPE)
