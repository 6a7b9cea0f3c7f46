"""Blueprints: thin boundaries that parse a form, call one operation, commit, flash, redirect."""

from __future__ import annotations

from flask import Flask

from tracker.views import (
    admin,
    archives,
    auth,
    closure,
    dashboard,
    errors,
    health,
    intake,
    jobs,
    lists,
    locale,
    messages,
    profile,
    reports,
    security_log,
    tasks,
)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(lists.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(archives.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(closure.bp)
    app.register_blueprint(locale.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(security_log.bp)
    errors.register(app)
