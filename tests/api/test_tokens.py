"""Tokens carry who issued them, for whom, and a bounded lifetime; the API never listens beyond
loopback with a guessable secret."""

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from api.auth import InvalidToken, mint_token, read_token
from config.settings import DEV_JWT_SECRET, DEV_WEBHOOK_KEY, Settings
from workers import cli

SECRET = "test-secret-that-is-long-enough-for-hs256"


def forge(**claims) -> str:
    now = datetime.now(timezone.utc)
    base = {"sub": "alice", "roles": [], "iss": "signoff", "aud": "signoff-api", "iat": now,
            "exp": now + timedelta(hours=1)}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None}, SECRET, algorithm="HS256")


def test_a_minted_token_reads_back():
    principal = read_token(SECRET, mint_token(SECRET, "paula", ["pmo"]))
    assert principal.user == "paula" and principal.roles == {"pmo"}
    assert read_token(SECRET, forge()).user == "alice"


@pytest.mark.parametrize("claims", [
    {"iss": None}, {"iss": "someone-else"}, {"aud": None}, {"aud": "another-api"}, {"iat": None}, {"exp": None},
], ids=["no-iss", "wrong-iss", "no-aud", "wrong-aud", "no-iat", "no-exp"])
def test_a_token_without_the_right_issuer_audience_or_times_is_refused(claims):
    with pytest.raises(InvalidToken):
        read_token(SECRET, forge(**claims))


def test_a_token_living_longer_than_the_maximum_is_refused():
    now = datetime.now(timezone.utc)
    with pytest.raises(InvalidToken, match="lifetime"):
        read_token(SECRET, forge(exp=datetime(9999, 12, 31, tzinfo=timezone.utc)))
    with pytest.raises(InvalidToken, match="lifetime"):  # issued long ago, still valid for an hour
        read_token(SECRET, forge(iat=now - timedelta(days=3), exp=now + timedelta(hours=1)))
    with pytest.raises(InvalidToken, match="lifetime"):  # claims a recent iat, expires too far ahead
        read_token(SECRET, forge(exp=now + timedelta(hours=25)))
    with pytest.raises(InvalidToken, match="lifetime"):
        read_token(SECRET, forge(exp=now + timedelta(hours=2)), max_ttl=timedelta(hours=1))
    assert read_token(SECRET, forge(exp=now + timedelta(hours=23))).user == "alice"


def test_issuer_and_audience_follow_the_settings():
    token = mint_token(SECRET, "alice", issuer="acme", audience="acme-signoff")
    assert read_token(SECRET, token, issuer="acme", audience="acme-signoff").user == "alice"
    with pytest.raises(InvalidToken):
        read_token(SECRET, token)


def test_minting_beyond_the_maximum_is_refused():
    with pytest.raises(ValueError):
        mint_token(SECRET, "alice", ttl=timedelta(hours=25), max_ttl=timedelta(hours=24))


def test_signoff_token_refuses_a_ttl_above_the_maximum(monkeypatch, capsys):
    monkeypatch.setenv("SIGNOFF_JWT_SECRET", SECRET)
    with pytest.raises(SystemExit) as refused:
        cli.main(["token", "alice", "--ttl-minutes", str(24 * 60 + 1)])
    assert refused.value.code not in (0, None)
    assert cli.main(["token", "alice", "--ttl-minutes", str(24 * 60)]) == 0
    assert read_token(SECRET, capsys.readouterr().out.strip()).user == "alice"


@pytest.mark.parametrize("roles", [["superuser"], ["pmo", "Admin"], ["pm"]], ids=["made-up", "wrong-case", "project-role"])
def test_signoff_token_refuses_a_role_that_is_not_global(monkeypatch, capsys, roles):
    monkeypatch.setenv("SIGNOFF_JWT_SECRET", SECRET)
    assert cli.main(["token", "x", *(arg for role in roles for arg in ("--role", role))]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no token a script could pick up
    assert f"unknown global role {roles[-1]!r}" in err and "admin, pmo" in err


def test_signoff_token_mints_the_global_roles(monkeypatch, capsys):
    monkeypatch.setenv("SIGNOFF_JWT_SECRET", SECRET)
    assert cli.main(["token", "ops", "--role", "admin", "--role", "pmo"]) == 0
    assert read_token(SECRET, capsys.readouterr().out.strip()).roles == {"admin", "pmo"}


@pytest.mark.parametrize("secret", ["x", " ", " " * 40, DEV_JWT_SECRET, DEV_JWT_SECRET + " ", " " + DEV_JWT_SECRET,
                                    "a" * 64, "short-but-not-empty"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example.com"])
def test_the_api_refuses_a_weak_secret_beyond_loopback(secret, host):
    with pytest.raises(SystemExit) as refused:
        cli.run_api(Settings(jwt_secret=secret, host=host))
    assert "SIGNOFF_JWT_SECRET" in str(refused.value.code)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_may_use_the_development_secret(host):
    assert cli.bind_refusal(Settings(jwt_secret=DEV_JWT_SECRET, host=host)) is None


STRONG = "Zm9vYmFyYmF6cXV4LTMyLWJ5dGVzLW9mLXJhbmRvbQ"


def test_a_strong_secret_may_listen_anywhere():
    assert cli.bind_refusal(Settings(jwt_secret=STRONG, webhook_key=STRONG[::-1], host="0.0.0.0")) is None


@pytest.mark.parametrize("key", [DEV_WEBHOOK_KEY, " " + DEV_WEBHOOK_KEY, "short-key", "b" * 64])
def test_the_api_refuses_a_weak_webhook_key_beyond_loopback(key):
    # Webhook secrets are derived from it: the published key would let anyone sign as Signoff.
    with pytest.raises(SystemExit) as refused:
        cli.run_api(Settings(jwt_secret=STRONG, webhook_key=key, host="0.0.0.0"))
    assert "SIGNOFF_WEBHOOK_KEY" in str(refused.value.code)


async def test_the_api_answers_401_to_a_token_for_another_audience_or_forever(api):
    assert api.settings.jwt_secret == SECRET
    assert (await api.http.get("/api/projects", headers=api.auth("paula", "pmo"))).status_code == 200
    forever = datetime(9999, 1, 1, tzinfo=timezone.utc)
    for token in (forge(aud="another-api"), forge(iss=None), forge(exp=forever), forge(iss=None, aud=None, exp=forever)):
        r = await api.http.get("/api/projects", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json", r.text
