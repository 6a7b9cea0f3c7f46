"""Error pages in the user's language; an out-of-scope task is a plain 404."""

from __future__ import annotations

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from tracker.i18n import N_

MESSAGES = {
    400: N_("请求无效"),
    401: N_("请先登录"),
    403: N_("您无权访问此页面"),
    404: N_("页面不存在，或不在您的管辖范围内"),
    405: N_("不支持该请求方式"),
    413: N_("上传的文件过大"),
}


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        app.logger.info("CSRF refused: %s", exc.description)
        return render_template("error.html", title=_("页面已过期"), message=_("页面已过期，请刷新后重试")), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code not in MESSAGES:
            return exc
        return render_template("error.html", title=str(exc.code), message=_(MESSAGES[exc.code])), exc.code
