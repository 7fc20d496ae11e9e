"""The audit key: an Ed25519 private key in a PEM file that signs the trail's checkpoints.

Only the projector holds it; the API and an auditor need only the public key, as base64 of its 32
raw bytes (what `signoff audit public-key` prints)."""

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.audit import key_id
from domain.errors import Invalid


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey):
        self.private = private
        self.public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id(self.public)

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()

    def public_text(self) -> str:
        return base64.b64encode(self.public).decode()

    @classmethod
    def load(cls, path: Path, make: bool = False) -> "SigningKey":
        """The key in `path`; with `make`, a new one written there (owner-only) if there is none."""
        if not path.exists():
            if not make:
                raise Invalid(f"no audit signing key at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise Invalid(f"{path} holds no Ed25519 private key")
        key = cls(private)
        if make:  # the public half beside it, for whoever verifies (SIGNOFF_AUDIT_PUBLIC_KEY may name that file)
            public = path.with_suffix(".pub")
            if not public.exists() or public.read_text().strip() != key.public_text():
                public.write_text(key.public_text() + "\n")
        return key


def parse_public_key(text: str) -> bytes:
    """A public key given as base64 of its 32 raw bytes, or as the path of a file holding that."""
    candidate = text.strip()
    if candidate and Path(candidate).is_file():
        candidate = Path(candidate).read_text().strip()
    try:
        raw = base64.b64decode(candidate, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise Invalid("an audit public key is base64 of 32 bytes (what `signoff audit public-key` prints)")
    return raw


def public_key_for(settings: object) -> bytes | None:
    """The audit public key the settings name, else the public half written beside the signing key."""
    configured = getattr(settings, "audit_public_key", "")
    if configured:
        try:
            return parse_public_key(configured)
        except (Invalid, OSError):
            return None  # e.g. the projector has not written its .pub file yet
    # The public half the projector wrote beside its key: the API never reads the private key.
    public = settings.audit_signing_key_path().with_suffix(".pub")  # type: ignore[attr-defined]
    try:
        return parse_public_key(public.read_text())
    except (Invalid, OSError, ValueError):
        return None
