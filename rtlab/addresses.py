"""The addresses students can reach a server on: every interface's, for ``0.0.0.0``."""

from __future__ import annotations

import ipaddress
import socket

import psutil

ANY = {"0.0.0.0": (socket.AF_INET,), "": (socket.AF_INET,), "::": (socket.AF_INET, socket.AF_INET6)}


def reachable(host: str) -> list[tuple[str, str]]:
    """(address, interface) pairs a server bound to ``host`` answers on: for ``0.0.0.0``
    (or ``::``) the machine's own addresses, loopback last; else ``host`` itself."""
    families = ANY.get(host)
    if families is None:
        return [(host, "")]
    found: list[tuple[str, str]] = []
    for interface, addresses in sorted(psutil.net_if_addrs().items()):
        for address in addresses:
            if address.family not in families:
                continue
            ip = ipaddress.ip_address(address.address.split("%")[0])
            if ip.is_link_local:
                continue  # fe80::/10 and 169.254/16 need a zone or are not routed
            found.append((str(ip), interface))
    return sorted(found, key=lambda pair: ipaddress.ip_address(pair[0]).is_loopback)


def url_host(address: str) -> str:
    """An address as a URL's host: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address
