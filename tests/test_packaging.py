"""A built wheel carries what the `tracker` command needs outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.catalogue import compile_catalogue

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_templates_static_files_migrations_and_config(tmp_path):
    compile_catalogue()  # as `make dist` does: the wheel carries the compiled English catalogue
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path),
                    str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "config.py",
        "tracker/__init__.py",
        "tracker/templates/base.html",
        "tracker/templates/tasks/detail.html",
        "tracker/static/app.css",
        "tracker/migrations/env.py",
        "tracker/migrations/script.py.mako",
        "tracker/migrations/versions/0001_ledger_schema.py",
        "tracker/migrations/versions/0002_reference_data.py",
        "tracker/translations/en/LC_MESSAGES/messages.mo",
    }
    for folder, prefix in (("templates", "tracker/templates"), ("static", "tracker/static"),
                           ("migrations", "tracker/migrations"), ("translations", "tracker/translations")):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(f"{prefix}/{path.relative_to(ROOT / folder).as_posix()}")
    assert expected <= names, expected - names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tracker = tracker.entry:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
