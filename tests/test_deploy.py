"""What a deployment relies on: a health check for the load balancer, and the client's address seen
through the reverse proxy (login throttling counts per address)."""

from __future__ import annotations

from sqlalchemy import select

from config import TestConfig
from tests.conftest import csrf_token
from tracker import create_app
from tracker.models import LoginAttempt


def test_health_check_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_health_check_fails_when_the_database_is_unreachable_or_not_migrated(tmp_path):
    for url in ("postgresql://postgres@127.0.0.1:1/none", f"sqlite:///{tmp_path / 'empty.sqlite3'}"):
        app = create_app(TestConfig(url, str(tmp_path / "i")))
        response = app.test_client().get("/healthz")
        assert response.status_code == 503, url
        assert response.get_json()["status"] == "database unreachable or not migrated"
        app.extensions["tracker.engine"].dispose()


def _failed_login(app, forwarded_for: str) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "sup_xt", "password": "wrong-password", "csrf_token": token},
                headers={"X-Forwarded-For": forwarded_for}, environ_base={"REMOTE_ADDR": "127.0.0.1"})


def test_behind_a_trusted_proxy_the_clients_address_is_recorded(database_url, world, s, tmp_path):
    app = create_app(TestConfig(database_url, str(tmp_path / "i"), TRUSTED_PROXIES=1))
    _failed_login(app, "10.43.2.7")
    assert s.scalars(select(LoginAttempt.remote_addr)).all() == ["10.43.2.7"]
    app.extensions["tracker.engine"].dispose()


def test_without_a_trusted_proxy_a_forwarded_header_is_ignored(app, world, s):
    _failed_login(app, "10.43.2.7")
    assert s.scalars(select(LoginAttempt.remote_addr)).all() == ["127.0.0.1"]
