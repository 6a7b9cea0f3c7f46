"""Error pages in the user's language; an out-of-scope task is a plain 404.

When the database is gone (restarted, unreachable, its pool exhausted) a request answers 503 with a page
that needs no database, and the API a problem+json; any other unexpected failure answers a Chinese 500
page, never a traceback. The request's transaction is rolled back first, so nothing is half-written.
"""

from __future__ import annotations

import json

from flask import Flask, Response, current_app, render_template, request
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from tracker import db, storage
from tracker.i18n import LOCALE_TAGS, LOCALES, N_

MESSAGES = {
    400: N_("请求无效"),
    401: N_("请先登录"),
    403: N_("您无权访问此页面"),
    404: N_("页面不存在，或不在您的管辖范围内"),
    405: N_("不支持该请求方式"),
    413: N_("上传的文件过大"),
}
UNAVAILABLE_TITLE = N_("服务暂时不可用")
UNAVAILABLE_MESSAGE = N_("数据库暂时无法连接，请稍后重试。刚才的提交未能完成：请刷新页面查看，再重新提交")
SERVER_ERROR_TITLE = N_("服务器内部错误")
SERVER_ERROR_MESSAGE = N_("服务器处理请求时出错，刚才的提交未能完成。请稍后重试；如果问题持续，请联系管理员")
NO_SPACE_TITLE = N_("服务器存储空间不足")
RETRY_AFTER_SECONDS = 30
PROBLEM_CODES = {500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE", 507: "INSUFFICIENT_STORAGE"}  # the API's codes


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        app.logger.info("CSRF refused: %s", exc.description)
        return render_template("error.html", title=_("页面已过期"), message=_("页面已过期，请刷新后重试")), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code not in MESSAGES:
            return exc
        if exc.code == 413 and app.config.get("MAX_CONTENT_LENGTH"):
            limit = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
            message = _("上传的文件过大：一次提交的文件合计不能超过 %(mb)s MB，请压缩或分批上传",
                        mb=f"{limit:g}" if limit >= 1 else f"{limit:.2f}")
            return render_template("error.html", title=_("上传的文件过大"), message=message), 413
        return render_template("error.html", title=str(exc.code), message=_(MESSAGES[exc.code])), exc.code

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(exc: SQLAlchemyError):
        app.logger.error("数据库不可用：%s %s", request.method, request.path, exc_info=exc)
        response = bare_error(503, UNAVAILABLE_TITLE, UNAVAILABLE_MESSAGE)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(InternalServerError)
    def _server_error(exc: InternalServerError):
        return bare_error(500, SERVER_ERROR_TITLE, SERVER_ERROR_MESSAGE)

    @app.errorhandler(OSError)
    def _disk_full(exc: OSError):
        """The disk full while the request body is received (uploads are spooled to a temporary file) or a
        file is written: 507 with the reason. Any other OSError goes on as an unexpected failure (500)."""
        if exc.errno not in storage.NO_SPACE:
            raise exc
        app.logger.error("磁盘空间不足：%s %s", request.method, request.path, exc_info=exc)
        return bare_error(507, NO_SPACE_TITLE, storage.NO_SPACE_MESSAGE)


def bare_error(status: int, title: str, message: str) -> Response:
    """An error answer that touches no database: the transaction rolled back, the language found without it
    (Chinese when it cannot be), the page rendered without the context processors; problem+json for the API."""
    locale = _locale_without_database()
    try:
        db.session().rollback()
    except SQLAlchemyError:
        pass  # the connection is gone, and with it all this request did
    with force_locale(locale):
        title, message = _(title), _(message)
        if request.path.startswith("/api/"):
            code = PROBLEM_CODES[status]
            problem = {"type": f"urn:zhenggai:problem:{code.lower()}", "title": title, "status": status, "code": code,
                       "detail": message}
            return Response(json.dumps(problem, ensure_ascii=False), status=status,
                            mimetype="application/problem+json")
        body = current_app.jinja_env.get_template("unavailable.html").render(
            lang=LOCALE_TAGS.get(locale, LOCALE_TAGS[LOCALES[0]]), title=title, message=message)
    return Response(body, status=status, mimetype="text/html")


def _locale_without_database() -> str:
    """The request's language if it can be told without the database (the session's choice, or the user
    already loaded), else Chinese."""
    try:
        return str(get_locale() or LOCALES[0])
    except SQLAlchemyError:
        return LOCALES[0]
