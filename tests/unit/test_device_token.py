"""The generated device token: created only when no full-access token exists, secret file first."""

from __future__ import annotations

from datetime import datetime, timezone

from edge.auth import device_token
from edge.auth.repository import TokenRepository

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_created_once_with_a_private_secret_file(tmp_path):
    repo = TokenRepository.open(tmp_path)
    path = device_token.ensure(repo, tmp_path, NOW)
    assert path == tmp_path / ".edge" / "device-token" and path.stat().st_mode & 0o777 == 0o600
    secret = path.read_text().strip()
    assert repo.authenticate(f"Bearer {secret}", "127.0.0.1", NOW).permissions.full_access
    assert secret not in (tmp_path / ".edge" / "tokens.json").read_text()
    # A second start (a fresh repository over the same folder) keeps it and creates nothing.
    again = TokenRepository.open(tmp_path)
    assert device_token.ensure(again, tmp_path, NOW) is None
    assert path.read_text().strip() == secret
    assert again.authenticate(f"Bearer {secret}", None, NOW).name == "device-token"


def test_not_created_when_a_full_access_token_exists(tmp_path):
    repo = TokenRepository.open(tmp_path)
    repo.provision({"RS_API_TOKEN": "operator-secret"}, NOW)
    assert device_token.ensure(repo, tmp_path, NOW) is None
    assert not (tmp_path / ".edge" / "device-token").exists()


def test_created_when_only_limited_tokens_are_provisioned(tmp_path):
    repo = TokenRepository.open(tmp_path)
    repo.provision({"RS_TOKEN_A_NAME": "reader", "RS_TOKEN_A_VALUE": "reader-secret", "RS_TOKEN_A_READ": "cam"}, NOW)
    assert device_token.ensure(repo, tmp_path, NOW) is not None   # else nobody could administer the device
