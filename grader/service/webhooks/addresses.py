"""Where a webhook may point: an http(s) URL whose host is a public address, or a name that resolves only
to public addresses (GRADER_WEBHOOK_ALLOW_PRIVATE=true also lets it reach loopback, private and
link-local ones, for an LMS on the campus network).

Without this check a course's instructor could have the grader POST to the services beside it (the
database, a cloud's metadata endpoint) and read the first KiB of their answers in the delivery log. The
check runs at registration and again at every delivery, on every address the name resolves to, and the
delivery connects to an address it checked (never resolving the name a second time), so that a name
re-pointed between the check and the connection (DNS rebinding) cannot reach what the check refused.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2000  # the column's
SCHEMES = {"http": 80, "https": 443}
PRIVATE_HINT = (
    "GRADER_WEBHOOK_ALLOW_PRIVATE=true allows loopback, private and link-local addresses "
    "(an LMS on the campus network)"
)
# Cloud metadata services answer on these: never a webhook's receiver, even on a campus network.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6-only networks reach IPv4 hosts through these
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not reachable from the internet


class Refused(Exception):
    """The address (or one the name resolves to) is not one a webhook may reach."""


class Unresolvable(Exception):
    """The name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """A webhook's URL, taken apart: the host as written (a name, or an address without brackets)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # with its query: what the request line asks for


def parse_url(url: str) -> Target:
    """The URL's parts; ValueError (a sentence) if it is not an http(s) URL a webhook may have."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("the URL has spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("the URL must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL may not carry credentials (user:password@): the signature authenticates")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("the URL has no host")
    if literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")  # the name as DNS and the Host header spell it
        except UnicodeError:
            raise ValueError(f"the host {host!r} is not a valid name") from None
    if parts.fragment:
        raise ValueError("the URL may not have a #fragment (it is never sent)")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    path = quote(path, safe="/%:@!$&'()*+,;=?")  # a request line is ASCII: the rest percent-encoded
    return Target(url=url, scheme=scheme, host=host, port=port or SCHEMES[scheme], path=path)


def literal(host: str) -> Address | None:
    """The address a host is, if it is one (IPv6 with its zone is not one we take)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def effective(address: Address) -> Address:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64), or the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _kind(address: Address) -> tuple[str, bool] | None:
    """What the address is, and whether GRADER_WEBHOOK_ALLOW_PRIVATE lets webhooks reach it; None: public."""
    address = effective(address)
    if address in METADATA:
        return "a cloud metadata address", False
    if address.is_unspecified:
        return "the unspecified address", False
    if address.is_multicast:
        return "a multicast address", False
    if address.is_loopback:
        return "a loopback address", True
    if address.is_link_local:
        return "a link-local address", True
    if address.is_reserved:
        return "a reserved address", False
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # 6to4: a relay delivers to the IPv4 address inside, which must be fit itself.
        inner = _kind(address.sixtofour)
        return (f"a 6to4 address of {inner[0]}", inner[1]) if inner else None
    if address in SHARED:
        return "a shared (carrier-grade NAT) address", True
    if address.is_private or not address.is_global:
        return "a private address", True
    return None


def unfit(address: Address, *, allow_private: bool) -> str | None:
    """Why a webhook may not reach the address ("a loopback address; ..."), None when it may."""
    kind = _kind(address)
    if kind is None:
        return None
    reason, private = kind
    if private and allow_private:
        return None
    return f"{reason}; {PRIVATE_HINT}" if private else reason


def resolve(host: str, port: int) -> list[Address]:
    """Every address the host is or resolves to (a literal as it is), in the resolver's order."""
    address = literal(host)
    if address is not None:
        return [address]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # no such name, no DNS, a name it cannot encode
        raise Unresolvable(f"the host {host} does not resolve ({exc})") from None
    addresses: list[Address] = []
    for family, _type, _proto, _name, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        resolved = literal(str(sockaddr[0]).split("%", 1)[0])
        if resolved is not None and resolved not in addresses:
            addresses.append(resolved)
    if not addresses:
        raise Unresolvable(f"the host {host} has no IPv4 or IPv6 address")
    return addresses


def checked_addresses(target: Target, *, allow_private: bool) -> list[Address]:
    """The addresses to connect to for the target, every one of them fit (the IPv4 one for an IPv4-mapped
    address); Refused (naming the address and why) if any is not, Unresolvable if there are none."""
    addresses = resolve(target.host, target.port)
    for address in addresses:
        reason = unfit(address, allow_private=allow_private)
        if reason is None:
            continue
        if literal(target.host) is not None:
            raise Refused(f"webhooks may not reach {target.host}: {reason}")
        inside = effective(address)
        shown = str(address) if inside == address else f"{inside} (as {address})"
        raise Refused(f"webhooks may not reach {target.host}: it resolves to {shown}, {reason}")
    return [effective(address) for address in addresses]
