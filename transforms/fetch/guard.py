"""The SSRF guard: http(s) only, and connections only to public addresses, checked where the socket connects."""

from __future__ import annotations

import ipaddress
import socket
import threading
import urllib.parse

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

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


def resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses `host` resolves to, waited for at most `timeout` seconds (TimeoutError after that).

    getaddrinfo cannot be interrupted and no socket timeout bounds it: a resolver that does not answer holds the
    caller for its own retries, often 30 s and more. So it runs on a daemon thread, left to finish on its own."""
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal.split("%", 1)[0])
        return [literal]  # an address already: nothing to wait for
    except ValueError:
        pass
    answer: list = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append([info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)])
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which raises it
            answer.append(e)
        finally:
            done.set()

    threading.Thread(target=lookup, name="fetch-dns", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"no DNS answer for {host} within {timeout:g}s")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return list(dict.fromkeys(answer[0]))


def _resolving(base, public_only: bool):
    class Resolving(base):
        """Resolves within the connect timeout, then connects to each address in turn until one answers.

        With `public_only`, any non-public address refuses the host, and the socket goes to an address that was
        checked (not resolved again), which closes the DNS-rebinding gap."""

        def _new_conn(self):
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
            try:
                addresses = resolve(self._dns_host, self.port, timeout)
            except socket.gaierror as e:
                raise NameResolutionError(self.host, self, e) from e
            except TimeoutError as e:
                raise ConnectTimeoutError(self, f"{e} (connect timeout={timeout})") from e
            blocked = [a for a in addresses if not is_public_address(a)] if public_only else []
            if blocked or not addresses:
                shown = blocked[0] if blocked else "(none)"
                raise BlockedAddress(self, f"{self.host} resolves to non-public address {shown}")
            original = self._dns_host
            try:
                # Like socket.create_connection: an address that refuses (an IPv6 one on a host without IPv6
                # routes) gives way to the next; a timeout does not, so the wait stays one connect timeout.
                for address in addresses[:-1]:
                    self._dns_host = address
                    try:
                        return super()._new_conn()
                    except NewConnectionError:
                        continue
                self._dns_host = addresses[-1]
                return super()._new_conn()
            finally:
                self._dns_host = original

    Resolving.__name__ = f"{'Guarded' if public_only else 'Resolving'}{base.__name__}"
    return Resolving


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _resolving(watched(HTTPConnection), public_only=False)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _resolving(watched(HTTPSConnection), public_only=False)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _resolving(watched(HTTPConnection), public_only=True)


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _resolving(watched(HTTPSConnection), public_only=True)


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
