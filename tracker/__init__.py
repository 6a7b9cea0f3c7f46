"""整改台账 — the rectification-task workflow tracker.

``create_app`` wires the parts together; nothing happens at import time.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from tracker import api, auth, babel, cli, db, inputs, security, templating
from tracker.paths import STATIC_DIR, TEMPLATE_DIR
from tracker.views import register_blueprints


def create_app(config: object | None = None) -> Flask:
    """Build the app from a ``config.Config`` instance (default: read from the environment)."""
    if config is None:
        config = Config()
    app = Flask(
        "tracker",
        template_folder=str(TEMPLATE_DIR),
        static_folder=str(STATIC_DIR),
        instance_path=str(config.INSTANCE_PATH),
    )
    app.config.from_object(config)
    proxies = int(app.config.get("TRUSTED_PROXIES", 0))
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    db.init_app(app)
    babel.init_app(app)
    security.init_app(app)
    inputs.init_app(app)
    auth.init_app(app)
    templating.init_app(app)
    register_blueprints(app)
    api.init_app(app)
    cli.init_app(app)
    return app
