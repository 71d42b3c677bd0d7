"""Shop credentials at rest: Fernet with a key from the settings or a 0600 key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from livebase.orders.vault import KEY_FILE, Vault, VaultError
from livebase.settings import DEFAULT_CONFIG_PATH, SettingsError, load_settings

FIELDS = {"secret": "shpss_very_secret_value", "account_id": "4463798"}


def test_a_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    sealed = Vault.from_settings("", tmp_path / "data").seal(FIELDS)
    key = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert Vault.from_settings("", tmp_path / "data").open(sealed) == FIELDS
    assert b"shpss" not in sealed.encode() and "very_secret" not in sealed


def test_the_configured_secret_key_is_used_and_another_cannot_open(tmp_path: Path) -> None:
    one = Vault.from_settings("k" * 32, tmp_path)
    sealed = one.seal(FIELDS)
    assert not (tmp_path / KEY_FILE).exists()
    assert Vault.from_settings("k" * 32, tmp_path).open(sealed) == FIELDS
    with pytest.raises(VaultError, match="cannot be decrypted"):
        Vault.from_settings("j" * 32, tmp_path).open(sealed)
    with pytest.raises(VaultError):
        one.open("not a token")
    assert "k" * 32 not in repr(one)


def test_a_short_secret_key_is_refused_and_never_shown() -> None:
    with pytest.raises(SettingsError, match="secret_key") as info:
        load_settings({"LIVEBASE_SECRET_KEY": "short-secret"}, config_path=DEFAULT_CONFIG_PATH)
    assert "secret_key (from LIVEBASE_SECRET_KEY)" in str(info.value)
    assert "short-secret" not in str(info.value)
    settings = load_settings({"LIVEBASE_SECRET_KEY": "s" * 40})
    assert "s" * 40 not in repr(settings) and settings.secret_key.get_secret_value() == "s" * 40
