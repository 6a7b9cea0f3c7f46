"""What `make dist` builds: the app's wheel carries what the `tracker` command needs outside the checkout,
and the offline bundle (the app's wheel and a wheel of every runtime dependency, pinned) installs on a host
with no package index — checked by installing it into a fresh virtualenv and serving a page from there."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
import zipfile
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.catalogue import compile_catalogue
from tools import offline_bundle

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor" / "chart.umd.js"


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    """The offline bundle, built once per run exactly as `make dist` builds it; the archive's path."""
    compile_catalogue()  # as `make dist` does: the wheel carries the compiled English catalogue
    assert VENDOR.is_file(), "static/vendor/chart.umd.js is missing: run make assets (make test does)"
    return offline_bundle.build(tmp_path_factory.mktemp("dist"), log=lambda _line: None)


@pytest.fixture(scope="session")
def unpacked(bundle, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("intranet-host")
    with tarfile.open(bundle) as tar:
        tar.extractall(target, filter="data")
    [folder] = target.iterdir()
    return folder


def test_the_wheel_carries_templates_static_files_migrations_and_config(bundle):
    wheel = next(bundle.parent.glob("zhenggai_tracker-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "config.py",
        "tracker/__init__.py",
        "tracker/templates/base.html",
        "tracker/templates/tasks/detail.html",
        "tracker/static/app.css",
        "tracker/static/vendor/chart.umd.js",
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


def test_the_bundle_pins_exactly_its_wheels_by_hash(unpacked):
    assert unpacked.name == f"zhenggai-tracker-{offline_bundle.version()}-offline"
    assert {p.name for p in unpacked.iterdir()} == {"wheelhouse", "requirements.txt", "INSTALL.txt", "DEPLOY.md"}
    wheels = sorted((unpacked / "wheelhouse").glob("*.whl"))
    pins = [line for line in (unpacked / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(pins) == len(wheels) == len(list((unpacked / "wheelhouse").iterdir()))
    pinned = {}
    for line in pins:
        found = re.fullmatch(r"([a-z0-9-]+)==(\S+) --hash=sha256:([0-9a-f]{64})", line)
        assert found, line
        pinned[found[1]] = (found[2], found[3])
    for wheel in wheels:
        name, version = offline_bundle.wheel_pin(wheel)
        assert pinned[name] == (version, offline_bundle.sha256(wheel)), wheel.name
    # The production processes' packages, and nothing of the test tools.
    assert {"zhenggai-tracker", "gunicorn", "psycopg", "psycopg-binary", "flask", "sqlalchemy"} <= set(pinned)
    assert not {"pytest", "playwright", "hypothesis", "aiosmtpd", "ruff", "schemathesis"} & set(pinned)
    assert pinned["zhenggai-tracker"][0] == offline_bundle.version()
    assert "pip install --no-index --find-links" in (unpacked / "INSTALL.txt").read_text()


def _clean_env(**extra: str) -> dict[str, str]:
    """No pip configuration (this machine's names extra indexes and find-links) and no project paths."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL", "TRACKER_", "MAIL_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn from the bundle exited"
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


@pytest.mark.slow
def test_the_bundle_installs_with_no_index_into_a_fresh_virtualenv_and_serves(unpacked, tmp_path, database_url):
    venv, home = tmp_path / "venv", tmp_path / "elsewhere"
    home.mkdir()
    env = _clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=300)
    bin_ = venv / "bin"
    installed = subprocess.run(
        [str(bin_ / "python"), "-m", "pip", "install", "--no-index", "--find-links", str(unpacked / "wheelhouse"),
         "--disable-pip-version-check", "-r", str(unpacked / "requirements.txt")],
        env=env, cwd=home, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    check = subprocess.run([str(bin_ / "python"), "-m", "pip", "check"], env=env, cwd=home, capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    helped = subprocess.run([str(bin_ / "tracker"), "--help"], env=env, cwd=home, capture_output=True, text=True,
                            timeout=300)
    assert helped.returncode == 0, helped.stderr
    assert {"db", "demo", "scheduler", "backup"} <= set(re.findall(r"^\s+(\w+)\s", helped.stdout, re.M))

    probe = ("import json, gunicorn, psycopg, tracker, config\n"
             "from tracker.paths import STATIC_DIR, TRANSLATIONS_DIR\n"
             "from tracker import create_app\n"
             "print(json.dumps({'tracker': tracker.__file__, 'config': config.__file__, 'impl': psycopg.pq.__impl__,\n"
             " 'vendor': str(STATIC_DIR / 'vendor' / 'chart.umd.js'),\n"
             " 'mo': str(TRANSLATIONS_DIR / 'en' / 'LC_MESSAGES' / 'messages.mo')}))\n")
    found = subprocess.run([str(bin_ / "python"), "-c", probe], env=env, cwd=home, capture_output=True, text=True,
                           timeout=300)
    assert found.returncode == 0, found.stderr
    paths = json.loads(found.stdout)
    site = str(venv.resolve())
    for key in ("tracker", "config", "vendor", "mo"):
        assert paths[key].startswith(site), (key, paths[key])  # the installed package, not the checkout
    assert Path(paths["vendor"]).read_bytes() == VENDOR.read_bytes()
    assert Path(paths["mo"]).stat().st_size > 1000
    assert paths["impl"] == "binary"  # psycopg's bundled libpq: the host needs no PostgreSQL client library

    # Serve from the installed package (gunicorn from the bundle) against the test database: SQLite, or
    # PostgreSQL through the bundled psycopg.
    port = _free_port()
    run_env = _clean_env(DATABASE_URL=database_url, SECRET_KEY="bundle-test", TRACKER_INSTANCE=str(tmp_path / "i"))
    upgraded = subprocess.run([str(bin_ / "tracker"), "db", "upgrade"], env=run_env, cwd=home, capture_output=True,
                              text=True, timeout=300)
    assert upgraded.returncode == 0, upgraded.stderr
    server = subprocess.Popen([str(bin_ / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
                               "tracker:create_app()"], env=run_env, cwd=home, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/login", server)
        assert json.load(urllib.request.urlopen(f"{base}/healthz", timeout=10)) == {"status": "ok"}
        assert urllib.request.urlopen(f"{base}/static/vendor/chart.umd.js", timeout=10).read() == VENDOR.read_bytes()
        # The compiled catalogue is found in the package: the login page in English.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(f"{base}/login", timeout=10).read().decode()
        assert "用户名" in page
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"locale": "en", "csrf_token": token}).encode()
        english = opener.open(f"{base}/locale", data=form, timeout=10).read().decode()
        assert "Username" in english and "用户名" not in english
    finally:
        server.terminate()
        server.wait(timeout=30)
