"""The ``tracker`` console command: a Flask CLI group around ``create_app``."""

from __future__ import annotations

from flask.cli import FlaskGroup

from tracker import create_app

main = FlaskGroup(create_app=lambda: create_app(), add_default_commands=True, help="整改台账 command line")
