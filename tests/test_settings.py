from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from livebase.settings import (
    DEFAULT_CONFIG_PATH,
    SCALAR_KEYS,
    Settings,
    SettingsError,
    load_settings,
)


def test_shipped_yaml_equals_code_defaults() -> None:
    from_file = load_settings({}, config_path=DEFAULT_CONFIG_PATH)
    assert from_file == Settings()
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    assert set(raw) == set(Settings.model_fields), "every setting is written out in the YAML"


def test_every_scalar_setting_is_documented_in_the_yaml() -> None:
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    for key in SCALAR_KEYS:
        # The key's paragraph (lines up to the previous blank line) carries a comment.
        paragraph = text[: text.index(f"\n{key}:")].rsplit("\n\n", 1)[-1]
        assert any(ln.startswith("#") for ln in paragraph.splitlines()), f"{key} has no comment"


def test_required_keys_and_defaults() -> None:
    s = Settings()
    assert (s.http_port, s.rtmp_port) == (8080, 1935)
    assert {"data_dir", "database_url", "redis_url", "ffmpeg"} <= set(SCALAR_KEYS)
    assert len(s.bases) == 3 and all(b.rooms for b in s.bases)
    assert {t.name_zh for t in s.themes} >= {
        "直播+文旅康养",
        "直播+工艺美术",
        "地理标志农产品",
        "动漫",
    }


def test_layering_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("http_port: 9001\nrtmp_port: 1936\n", encoding="utf-8")
    s = load_settings({"LIVEBASE_CONFIG": str(cfg), "LIVEBASE_HTTP_PORT": "9002"})
    assert s.http_port == 9002 and s.rtmp_port == 1936
    assert s.bases == Settings().bases


def test_embedded_default_database_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    s = load_settings({"LIVEBASE_DATA_DIR": str(tmp_path)}, config_path=DEFAULT_CONFIG_PATH)
    assert s.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'livebase.sqlite3'}"


def test_ffmpeg_is_bundled_unless_overridden(tmp_path: Path) -> None:
    assert Path(Settings().ffmpeg_path()).is_file()
    assert Settings(ffmpeg="/opt/ffmpeg").ffmpeg_path() == "/opt/ffmpeg"


@pytest.mark.parametrize(
    ("env", "yaml_text", "names"),
    [
        ({"LIVEBASE_HTTP_PORT": "eighty"}, None, ["http_port", "LIVEBASE_HTTP_PORT"]),
        ({"LIVEBASE_RTMP_PORT": "70000"}, None, ["rtmp_port"]),
        ({"LIVEBASE_DATABASE_URL": "mysql://x"}, None, ["database_url"]),
        ({"LIVEBASE_REDIS_URL": "http://x"}, None, ["redis_url"]),
        ({"LIVEBASE_HTTP_PROT": "1"}, None, ["LIVEBASE_HTTP_PROT", "unknown"]),
        ({}, "http_port: [1]\n", ["http_port"]),
        ({}, "colour: blue\n", ["colour"]),
        ({}, "bases:\n  - slug: Bad Slug\n    name_zh: x\n    name_en: x\n", ["bases[0].slug"]),
        (
            {},
            "bases:\n  - {slug: a, name_zh: x, name_en: x, timezone: Mars/Base}\n",
            ["bases[0].timezone", "Mars/Base"],
        ),
        (
            {},
            "bases:\n  - {slug: a, name_zh: x, name_en: x, themes: [cooking]}\n",
            ["bases[0].themes", "cooking"],
        ),
        ({}, "- just\n- a list\n", ["mapping"]),
        ({}, "http_port: [\n", ["YAML"]),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, env: dict[str, str], yaml_text: str | None, names: list[str]
) -> None:
    path = None
    if yaml_text is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(env, config_path=path)
    for name in names:
        assert name in str(info.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"LIVEBASE_CONFIG": str(tmp_path / "nope.yaml")})
