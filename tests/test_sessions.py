"""Sessions and accounts (issue 9, item 3): the password policy on every path that sets a password, the
admin's forced reset, whatever ends a session also ends the API tokens, the idle timeout, no session
fixation, cookie flags and security headers — on live test clients, a real token and the real database."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from config import Config, TestConfig
from tests.conftest import NOW, PASSWORD, csrf_token, login
from tracker import create_app, tokens
from tracker.accounts import add_membership, check_password_policy, set_password
from tracker.audit import ActionError
from tracker.auth import LAST_SEEN
from tracker.models import ApiToken, Event, Membership, SecurityLog, User
from tracker.security import CONTENT_SECURITY_POLICY

NEW_PASSWORD = "Xiangjiang-2026"
TEMPORARY = "Linshi-mima-7"


def html_of(client, url: str) -> str:
    return client.get(url).get_data(as_text=True)


def token_for(s, world, username: str) -> str:
    m = world.m[username]
    made = tokens.create_token(s, m, NOW, m.user, m, "省级平台对接")
    s.commit()
    return made.secret


def api_me(client, secret: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def assert_refused_problem(response, fragment: str = "") -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert fragment in response.get_json()["detail"]


def logged_out(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def fresh_user(s, username: str) -> User:
    s.expire_all()
    return s.scalar(select(User).where(User.username == username))


# --- the password policy, on every path -----------------------------------------------------------------


@pytest.mark.parametrize("password, message", [
    ("Ab1", "至少需要10个字符"),
    ("abcdefghijkl", "须同时包含字母和数字"),
    ("123456789012", "须同时包含字母和数字"),
    ("x1" * 101, "不能超过200个字符"),
    ("unit_yh-2026-ok", "不能包含用户名"),
])
def test_the_policy_refuses_weak_passwords_with_a_chinese_reason(password, message):
    with pytest.raises(ActionError, match=message):
        check_password_policy(password, username="unit_yh")


@pytest.mark.parametrize("password", ["Xiangjiang-2026", "湘江北去橘子洲头2026", "correct horse battery!"])
def test_the_policy_accepts_good_passwords(password):
    check_password_policy(password, username="unit_yh")


def test_admin_create_and_admin_reset_apply_the_policy_and_change_nothing_when_refused(client, world, s):
    login(client, "admin_hn")
    html = html_of(client, "/admin/users")
    refused = client.post("/admin/users", data={
        "csrf_token": csrf_token(html), "username": "xiangxiang_new", "display_name": "湘乡新用户",
        "password": "short1", "unit_id": world.units["湘乡市人民政府"].id, "role": "unit"})
    assert refused.status_code == 200 and "密码至少需要10个字符" in refused.get_data(as_text=True)
    assert fresh_user(s, "xiangxiang_new") is None

    target = world.user("unit_yh")
    before = target.password_hash
    html = html_of(client, f"/admin/users/{target.id}")
    client.post(f"/admin/users/{target.id}/password", data={"p-csrf_token": csrf_token(html),
                                                            "p-password": "onlyletters", "p-temporary": "y"})
    user = fresh_user(s, "unit_yh")
    assert user.password_hash == before and not user.must_change_password
    assert "须同时包含字母和数字" in html_of(client, f"/admin/users/{target.id}")
    assert login(client.application.test_client(), "unit_yh").status_code == 302  # the old password still works


def test_the_users_own_change_applies_the_policy_and_checks_the_current_password(client, world, s):
    login(client, "unit_yh")
    before = world.user("unit_yh").password_hash

    def change(current, new, confirm=None):
        html = html_of(client, "/profile/password")
        return client.post("/profile/password", data={"csrf_token": csrf_token(html), "current": current,
                                                      "password": new, "confirm": confirm or new})

    assert "密码须同时包含字母和数字" in change(PASSWORD, "aaaaaaaaaaaa").get_data(as_text=True)
    assert "当前密码不正确" in change("wrong-password-1", NEW_PASSWORD).get_data(as_text=True)
    assert "两次输入的新密码不一致" in change(PASSWORD, NEW_PASSWORD, "Xiangjiang-2027").get_data(as_text=True)
    assert "不能与当前密码相同" in change(PASSWORD, PASSWORD).get_data(as_text=True)
    assert fresh_user(s, "unit_yh").password_hash == before
    ok = change(PASSWORD, NEW_PASSWORD)
    assert ok.status_code == 302
    user = fresh_user(s, "unit_yh")
    assert check_password_hash(user.password_hash, NEW_PASSWORD) and user.password_changed_at is not None
    assert client.get("/todo").status_code == 200  # this session goes on
    event = s.scalar(select(Event).where(Event.entity == "user", Event.action == "change_password"))
    assert event.entity_id == user.id and event.user_id == user.id


def test_the_cli_applies_the_policy_when_creating_a_user_and_setting_a_password(app, world, s):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["user", "create", "youxian_cli", "--role", "unit", "--unit", "攸县人民政府"],
                         input="passwordpassword\n")
    assert weak.exit_code == 1 and "须同时包含字母和数字" in weak.output
    assert fresh_user(s, "youxian_cli") is None
    before = world.user("unit_yx").password_hash
    weak = runner.invoke(args=["user", "set-password", "unit_yx"], input="short\n")
    assert weak.exit_code == 1 and "至少需要10个字符" in weak.output
    assert fresh_user(s, "unit_yx").password_hash == before
    unknown = runner.invoke(args=["user", "set-password", "nobody"], input=f"{NEW_PASSWORD}\n")
    assert unknown.exit_code == 1 and "找不到用户" in unknown.output
    ok = runner.invoke(args=["user", "set-password", "unit_yx", "--temporary"], input=f"{TEMPORARY}\n")
    assert ok.exit_code == 0, ok.output
    user = fresh_user(s, "unit_yx")
    assert check_password_hash(user.password_hash, TEMPORARY) and user.must_change_password
    entry = s.scalar(select(SecurityLog).where(SecurityLog.kind == "password_reset"))
    assert entry.user_id == user.id and entry.detail["temporary"] is True and entry.detail["by"] == "（命令行）"


# --- the admin's forced reset ------------------------------------------------------------------------------


def test_a_forced_reset_sends_the_user_to_change_their_password_from_every_page(app, client, world, s):
    task = world.assigned()
    s.commit()
    user_client = app.test_client()
    login(user_client, "unit_yh")
    secret = token_for(s, world, "unit_yh")
    assert api_me(client, secret).status_code == 200

    login(client, "admin_hn")
    target = world.user("unit_yh")
    html = html_of(client, f"/admin/users/{target.id}")
    client.post(f"/admin/users/{target.id}/password", data={"p-csrf_token": csrf_token(html),
                                                            "p-password": TEMPORARY, "p-temporary": "y"})
    user = fresh_user(s, "unit_yh")
    assert user.must_change_password and check_password_hash(user.password_hash, TEMPORARY)
    assert logged_out(user_client.get("/todo"))  # the session from before the reset has ended
    assert_refused_problem(api_me(client, secret))  # and the token with it

    assert login(user_client, "unit_yh", TEMPORARY).status_code == 302
    for url in ("/todo", "/tasks", f"/tasks/{task.id}", "/profile", "/messages", f"/evidence/{1}", "/jobs"):
        response = user_client.get(url)
        assert response.status_code == 303 and response.headers["Location"].endswith("/profile/password"), url
    page = html_of(user_client, "/profile/password")
    assert "管理员已为您重置密码" in page
    sign = user_client.post(f"/tasks/{task.id}/act/sign", data={"sign-csrf_token": csrf_token(page)})
    assert sign.status_code == 303 and sign.headers["Location"].endswith("/profile/password")
    # a token made before the user changes it (here directly, the page being closed to them) is refused too
    m = world.m["unit_yh"]
    s.expire_all()
    waiting = tokens.create_token(s, s.get(Membership, m.id), NOW, fresh_user(s, "unit_yh"),
                                  s.get(Membership, m.id), "等待修改密码").secret
    s.commit()
    assert_refused_problem(api_me(client, waiting), "请先登录网页设置新密码")

    done = user_client.post("/profile/password", data={"csrf_token": csrf_token(page), "current": TEMPORARY,
                                                       "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert user_client.get("/todo").status_code == 200
    user = fresh_user(s, "unit_yh")
    assert not user.must_change_password
    actions = s.scalars(select(Event.action).where(Event.entity == "user", Event.entity_id == user.id)
                        .order_by(Event.id)).all()
    assert actions[-2:] == ["set_password", "change_password"]
    reset = s.scalar(select(Event).where(Event.entity == "user", Event.action == "set_password"))
    assert reset.data["temporary"] is True and reset.user_id == world.user("admin_hn").id
    kinds = s.scalars(select(SecurityLog.kind).where(SecurityLog.user_id == user.id,
                                                     SecurityLog.kind.like("password%"))).all()
    assert kinds == ["password_reset", "password_changed"]
    assert_refused_problem(api_me(client, waiting))  # revoked by the change: tokens never outlive a password


def test_the_locale_switch_and_logout_stay_open_during_a_forced_reset(app, client, world, s):
    set_password(s, None, NOW, world.user("unit_yh"), TEMPORARY, temporary=True, hash_method="pbkdf2:sha256:1000")
    s.commit()
    login(client, "unit_yh", TEMPORARY)
    html = html_of(client, "/profile/password")
    assert client.post("/locale", data={"csrf_token": csrf_token(html), "locale": "en",
                                        "next": "/profile/password"}).status_code == 302
    assert "The administrator has reset your password" in html_of(client, "/profile/password")
    html = html_of(client, "/profile/password")
    assert client.post("/logout", data={"csrf_token": csrf_token(html)}).status_code == 302
    assert logged_out(client.get("/todo"))


# --- whatever ends a session ends the tokens ------------------------------------------------------------


def _admin_post(admin, url_of_page: str, url: str, data: dict, csrf_field: str = "csrf_token"):
    html = html_of(admin, url_of_page)
    return admin.post(url, data={csrf_field: csrf_token(html), **data})


CHANGES = {
    "deactivate": lambda admin, w: _admin_post(admin, f"/admin/users/{w.user('unit_yh').id}",
                                               f"/admin/users/{w.user('unit_yh').id}/active/0", {}),
    "end_membership": lambda admin, w: _admin_post(admin, f"/admin/users/{w.user('unit_yh').id}",
                                                   f"/admin/memberships/{w.m['unit_yh'].id}/end", {}),
    "add_membership": lambda admin, w: _admin_post(
        admin, f"/admin/users/{w.user('unit_yh').id}", f"/admin/users/{w.user('unit_yh').id}",
        {"m-unit_id": w.units["湘乡市人民政府"].id, "m-role": "unit"}, "m-csrf_token"),
    "change_role": lambda admin, w: _admin_post(admin, f"/admin/users/{w.user('unit_yh').id}",
                                                f"/admin/memberships/{w.m['unit_yh'].id}/role",
                                                {"r-role": "viewer"}, "r-csrf_token"),
    "reset_password": lambda admin, w: _admin_post(admin, f"/admin/users/{w.user('unit_yh').id}",
                                                   f"/admin/users/{w.user('unit_yh').id}/password",
                                                   {"p-password": NEW_PASSWORD}, "p-csrf_token"),
}
LOGGED = {"deactivate": "user_deactivated", "end_membership": "membership_ended",
          "add_membership": "membership_added", "change_role": "role_changed", "reset_password": "password_reset"}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_admins_change_ends_the_users_live_session_and_revokes_their_token(app, client, world, s, change):
    user_client = app.test_client()
    login(user_client, "unit_yh")
    secret = token_for(s, world, "unit_yh")
    assert user_client.get("/todo").status_code == 200 and api_me(client, secret).status_code == 200
    bystander = app.test_client()
    login(bystander, "unit_yx")

    admin = app.test_client()
    login(admin, "admin_hn")
    assert CHANGES[change](admin, world).status_code == 302
    assert logged_out(user_client.get("/todo")), change
    assert_refused_problem(api_me(client, secret))
    token = s.scalar(select(ApiToken).where(ApiToken.user_id == world.user("unit_yh").id))
    s.refresh(token)
    assert token.revoked_at is not None
    entry = s.scalar(select(SecurityLog).where(SecurityLog.kind == LOGGED[change]).order_by(SecurityLog.id.desc())
                     .limit(1))
    assert entry.user_id == world.user("unit_yh").id and entry.membership_id == world.m["admin_hn"].id
    assert entry.detail["by"] == "admin_hn"
    revoked = s.scalar(select(SecurityLog).where(SecurityLog.kind == "token_revoked"))
    assert revoked.detail["reason"] == LOGGED[change] and revoked.user_id == world.user("unit_yh").id
    assert bystander.get("/todo").status_code == 200  # nobody else is touched


def test_changing_ones_own_password_ends_the_other_sessions_and_the_tokens(app, world, s):
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "sup_xt")
    login(elsewhere, "sup_xt")
    secret = token_for(s, world, "sup_xt")
    html = html_of(here, "/profile/password")
    here.post("/profile/password", data={"csrf_token": csrf_token(html), "current": PASSWORD,
                                         "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert here.get("/todo").status_code == 200
    assert logged_out(elsewhere.get("/todo"))
    assert_refused_problem(api_me(here, secret))


def test_a_token_bound_to_an_ended_membership_fails_even_if_not_revoked(client, world, s):
    user = world.user("sup_xt")
    extra = add_membership(s, None, NOW, user, world.units["湘潭市生态环境局"], "viewer")
    s.commit()
    made = tokens.create_token(s, world.m["sup_xt"], NOW, user, extra, "查阅对接")
    s.commit()
    assert api_me(client, made.secret).status_code == 200
    extra.active = False  # as an ended membership, bypassing the revocation the operation also does
    s.commit()
    assert_refused_problem(api_me(client, made.secret))
    assert s.get(ApiToken, made.token.id).revoked_at is None


# --- idle timeout, fixation, cookies, headers -------------------------------------------------------------


def test_an_idle_session_ends_and_is_security_logged(app, client, world, s):
    login(client, "unit_yh")
    assert client.get("/todo").status_code == 200
    with client.session_transaction() as session:
        seen = session[LAST_SEEN]
        assert abs(seen - time.time()) < 60
    idle = app.permanent_session_lifetime.total_seconds()
    with client.session_transaction() as session:
        session[LAST_SEEN] = int(time.time() - idle + 120)  # idle, but not for long enough
    assert client.get("/todo").status_code == 200
    with client.session_transaction() as session:
        assert session[LAST_SEEN] >= time.time() - 60  # the request counted as activity
        session[LAST_SEEN] = int(time.time() - idle - 60)
    response = client.get("/todo")
    assert logged_out(response)
    assert "长时间未操作" in html_of(client, "/login")
    assert logged_out(client.get("/tasks"))  # and it stays ended
    entry = s.scalar(select(SecurityLog).where(SecurityLog.kind == "session_timeout"))
    assert entry.user_id == world.user("unit_yh").id and entry.detail["idle_minutes"] >= idle // 60


def test_the_session_cookie_is_permanent_with_the_idle_lifetime_and_its_age_is_checked(app, client, world):
    response = login(client, "unit_yh")
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie
    lifetime = app.permanent_session_lifetime
    assert lifetime == dt.timedelta(minutes=30)
    # the signed cookie itself carries its age: one older than the lifetime is not accepted at all
    serializer = app.session_interface.get_signing_serializer(app)
    value = client.get_cookie("session").value
    assert serializer.loads(value, max_age=lifetime.total_seconds())["_user_id"]
    with pytest.raises(Exception, match="age"):
        serializer.loads(value, max_age=-1)


def test_login_starts_a_fresh_session_with_nothing_planted_before(app, client, world, s):
    html = html_of(client, "/login")
    old_token = csrf_token(html)
    with client.session_transaction() as session:
        session["planted"] = "attacker-chosen"
        session["membership_id"] = world.m["sup_hn"].id  # someone else's membership
        session[LAST_SEEN] = 1
    before = client.get_cookie("session").value
    response = client.post("/login", data={"username": "unit_yh", "password": PASSWORD, "csrf_token": old_token})
    assert response.status_code == 302
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as session:
        assert "planted" not in session and "membership_id" not in session
        assert session[LAST_SEEN] > 1 and session["_user_id"].startswith(f"{world.user('unit_yh').id}:")
    assert client.get("/todo").status_code == 200
    # the CSRF token of the session before the login no longer works
    refused = client.post("/logout", data={"csrf_token": old_token})
    assert refused.status_code == 400 and client.get("/todo").status_code == 200


def test_cookies_are_httponly_and_samesite_and_secure_when_the_base_url_is_https(app, world, database_url, tmp_path):
    response = login(app.test_client(), "unit_yh")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    config = TestConfig(database_url, str(tmp_path / "https"))
    secure = Config(environ={"BASE_URL": "https://zhenggai.hunan.gov.cn", "SECRET_KEY": "k"},
                    instance_path=str(tmp_path / "https"))
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "BASE_URL"):
        setattr(config, key, getattr(secure, key))
    https_app = create_app(config)
    try:
        https_client = https_app.test_client()
        response = login(https_client, "unit_yh")
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert https_client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        https_app.extensions["tracker.engine"].dispose()


@pytest.mark.parametrize("url", ["/login", "/todo", "/no-such-page", "/api/v1/me", "/healthz"])
def test_every_answer_carries_the_security_headers(client, world, url):
    login(client, "sup_xt")
    headers = client.get(url).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin" and headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS would lock the browser out
    if url in ("/login", "/todo"):
        assert headers["Cache-Control"] == "no-store"


def test_login_throttling_refuses_the_right_password_after_repeated_failures(client, world, s, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, "unit_yh", "wrong-password-1").status_code == 401
    refused = login(client, "unit_yh")
    assert refused.status_code == 401 and "登录失败次数过多" in refused.get_data(as_text=True)
    kinds = s.scalars(select(SecurityLog.kind).order_by(SecurityLog.id).where(
        SecurityLog.kind.like("login%"))).all()
    assert kinds == ["login_failed"] * app.config["LOGIN_MAX_FAILURES"] + ["login_throttled"]
    assert s.scalar(select(func.count()).select_from(SecurityLog).where(
        SecurityLog.kind.like("login%"), SecurityLog.user_id == world.user("unit_yh").id)) == len(kinds)
