"""Who the client is: the TCP peer, or the address a trusted reverse proxy forwarded.

Owns: ``EDGE_TRUSTED_PROXIES`` as a value (``TrustedProxies``), the RFC 7239 ``Forwarded`` and
``X-Forwarded-For`` parsing, and ``resolve_client`` (the one rule every user of a client address
follows: token IP allow-lists, the failed-token throttle, rate limits, link limits, logs).
Must not: do I/O, import trio, know routes or tokens.

Why not ReductStore's rule (spec 1.8: any private/loopback peer is a proxy, the *leftmost* hop
is the client): on a LAN appliance every client has a private address, so anyone could write
``X-Forwarded-For: <any address>`` and be taken at their word; and behind a real proxy the
leftmost hop is whatever the client wrote in its own request. Here, as with nginx's
``set_real_ip_from`` + ``real_ip_recursive on``: the headers count only when the peer is in
``EDGE_TRUSTED_PROXIES`` (default ``127.0.0.0/8,::1``: a proxy on the same box), and the hops are
walked from the right, skipping trusted proxies; the first other address is the client. If every
hop is trusted the leftmost one is the client; an unparsable hop ends the walk at the last good
address (a proxy never writes garbage, so garbage came from the untrusted side).
``Forwarded`` is preferred when present; otherwise ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..errors import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1"


def parse_ip(text: str) -> IpAddress | None:
    """An address, IPv4-mapped IPv6 unwrapped, zone id dropped; None if it is not one."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class TrustedProxies:
    """A set of addresses and networks; ``in`` answers for an address string."""

    __slots__ = ("networks", "_cache")

    def __init__(self, networks: Iterable[IpNetwork] = ()):
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    @classmethod
    def parse(cls, text: str, variable: str = "EDGE_TRUSTED_PROXIES") -> TrustedProxies:
        """``"127.0.0.0/8, ::1, 10.1.2.3"``; empty trusts nobody. A bad item is a ConfigError."""
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{variable}: '{item}' is not an IP address or network") from None
        return cls(networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        hit = self._cache.get(address)
        if hit is None:
            addr = parse_ip(address)
            hit = addr is not None and any(addr in net for net in self.networks)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[address] = hit
        return hit

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return "TrustedProxies(" + ",".join(map(str, self.networks)) + ")"


def _node_address(node: str) -> str | None:
    """One ``for=`` node or X-Forwarded-For hop -> a normalised address, or None."""
    node = node.strip(" \t")
    if len(node) >= 2 and node[0] == '"' and node[-1] == '"':
        node = node[1:-1].strip(" \t")
    if node.startswith("["):
        node = node[1:].split("]", 1)[0]
    elif node.count(":") == 1:  # IPv4 with a port
        node = node.split(":", 1)[0]
    addr = parse_ip(node)
    return str(addr) if addr is not None else None


def forwarded_hops(forwarded: list[str]) -> list[str | None]:
    """The ``for=`` of every element of RFC 7239 ``Forwarded`` headers, left to right.

    An element without ``for=`` or with an obfuscated/unknown node (``for=_hidden``,
    ``for=unknown``) gives None: it is a hop we cannot identify.
    """
    hops: list[str | None] = []
    for header in forwarded:
        for element in header.split(","):
            node = None
            for pair in element.split(";"):
                key, _, value = pair.partition("=")
                if key.strip(" \t").lower() == "for":
                    node = _node_address(value)
                    break
            hops.append(node)
    return hops


def xff_hops(values: list[str]) -> list[str | None]:
    return [_node_address(hop) for value in values for hop in value.split(",")]


def resolve_client(peer: str, forwarded: list[str], x_forwarded_for: list[str],
                   trusted: TrustedProxies) -> str:
    """The client address for a request from ``peer`` carrying these header values."""
    if not trusted or peer not in trusted:
        return peer
    if forwarded:
        hops = forwarded_hops(forwarded)
    elif x_forwarded_for:
        hops = xff_hops(x_forwarded_for)
    else:
        return peer
    client = peer
    for hop in reversed(hops):
        if hop is None:
            break  # unidentifiable: stop at the last address a trusted party vouched for
        client = hop
        if hop not in trusted:
            break
    return client
