"""Every setting of every Signoff process, read from `SIGNOFF_*` environment variables.

The defaults are the embedded stack: nothing beyond `pip install` is needed to run them.
"""

import base64
import binascii
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "signoff-dev-secret-not-for-production"
DEV_WEBHOOK_KEY = "signoff-dev-webhook-key-not-for-production"
# What a key beyond a developer's machine must at least be: long, and not one character repeated.
MIN_KEY_BYTES = 32
MIN_KEY_SYMBOLS = 8
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
    # Request line and headers; more is refused with 431 problem+json.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # How long a request waits for its command to be recorded before it answers 503.
    # 25 s: at least twice a save's worst case (api/deps.py write_margin), so the guarantee that
    # nothing applies after a 503 holds with the default store timeouts.
    command_timeout_seconds: float = Field(default=25, gt=0)
    # Bounds on every wait for the event store, in whole seconds, so an unreachable or locked store is
    # answered 503 at once: connecting (and waiting for a pooled connection), waiting for a lock, one
    # statement. A query parameter of event_store (connect_timeout=…) takes precedence.
    store_connect_timeout_seconds: int = Field(default=3, gt=0)
    store_lock_timeout_seconds: int = Field(default=3, gt=0)
    store_statement_timeout_seconds: int = Field(default=5, gt=0)
    # /readyz answers 503 when the store and Temporal have not both answered within this.
    readyz_timeout_seconds: float = Field(default=5, gt=0)
    # /readyz answers 503 (`/problems/starting`) until this file exists: `signoff dev` names the marker it
    # writes once the demo data is loaded, so that ready means the demo is in. Empty: no such wait.
    readyz_waits_for: str = ""


    # Where people reach the API, for the links in what they are sent; empty: http://{host}:{port}.
    public_url: str = ""
    # Webhooks. Their secrets are derived from this key (domain/webhooks.py), never stored: set a
    # long random one in production; changing it changes every webhook's secret.
    webhook_key: str = DEV_WEBHOOK_KEY
    # http:// to 127.0.0.1/localhost may receive webhooks (`signoff dev` turns it on); otherwise https
    # to public addresses only.
    allow_local_webhooks: bool = False
    # How long a delivery keeps trying (exponential backoff from a second, at most an hour apart).
    webhook_budget_seconds: float = Field(default=24 * 3600, gt=0)
    webhook_first_retry_seconds: float = Field(default=1, gt=0)
    # How long one attempt may take, connecting and answering.
    webhook_attempt_timeout_seconds: float = Field(default=10, gt=0)

    # The audit trail's checkpoints are signed with this Ed25519 private key (a PEM file; empty: one under
    # data_dir). The projector makes it on first start, with its public half beside it (`.pub`). The API
    # and verifiers need only the public key: `audit_public_key`, base64 of its 32 raw bytes or the path
    # of a file holding that; empty: read from the key file.
    audit_signing_key: str = ""
    audit_public_key: str = ""
    # A checkpoint is signed after this many new rows, or this long after the last one when rows came since.
    audit_checkpoint_rows: int = Field(default=1000, gt=0)
    audit_checkpoint_seconds: float = Field(default=60, gt=0)
    # Events the projector turns into rows per transaction.
    audit_batch_rows: int = Field(default=2000, gt=0)
    # How long an audit read waits for the projector to reach what the store held when it was asked.
    audit_wait_seconds: float = Field(default=5, gt=0)

    # Optional encryption of every Temporal payload (titles, comments) with AES-GCM: base64 of 32
    # random bytes. Empty: payloads are plain JSON, as `signoff dev` keeps them. See workflows/codec.py.
    payload_key: str = ""
    # Keys used before a rotation, comma-separated base64: still decrypt what they encrypted.
    payload_old_keys: str = ""
    # Origins of the Temporal Web UI allowed to call the codec endpoint (/api/codec) from a browser.
    codec_cors_origins: str = "http://localhost:8233,http://127.0.0.1:8233"

    @field_validator("payload_key", "payload_old_keys")
    @classmethod
    def _keys_are_32_bytes(cls, value: str) -> str:
        for key in filter(None, (k.strip() for k in value.split(","))):
            decode_payload_key(key)
        return value

    def payload_keys(self) -> tuple[bytes | None, list[bytes]]:
        """The key that encrypts (None: payloads stay plain) and the old ones that still decrypt."""
        current = decode_payload_key(self.payload_key) if self.payload_key.strip() else None
        return current, [decode_payload_key(k) for k in self.payload_old_keys.split(",") if k.strip()]

    @model_validator(mode="after")
    def _ttl_within_maximum(self) -> "Settings":
        if self.jwt_ttl_minutes > self.jwt_max_ttl_minutes:
            raise ValueError("jwt_ttl_minutes must not exceed jwt_max_ttl_minutes")
        return self

    @property
    def jwt_max_ttl(self) -> timedelta:
        return timedelta(minutes=self.jwt_max_ttl_minutes)

    def webhook_key_refusal(self) -> str | None:
        """Why webhook secrets may not be derived from `webhook_key`, or None: every secret is an HMAC
        of it and a webhook id members can read, so the published key would let anyone sign."""
        key = self.webhook_key.strip()
        if DEV_WEBHOOK_KEY in key:
            return "SIGNOFF_WEBHOOK_KEY is the published development key"
        if len(key.encode()) < MIN_KEY_BYTES or len(set(key)) < MIN_KEY_SYMBOLS:
            return f"SIGNOFF_WEBHOOK_KEY must be at least {MIN_KEY_BYTES} bytes of random text (e.g. `openssl rand -base64 48`)"
        return None

    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def audit_signing_key_path(self) -> Path:
        return Path(self.audit_signing_key) if self.audit_signing_key else self.data_dir / "audit-signing-key.pem"

    def event_store_url(self) -> str:
        """The event store's URL, carrying the store timeouts that it does not set itself."""
        url = self.event_store or f"sqlite:///{(self.data_dir / 'events.sqlite').resolve()}"
        base, _, given = url.partition("?")
        query = dict(parse_qsl(given))
        for name, value in (("connect_timeout", self.store_connect_timeout_seconds),
                            ("lock_timeout", self.store_lock_timeout_seconds),
                            ("statement_timeout", self.store_statement_timeout_seconds)):
            query.setdefault(name, str(value))
        return f"{base}?{urlencode(query)}"  # not urlunsplit: it turns sqlite:///a into sqlite://a


def decode_payload_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("a payload key is base64 of 32 random bytes (e.g. `openssl rand -base64 32`)") from None
    if len(key) != 32:
        raise ValueError(f"a payload key is 32 bytes, base64 encoded; this one is {len(key)} bytes")
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
