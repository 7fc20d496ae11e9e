"""A project's webhooks: where its messages go, which ones, and the secret each is signed with.

Secrets are never stored. Each is derived from the service's webhook key, the webhook's id and its
generation (raised by every rotation): `whsec_` and the base64 of an HMAC-SHA256, the Standard
Webhooks form. So no event, view, log or export can hold one; the response that adds a webhook or
rotates its secret is the only place it is ever shown.

A URL is `https`, or `http` to 127.0.0.1/localhost where local webhooks are allowed (`signoff
dev`). Its host must not be, or resolve to, a private, loopback, link-local or otherwise internal
address (unless local webhooks are allowed and it is loopback): a webhook must not reach into the
service's own network. The resolver is passed in, so this stays a pure rule; the sender asks it
again right before each attempt, since a name may resolve elsewhere by then.
"""

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from domain.errors import Invalid

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URL_CHARS = 2000

Resolve = Callable[[str], Iterable[str]]  # a host name to the addresses it resolves to


def masked(url: str) -> str:
    """A webhook URL as people without the right to see it whole are shown it: scheme and host only
    (no credentials, path or query, which may carry a receiver's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def derive_secret(key: bytes, webhook_id: str, generation: int) -> str:
    digest = hmac.new(key, f"signoff-webhook\0{webhook_id}\0{generation}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def check_url(url: str, allow_local: bool, resolve: Resolve, where: tuple[str | int, ...] = ("url",)) -> list[str]:
    """Raise Invalid (naming `where`) unless `url` may receive webhooks; answer the addresses its
    host was found at (empty for a loopback host where local webhooks are allowed). A sender
    connects to one of these, never to a second lookup of the name, which could answer otherwise."""
    def refuse(why: str) -> Invalid:
        return Invalid(f"webhook url {url!r}: {why}", where)

    if len(url) > MAX_URL_CHARS:
        raise refuse(f"longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if not host:
        raise refuse("it names no host")
    if parts.username or parts.password:
        raise refuse("credentials do not belong in a webhook url")
    local = allow_local and host in LOCAL_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise refuse("only https urls receive webhooks" + ("" if allow_local else
                                                          " (http only to 127.0.0.1 or localhost where local webhooks are on)"))
    if local:
        return []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host)]
        except OSError:
            raise refuse("its host does not resolve") from None
        if not addresses:
            raise refuse("its host does not resolve")
    # Which internal address a name has is not said: a refusal must not map the inside for anyone.
    if not all(is_public(address) for address in addresses):
        raise refuse("it is, or resolves to, an internal address; webhooks go to public hosts only")
    return [str(address) for address in addresses]


# IPv6 prefixes that carry an IPv4 address inside; the address inside decides.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address, also once any IPv4 address carried inside an IPv6 one is unwrapped
    (mapped, 6to4, Teredo, NAT64, IPv4-compatible), since such an address can reach that IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = (address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None))
        if inner is None and (any(address in net for net in NAT64) or address in IPV4_COMPATIBLE):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and not is_public(inner):
            return False
    return address.is_global and not address.is_multicast
