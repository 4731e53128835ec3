"""The SSRF guard: http(s) only, and connections only to public addresses, checked where the socket connects."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from transforms.fetch.config import FetchError
from transforms.fetch.deadline import watched


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses; private, loopback, link-local, reserved and the like are not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_scheme(url: str) -> None:
    """Only http and https are ever fetched; anything else (file:, ftp:, data:, javascript:) is refused."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[::1/x": a broken IPv6 host or port
        raise FetchError("blocked_scheme", "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("blocked_scheme", f"scheme {parts.scheme or '(none)'!r} is not fetched")
    if not host:
        raise FetchError("blocked_scheme", "URL has no host")


class BlockedAddress(NewConnectionError):
    """Raised instead of connecting when a host resolves to a non-public address."""


def _guarded(base):
    class Guarded(base):
        """Resolves, refuses non-public addresses, then connects to the checked address itself.

        Connecting to the address that was checked (not resolving again) closes the DNS-rebinding gap.
        """

        def _new_conn(self):
            try:
                infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise NameResolutionError(self.host, self, e) from e
            addresses = [info[4][0] for info in infos]
            blocked = [a for a in addresses if not is_public_address(a)]
            if blocked or not addresses:
                shown = blocked[0] if blocked else "(none)"
                raise BlockedAddress(self, f"{self.host} resolves to non-public address {shown}")
            original = self._dns_host
            self._dns_host = addresses[0]
            try:
                return super()._new_conn()
            finally:
                self._dns_host = original

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = watched(HTTPConnection)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = watched(HTTPSConnection)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _guarded(watched(HTTPConnection))


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _guarded(watched(HTTPSConnection))


class Adapter(requests.adapters.HTTPAdapter):
    """A requests adapter whose connections run under the fetch deadline (used with --allow-private-hosts)."""

    pools = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self.pools)


class GuardedAdapter(Adapter):
    """An Adapter that also refuses to connect to non-public addresses."""

    pools = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def blocked_cause(exc: BaseException) -> BlockedAddress | None:
    """The BlockedAddress somewhere in the chain of errors requests and urllib3 wrapped around it, if any."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, BlockedAddress):
            return e
        stack += [getattr(e, "reason", None), e.__cause__, e.__context__]
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return None


def blocked_detail(exc: BaseException) -> str:
    """The guard's own message for a refused connection, without the wrappers' text."""
    blocked = blocked_cause(exc)
    return str(blocked).split(": ", 1)[-1] if blocked is not None else "non-public address"
