"""Settings: defaults in code, then the YAML file, then ``LIVEBASE_*`` environment variables,
then validation that names the bad key.

The shipped ``configs/livebase.yaml`` must equal these defaults (``tests/test_settings.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

SLUG_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "configs" / "livebase.yaml"
ENV_PREFIX = "LIVEBASE_"


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThemeConfig(_Strict):
    slug: str = Field(pattern=SLUG_RE)
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class RoomConfig(_Strict):
    slug: str = Field(pattern=SLUG_RE)
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class BaseConfig(_Strict):
    slug: str = Field(pattern=SLUG_RE)
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    themes: tuple[str, ...] = ()
    rooms: tuple[RoomConfig, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class LadderRung(_Strict):
    """One transcoded rendition of the HLS ladder."""

    name: str = Field(pattern=r"^[a-z0-9]{1,16}$")
    height: int = Field(ge=90, le=2160)
    video_kbps: int = Field(ge=100, le=50_000)
    audio_kbps: int = Field(default=128, ge=32, le=512)


DEFAULT_LADDER: tuple[LadderRung, ...] = (
    LadderRung(name="720p", height=720, video_kbps=2800, audio_kbps=128),
    LadderRung(name="480p", height=480, video_kbps=1200, audio_kbps=96),
)

DEFAULT_THEMES: tuple[ThemeConfig, ...] = (
    ThemeConfig(
        slug="culture-tourism-wellness",
        name_zh="直播+文旅康养",
        name_en="Live + culture, tourism and wellness",
    ),
    ThemeConfig(slug="arts-crafts", name_zh="直播+工艺美术", name_en="Live + arts and crafts"),
    ThemeConfig(
        slug="gi-produce", name_zh="地理标志农产品", name_en="Geographical-indication farm produce"
    ),
    ThemeConfig(slug="animation", name_zh="动漫", name_en="Animation"),
)

DEFAULT_BASES: tuple[BaseConfig, ...] = (
    BaseConfig(
        slug="haifeng",
        name_zh="海丰直播电商与短视频基地",
        name_en="Haifeng live-streaming and short-video base",
        themes=("gi-produce", "culture-tourism-wellness"),
        rooms=(
            RoomConfig(slug="studio-1", name_zh="一号直播间", name_en="Studio 1"),
            RoomConfig(slug="studio-2", name_zh="二号直播间", name_en="Studio 2"),
        ),
    ),
    BaseConfig(
        slug="luhe",
        name_zh="陆河青梅直播基地",
        name_en="Luhe green plum live-streaming base",
        themes=("gi-produce", "culture-tourism-wellness"),
        rooms=(
            RoomConfig(slug="orchard", name_zh="青梅果园直播间", name_en="Orchard studio"),
            RoomConfig(slug="studio-1", name_zh="一号直播间", name_en="Studio 1"),
        ),
    ),
    BaseConfig(
        slug="city-crafts",
        name_zh="汕尾市区工艺美术与动漫直播基地",
        name_en="Shanwei city arts, crafts and animation live base",
        themes=("arts-crafts", "animation"),
        rooms=(
            RoomConfig(slug="workshop", name_zh="非遗工坊直播间", name_en="Heritage workshop"),
            RoomConfig(slug="anime", name_zh="动漫直播间", name_en="Animation studio"),
        ),
    ),
)


class Settings(_Strict):
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    listen_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    rtmp_port: int = Field(default=1935, ge=1, le=65535)
    srt_port: int = Field(default=9000, ge=1, le=65535)
    srt_sleep_after_seconds: float = Field(default=30.0, ge=1.0, le=86400.0)
    whip_ice_servers: tuple[str, ...] = ()
    public_host: str = "127.0.0.1"
    ffmpeg: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_default: int = Field(default=50, ge=1, le=500)
    page_size_max: int = Field(default=200, ge=1, le=1000)
    hls_segment_seconds: float = Field(default=2.0, ge=1.0, le=10.0)
    hls_window: int = Field(default=6, ge=3, le=60)
    hls_ladder: tuple[LadderRung, ...] = DEFAULT_LADDER
    reconnect_grace_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    recording_retention_days: int = Field(default=30, ge=1, le=3650)
    ingest_stats_seconds: float = Field(default=5.0, ge=1.0, le=60.0)
    analytics_lateness_hours: float = Field(default=24.0, gt=0.0, le=720.0)
    report_hour: int = Field(default=7, ge=0, le=23)
    secret_key: SecretStr = SecretStr("")
    attribution_window_minutes: float = Field(default=30.0, ge=0.0, le=1440.0)
    webhook_receipt_days: int = Field(default=7, ge=1, le=365)
    themes: tuple[ThemeConfig, ...] = DEFAULT_THEMES
    bases: tuple[BaseConfig, ...] = DEFAULT_BASES

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        # Fernet keys are derived from it; a short passphrase would be guessable offline from
        # any copy of the database.
        if value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (or empty for a generated key file)")
        return value

    @field_validator("hls_ladder")
    @classmethod
    def _unique_rungs(cls, value: tuple[LadderRung, ...]) -> tuple[LadderRung, ...]:
        names = [r.name for r in value]
        if len(names) != len(set(names)) or "source" in names:
            raise ValueError("rung names must be unique and not 'source'")
        return value

    @field_validator("bases")
    @classmethod
    def _unique_bases(cls, value: tuple[BaseConfig, ...]) -> tuple[BaseConfig, ...]:
        slugs = [b.slug for b in value]
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        if dupes:
            raise ValueError(f"duplicate base slug(s): {', '.join(dupes)}")
        for base in value:
            rooms = [r.slug for r in base.rooms]
            if len(rooms) != len(set(rooms)):
                raise ValueError(f"base {base.slug!r} has duplicate room slugs")
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or SQLite under the data directory (the embedded default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'livebase.sqlite3'}"

    def ffmpeg_path(self) -> str:
        """The ffmpeg binary: ``LIVEBASE_FFMPEG`` or the static build shipped by imageio-ffmpeg."""
        if self.ffmpeg:
            return self.ffmpeg
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())


SCALAR_KEYS: tuple[str, ...] = tuple(
    name
    for name in Settings.model_fields
    if name not in ("themes", "bases", "hls_ladder", "whip_ice_servers")
)


def _check_references(settings: Settings) -> None:
    theme_slugs = {t.slug for t in settings.themes}
    for index, base in enumerate(settings.bases):
        for theme in base.themes:
            if theme not in theme_slugs:
                raise SettingsError(
                    f"bases[{index}].themes: unknown theme {theme!r} "
                    f"(declared themes: {', '.join(sorted(theme_slugs))})"
                )


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        key = re.sub(r"\.(\d+)", r"[\1]", key)
        top = str(err["loc"][0]) if err["loc"] else ""
        lines.append(f"{key} (from {sources.get(top, 'defaults')}): {err['msg']}")
    return "invalid settings: " + "; ".join(lines)


def load_settings(
    environ: Mapping[str, str] | None = None, config_path: Path | None = None
) -> Settings:
    """Load settings: code defaults, the YAML file, ``LIVEBASE_*`` variables, then validate."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_path
    if path is None and env.get("LIVEBASE_CONFIG"):
        path = Path(env["LIVEBASE_CONFIG"])
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"LIVEBASE_CONFIG: cannot read {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"{path}: the top level must be a mapping of settings")
        values.update(loaded or {})
        sources.update({str(key): str(path) for key in loaded or {}})
    known_env = {ENV_PREFIX + key.upper() for key in SCALAR_KEYS} | {"LIVEBASE_CONFIG"}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if name not in known_env:
            if name.startswith("LIVEBASE_TEST_"):
                continue
            raise SettingsError(f"{name}: unknown setting (known: {', '.join(sorted(known_env))})")
        if name != "LIVEBASE_CONFIG":
            key = name[len(ENV_PREFIX) :].lower()
            values[key] = raw
            sources[key] = name
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, sources)) from exc
    _check_references(settings)
    return settings
