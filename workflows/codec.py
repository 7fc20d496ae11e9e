"""Optional encryption of every Temporal payload, so titles and comments are not plain text in
Temporal's history, its database or its Web UI.

AES-256-GCM with a fresh 96-bit nonce per payload. The metadata names the key by a fingerprint
(not the key), so keys can rotate: payloads are encrypted with the current key and decrypted with
whichever known key made them; plain payloads (written before encryption was switched on) pass.
The client, the worker and any Replayer must use the same `data_converter(settings)`.
"""

import dataclasses
import hashlib
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from config.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    """A fingerprint that names the key in payload metadata without revealing it."""
    return hashlib.sha256(b"signoff-payload-key\0" + key).hexdigest()[:16]


class UnknownKey(ValueError):
    pass


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes | None, old_keys: Sequence[bytes] = ()):
        self.current = key_id(key) if key is not None else None
        self.ciphers = {key_id(k): AESGCM(k) for k in ([key] if key is not None else []) + list(old_keys)}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if self.current is None:  # decrypt-only: encryption was switched off, old histories still read
            return payload
        nonce = os.urandom(NONCE_BYTES)
        # The key id is authenticated too, so metadata cannot be swapped without detection.
        sealed = self.ciphers[self.current].encrypt(nonce, payload.SerializeToString(), self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.current.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self.ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(f"payload encrypted with key {kid!r}, which is not configured "
                             "(add it to SIGNOFF_PAYLOAD_OLD_KEYS)")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        return Payload.FromString(plain)


def codec_from(settings: Settings) -> EncryptionCodec | None:
    current, old = settings.payload_keys()
    if current is None and not old:
        return None
    return EncryptionCodec(current, old)


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter, encrypting payloads when a key is configured."""
    codec = codec_from(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
