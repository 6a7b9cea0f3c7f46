"""``make dist``: the offline bundle for an intranet host with no internet and no package index.

    python -m tools.offline_bundle [--out dist]

writes ``dist/zhenggai-tracker-<version>-offline.tar.gz`` (and the same, unpacked, beside it):

- ``wheelhouse/``: the app's wheel — templates, static files with ``static/vendor`` (``make assets``),
  migrations, ``config.py`` and the compiled English catalogue inside — and a wheel of every runtime
  dependency, gunicorn and psycopg (with its binary libpq) included, at exactly the versions installed
  in the virtualenv that builds it (the versions the suite ran against);
- ``requirements.txt``: every wheel of the wheelhouse pinned by version and SHA-256, so that
  ``pip install --no-index --find-links wheelhouse -r requirements.txt`` installs exactly these files;
- ``INSTALL.txt``: the few commands, and the Python and platform the wheels were built for; and
  ``DEPLOY.md``, the production setup (docs/DEPLOY.md).

The app's wheel is built from a clean copy of the sources (no stale ``build/`` of the checkout can slip
into it) and checked for the vendor file and the catalogue before anything else is fetched.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "zhenggai-tracker"
# What the wheel is built from (pyproject.toml names the packages and maps the folders into ``tracker``).
SOURCES = ("pyproject.toml", "README.md", "config.py", "tracker", "templates", "static", "translations", "migrations")
VENDOR = Path("static/vendor/chart.umd.js")
CATALOGUE = Path("translations/en/LC_MESSAGES/messages")
# Inside the built wheel: what `make assets` and the catalogue compilation must have put there.
REQUIRED_IN_WHEEL = ("tracker/static/vendor/chart.umd.js", "tracker/translations/en/LC_MESSAGES/messages.mo")


class BundleError(SystemExit):
    """The bundle cannot be built as asked; the message says what to run first."""


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def bundle_name() -> str:
    return f"{PROJECT}-{version()}-offline"


def normalize(name: str) -> str:
    """PEP 503's normal form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_sources() -> None:
    """The built assets the wheel must carry exist and are current."""
    if not (ROOT / VENDOR).is_file():
        raise BundleError(f"{VENDOR} 缺失：先运行 make assets")
    po, mo = ROOT / CATALOGUE.with_suffix(".po"), ROOT / CATALOGUE.with_suffix(".mo")
    if not mo.is_file() or mo.stat().st_mtime < po.stat().st_mtime:
        raise BundleError(f"{CATALOGUE.with_suffix('.mo')} 缺失或旧于 .po：先编译目录（make dist 会编译它）")


def _pip(*args: str, log=print) -> None:
    command = [sys.executable, "-m", "pip", *args]
    log("$ pip " + " ".join(args))
    subprocess.run(command, check=True)


def build_app_wheel(folder: Path, log=print) -> Path:
    """The app's wheel, built from a clean copy of the sources into ``folder``."""
    with tempfile.TemporaryDirectory(prefix="zhenggai-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.part")
        for name in SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=ignore)
            else:
                shutil.copy2(path, src / name)
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(src), log=log)
    wheel = next(folder.glob("zhenggai_tracker-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in REQUIRED_IN_WHEEL if n not in names]
    if missing:
        raise BundleError(f"{wheel.name} 缺少 {', '.join(missing)}")
    return wheel


def installed_versions() -> list[str]:
    """``name==version`` of every distribution in this interpreter's environment but the app itself:
    the constraints that make the bundle carry the versions the suite was run with."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and normalize(name) != PROJECT:
            pins[normalize(name)] = f"{normalize(name)}=={dist.version}"
    return sorted(pins.values())


def wheel_pin(wheel: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's file name (PEP 427)."""
    name, ver = wheel.name.split("-")[:2]
    return normalize(name), ver


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_requirements(wheelhouse: Path, target: Path) -> list[str]:
    lines = []
    for wheel in sorted(wheelhouse.glob("*.whl"), key=wheel_pin):
        name, ver = wheel_pin(wheel)
        lines.append(f"{name}=={ver} --hash=sha256:{sha256(wheel)}")
    target.write_text(
        f"# {PROJECT} {version()} and every runtime dependency, pinned to the wheels of wheelhouse/.\n"
        "# pip install --no-index --find-links wheelhouse -r requirements.txt\n" + "\n".join(lines) + "\n",
        encoding="utf-8")
    return lines


INSTALL = """\
{name}: offline installation of 整改台账 {version}
{rule}

Built with {python_info}. Install it on a host with the same Python minor version
({python_minor}) and architecture ({machine}, glibc Linux): no internet, no package index.

1. Unpack and install into a new virtualenv (pip checks every wheel against its SHA-256):

     tar xzf {name}.tar.gz
     python3 -m venv /opt/zhenggai/venv
     /opt/zhenggai/venv/bin/pip install --no-index --find-links {name}/wheelhouse \\
         -r {name}/requirements.txt

2. Check it:

     /opt/zhenggai/venv/bin/tracker --help

3. Configure and start it as DEPLOY.md (beside this file) says in sections 3 to 7: the environment
   file, `tracker db upgrade`, the first administrator, gunicorn behind nginx, the scheduler service.

Upgrading: install a newer bundle the same way with `pip install --upgrade …`, then
`tracker db upgrade` (DEPLOY.md, section 11).

wheelhouse/ holds {count} wheels: the app (templates, static files with Chart.js, migrations and the
compiled English catalogue inside) and its dependencies, gunicorn and psycopg with its binary libpq
included. requirements.txt pins each by version and hash.
"""


def write_install(folder: Path, count: int) -> None:
    name = folder.name
    text = INSTALL.format(
        name=name, version=version(), rule="=" * 72, count=count, machine=platform.machine(),
        python_minor=f"CPython {sys.version_info.major}.{sys.version_info.minor}",
        python_info=f"CPython {platform.python_version()} on {sysconfig.get_platform()}",
    )
    (folder / "INSTALL.txt").write_text(text, encoding="utf-8")
    shutil.copy2(ROOT / "docs" / "DEPLOY.md", folder / "DEPLOY.md")


def build(out: Path, log=print) -> Path:
    """Build the bundle under ``out``; the archive's path."""
    check_sources()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder = out / bundle_name()
    archive = out / f"{folder.name}.tar.gz"
    shutil.rmtree(folder, ignore_errors=True)
    archive.unlink(missing_ok=True)
    wheelhouse = folder / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="zhenggai-dist-") as tmp:
        app_wheel = build_app_wheel(Path(tmp), log=log)
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(installed_versions()) + "\n", encoding="utf-8")
        # The app's wheel and a wheel of each runtime dependency (no extras: no test tools).
        _pip("wheel", "--quiet", "--wheel-dir", str(wheelhouse), "--constraint", str(constraints), str(app_wheel),
             log=log)
        shutil.copy2(app_wheel, out / app_wheel.name)  # the app's wheel alone, too
    pins = write_requirements(wheelhouse, folder / "requirements.txt")
    names = {pin.split("==")[0] for pin in pins}
    for needed in (PROJECT, "gunicorn", "psycopg", "psycopg-binary"):
        if needed not in names:
            raise BundleError(f"wheelhouse 中缺少 {needed}")
    write_install(folder, len(pins))
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    (out / f"{archive.name}.sha256").write_text(f"{sha256(archive)}  {archive.name}\n", encoding="ascii")
    log(f"{archive}（{len(pins)}个wheel，{archive.stat().st_size / 1e6:.1f} MB）")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.offline_bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="目标目录（默认 dist/）")
    args = parser.parse_args(argv)
    build(Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
