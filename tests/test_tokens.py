"""Personal API tokens: shown once and stored hashed, bound to one membership, revoked by their user,
dead with a deactivated user or an ended membership, failed checks throttled; the profile page."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import select

from tests.conftest import NOW, csrf_token, login
from tracker import tokens
from tracker.accounts import add_membership, end_membership, set_user_active
from tracker.audit import ActionError
from tracker.models import ApiToken, Event, LoginAttempt

LIMITS = {"max_failures": 3, "window_minutes": 15}


def make(s, world, username="sup_xt", name="省级平台对接", membership=None):
    m = world.m[username]
    made = tokens.create_token(s, m, NOW, m.user, membership or m, name)
    s.commit()
    return made


def test_a_token_is_stored_only_as_its_hash_and_authenticates_as_its_membership(s, world):
    made = make(s, world)
    row = s.get(ApiToken, made.token.id)
    assert made.secret.startswith("zg_") and len(made.secret) > 40
    assert row.token_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    assert made.secret not in {row.name, row.prefix, row.token_hash} and made.secret.startswith(row.prefix)
    assert row.last_used_at is None
    later = NOW + dt.timedelta(hours=1)
    found = tokens.authenticate(s, made.secret, "10.0.0.1", later, **LIMITS)
    assert found.id == row.id and found.membership.id == world.m["sup_xt"].id
    assert found.last_used_at == later
    event = s.scalar(select(Event).where(Event.entity == "api_token", Event.action == "create_token"))
    assert event.entity_id == row.id and event.data["prefix"] == row.prefix
    assert made.secret not in str(event.data)


def test_last_used_is_written_at_most_once_a_minute(s, world):
    made = make(s, world)
    tokens.authenticate(s, made.secret, "10.0.0.1", NOW, **LIMITS)
    tokens.authenticate(s, made.secret, "10.0.0.1", NOW + dt.timedelta(seconds=30), **LIMITS)
    assert s.get(ApiToken, made.token.id).last_used_at == NOW
    tokens.authenticate(s, made.secret, "10.0.0.1", NOW + dt.timedelta(minutes=2), **LIMITS)
    assert s.get(ApiToken, made.token.id).last_used_at == NOW + dt.timedelta(minutes=2)


def test_a_revoked_token_fails_and_the_revocation_is_recorded(s, world):
    made = make(s, world)
    tokens.revoke_token(s, world.m["sup_xt"], NOW, made.token)
    s.commit()
    with pytest.raises(tokens.TokenInvalid):
        tokens.authenticate(s, made.secret, "10.0.0.1", NOW, **LIMITS)
    assert s.scalar(select(Event).where(Event.action == "revoke_token")).entity_id == made.token.id
    with pytest.raises(ActionError, match="已撤销"):
        tokens.revoke_token(s, world.m["sup_xt"], NOW, made.token)


def test_only_the_owner_revokes_and_only_for_own_active_memberships(s, world):
    made = make(s, world)
    with pytest.raises(ActionError, match="只能撤销自己的"):
        tokens.revoke_token(s, world.m["sup_hn"], NOW, made.token)
    with pytest.raises(ActionError, match="所选身份不存在或已停用"):
        tokens.create_token(s, world.m["sup_xt"], NOW, world.user("sup_xt"), world.m["unit_yh"], "借用别人的身份")
    with pytest.raises(ActionError, match="只能为自己创建"):
        tokens.create_token(s, world.m["sup_hn"], NOW, world.user("sup_xt"), world.m["sup_xt"], "替别人建")
    with pytest.raises(ActionError, match="请填写令牌名称"):
        tokens.create_token(s, world.m["sup_xt"], NOW, world.user("sup_xt"), world.m["sup_xt"], "  ")


def test_deactivated_users_and_ended_memberships_make_their_tokens_fail(s, world):
    user_token = make(s, world, "unit_yh")
    extra = add_membership(s, None, NOW, world.user("sup_xt"), world.units["湘潭市生态环境局"], "viewer")
    s.commit()
    membership_token = make(s, world, "sup_xt", membership=extra)
    set_user_active(s, None, NOW, world.user("unit_yh"), False)
    end_membership(s, None, NOW, extra)
    s.commit()
    for secret in (user_token.secret, membership_token.secret):
        with pytest.raises(tokens.TokenInvalid):
            tokens.authenticate(s, secret, "10.0.0.1", NOW, **LIMITS)
    assert tokens.authenticate(s, make(s, world, "sup_xt").secret, "10.0.0.1", NOW, **LIMITS)


def test_failed_checks_are_throttled_per_address_even_for_a_valid_token(s, world):
    made = make(s, world)
    for _ in range(LIMITS["max_failures"]):
        with pytest.raises(tokens.TokenInvalid):
            tokens.authenticate(s, "zg_guessed-token", "10.0.0.9", NOW, **LIMITS)
    s.commit()
    with pytest.raises(tokens.TokenThrottled, match="15分钟后再试"):
        tokens.authenticate(s, made.secret, "10.0.0.9", NOW + dt.timedelta(minutes=1), **LIMITS)
    assert tokens.authenticate(s, made.secret, "10.0.0.10", NOW, **LIMITS)  # another address is not held up
    assert tokens.authenticate(s, made.secret, "10.0.0.9", NOW + dt.timedelta(minutes=16), **LIMITS)
    failures = s.scalars(select(LoginAttempt).where(LoginAttempt.username == tokens.FAILED_TOKEN_USERNAME)).all()
    assert len(failures) == LIMITS["max_failures"] and {f.remote_addr for f in failures} == {"10.0.0.9"}


# --- the profile page ----------------------------------------------------------------------------------


def _create_on_page(client, name, membership_id):
    html = client.get("/profile").get_data(as_text=True)
    return client.post("/profile/tokens", data={"csrf_token": csrf_token(html), "name": name,
                                                "membership_id": str(membership_id)})


def test_the_profile_page_creates_a_token_shown_once_lists_it_and_revokes_it(client, world, s):
    login(client, "sup_xt")
    response = _create_on_page(client, "省级平台对接", world.m["sup_xt"].id)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    secret = re.search(r'id="new-token">(zg_[^<]+)<', html).group(1)
    token = s.scalar(select(ApiToken).where(ApiToken.name == "省级平台对接"))
    assert token.token_hash == tokens.hash_token(secret) and token.membership_id == world.m["sup_xt"].id
    assert response.headers["Cache-Control"] == "no-store"
    listing = client.get("/profile").get_data(as_text=True)
    assert "省级平台对接" in listing and token.prefix in listing and secret not in listing
    assert "从未使用" in listing and "湘潭市突出环境问题整改办公室" in listing
    # the API answers to it, then no longer after it is revoked on the page
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert "从未使用" not in client.get("/profile").get_data(as_text=True)
    page = client.get("/profile").get_data(as_text=True)
    revoked = client.post(f"/profile/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(page)})
    assert revoked.status_code == 302
    assert "已撤销" in client.get("/profile").get_data(as_text=True)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_the_profile_page_refuses_other_users_memberships_and_tokens_and_needs_csrf(client, world, s):
    other = make(s, world, "sup_hn")
    login(client, "sup_xt")
    assert _create_on_page(client, "借用", world.m["sup_hn"].id).status_code == 400
    assert _create_on_page(client, "", world.m["sup_xt"].id).status_code == 400
    page = client.get("/profile").get_data(as_text=True)
    assert client.post(f"/profile/tokens/{other.token.id}/revoke",
                       data={"csrf_token": csrf_token(page)}).status_code == 404
    mine = make(s, world, "sup_xt")
    client.post(f"/profile/tokens/{mine.token.id}/revoke")  # no CSRF token: nothing happens
    s.expire_all()
    assert s.get(ApiToken, mine.token.id).revoked_at is None
    assert s.scalar(select(ApiToken).where(ApiToken.name == "借用")) is None
