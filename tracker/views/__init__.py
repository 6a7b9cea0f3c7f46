"""Blueprints: thin boundaries that parse a form, call one operation, commit, flash, redirect."""

from __future__ import annotations

from flask import Flask

from tracker.views import admin, archives, auth, errors, health, intake, messages, reports, tasks


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(archives.bp)
    app.register_blueprint(intake.bp)
    errors.register(app)
