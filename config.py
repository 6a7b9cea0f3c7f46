"""Configuration read from the environment, once, when a Config is made.

Nothing here opens a connection or imports ``tracker``; ``create_app`` takes an instance.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Production-shaped defaults; every value can come from the environment."""

    def __init__(self, environ: dict[str, str] | None = None, instance_path: str | None = None):
        env = dict(os.environ if environ is None else environ)
        self.INSTANCE_PATH = Path(instance_path or env.get("TRACKER_INSTANCE") or Path.cwd() / "instance").resolve()
        self.SQLALCHEMY_DATABASE_URI = _database_url(
            env.get("DATABASE_URL") or f"sqlite:///{self.INSTANCE_PATH / 'tracker.sqlite3'}"
        )
        self.SECRET_KEY = env.get("SECRET_KEY") or _instance_secret(self.INSTANCE_PATH)
        self.BASE_URL = env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.PORT = int(env.get("PORT", "5000"))
        self.MAIL_SERVER = env.get("MAIL_SERVER", "")
        self.MAIL_PORT = int(env.get("MAIL_PORT", "25"))
        self.MAIL_USE_TLS = _bool(env.get("MAIL_USE_TLS"))
        self.MAIL_USERNAME = env.get("MAIL_USERNAME", "")
        self.MAIL_PASSWORD = env.get("MAIL_PASSWORD", "")
        self.MAIL_FROM = env.get("MAIL_FROM", "zhenggai@localhost")
        self.MAIL_TIMEOUT = float(env.get("MAIL_TIMEOUT", "30"))  # seconds the relay may take to answer, each step
        self.MAIL_FOLDER = Path(env.get("MAIL_FOLDER") or self.INSTANCE_PATH / "mail")
        self.UPLOAD_FOLDER = Path(env.get("UPLOAD_FOLDER") or self.INSTANCE_PATH / "uploads")
        self.LEDGER_FOLDER = Path(env.get("LEDGER_FOLDER") or self.INSTANCE_PATH / "ledgers")
        # Background jobs (后台任务): uploaded import files and produced exports, kept JOBS_KEEP_DAYS days.
        self.JOBS_FOLDER = Path(env.get("JOBS_FOLDER") or self.INSTANCE_PATH / "jobs")
        self.JOBS_KEEP_DAYS = int(env.get("JOBS_KEEP_DAYS", "7"))
        # 安全日志 is kept this many days (DESIGN §9: at least six months; fewer than 183 is refused).
        self.SECURITY_LOG_KEEP_DAYS = int(env.get("SECURITY_LOG_KEEP_DAYS", "400"))
        if self.SECURITY_LOG_KEEP_DAYS < 183:
            raise ValueError("SECURITY_LOG_KEEP_DAYS须不少于183天（安全日志至少保留六个月），"
                             f"当前为{self.SECURITY_LOG_KEEP_DAYS}")
        # A ledger export of at most this many tasks is built in the request; a larger one in the background.
        self.SYNC_EXPORT_MAX_TASKS = int(env.get("SYNC_EXPORT_MAX_TASKS", "2000"))
        # Largest request body (uploads included); Flask answers 413 above it.
        self.MAX_CONTENT_LENGTH = int(env.get("MAX_UPLOAD_MB", "50")) * 1024 * 1024
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool(env.get("SESSION_COOKIE_SECURE"), self.BASE_URL.startswith("https"))
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        # Idle timeout: the session cookie is refreshed on every request and expires after this.
        self.PERMANENT_SESSION_LIFETIME = timedelta(minutes=int(env.get("SESSION_IDLE_MINUTES", "30")))
        self.WTF_CSRF_TIME_LIMIT = None  # the session's own lifetime bounds the token
        self.WTF_CSRF_ENABLED = True
        self.BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
        self.BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
        # Failed logins allowed per account (and per address) within the window before a lock-out.
        self.LOGIN_MAX_FAILURES = int(env.get("LOGIN_MAX_FAILURES", "5"))
        self.LOGIN_WINDOW_MINUTES = int(env.get("LOGIN_WINDOW_MINUTES", "15"))
        self.PAGE_SIZE = int(env.get("PAGE_SIZE", "50"))
        # Reverse proxies in front of gunicorn (nginx: 1). Their X-Forwarded-For/-Proto are trusted, so login
        # throttling and the security log see the client's address, not the proxy's; 0 trusts none.
        self.TRUSTED_PROXIES = int(env.get("TRUSTED_PROXIES", "0"))
        self.PASSWORD_HASH_METHOD = "scrypt"
        self.TESTING = False


class TestConfig(Config):
    """Fast hashing and a database named by ``DATABASE_URL`` or a temporary SQLite file."""

    __test__ = False  # not a pytest test class

    def __init__(self, database_url: str, instance_path: str, **overrides):
        super().__init__(environ={"SECRET_KEY": "test-secret"}, instance_path=instance_path)
        self.SQLALCHEMY_DATABASE_URI = _database_url(database_url)
        self.TESTING = True
        self.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
        for key, value in overrides.items():
            setattr(self, key, value)


def _database_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so the embedded default needs no setup."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
