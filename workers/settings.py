"""Every setting of every Signoff process, read from `SIGNOFF_*` environment variables.

The defaults are the embedded stack: nothing beyond `pip install` is needed to run them.
"""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "signoff-dev-secret-not-for-production"
JWT_ISSUER = "signoff"
JWT_AUDIENCE = "signoff-api"
JWT_MAX_TTL_MINUTES = 24 * 60


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", extra="ignore")

    data_dir: Path = Path(".signoff")
    # Empty means a SQLite file under data_dir; otherwise a postgresql:// URL.
    event_store: str = ""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "signoff"

    host: str = "127.0.0.1"
    port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    demo: bool = True

    jwt_secret: str = DEV_JWT_SECRET
    jwt_ttl_minutes: int = Field(default=8 * 60, gt=0)
    # Every token names its issuer and audience, and none lives longer than this (a leaked one dies soon).
    jwt_issuer: str = Field(default=JWT_ISSUER, min_length=1)
    jwt_audience: str = Field(default=JWT_AUDIENCE, min_length=1)
    jwt_max_ttl_minutes: int = Field(default=JWT_MAX_TTL_MINUTES, gt=0)
    max_body_bytes: int = 1024 * 1024
    # How long a request waits for its command to be recorded before it answers 503.
    command_timeout_seconds: float = Field(default=20, gt=0)

    # Fault injection for the crash tests only; see workflows/faults.py.
    faults: str = ""

    @model_validator(mode="after")
    def _ttl_within_maximum(self) -> "Settings":
        if self.jwt_ttl_minutes > self.jwt_max_ttl_minutes:
            raise ValueError("jwt_ttl_minutes must not exceed jwt_max_ttl_minutes")
        return self

    @property
    def jwt_max_ttl(self) -> timedelta:
        return timedelta(minutes=self.jwt_max_ttl_minutes)

    def event_store_url(self) -> str:
        if self.event_store:
            return self.event_store
        return f"sqlite:///{(self.data_dir / 'events.sqlite').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
