"""The README stays true: the demo logins and commands it lists exist."""

from __future__ import annotations

from pathlib import Path

from tracker.demo import DEMO_LOGINS, DEMO_PASSWORD

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_lists_every_demo_login_and_the_password():
    missing = [username for username, _, _ in DEMO_LOGINS if f"`{username}`" not in README]
    assert missing == [] and f"`{DEMO_PASSWORD}`" in README


def test_the_readme_shows_the_two_commands_and_every_cli_group(app):
    assert "make run" in README and "make test" in README
    for group in ("db", "demo", "user"):
        assert group in app.cli.commands
        for name in app.cli.commands[group].commands:
            assert f"tracker {group} {name}" in README, f"tracker {group} {name}"
