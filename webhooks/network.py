"""The SSRF guard and the HTTP POST of a delivery.

An endpoint's host is resolved once per attempt and every address it resolves to
must be public (not private, loopback, link-local, multicast, reserved or
unspecified) unless WEBHOOKS_ALLOW_PRIVATE_NETWORKS. The POST then connects to
the first of those checked addresses, never resolving the name again, so a DNS
answer that changes between the check and the connection (rebinding) cannot steer
it inside. urllib3's connection pools make that plain: the pool's host is the IP
address, the Host header carries the name, and for HTTPS the TLS server name and
certificate check use the name (server_hostname / assert_hostname), so the
certificate is still verified against the host the user configured. requests
would resolve the name itself inside its adapter.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

from .conf import setting

USER_AGENT = "PersonaStudio-Webhooks/1"
RESPONSE_EXCERPT_BYTES = 1024


class UrlRefused(ValueError):
    """The URL may not be called; the message says why, in words."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (lowercased by urlsplit), without brackets
    port: int
    path: str  # path and query, as sent in the request line
    address: str  # the checked IP address connected to
    addresses: tuple


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str


def address_refusal(address):
    """Why `address` may not be called, or "" if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return f"{address} is an unspecified or multicast address"
    if setting("WEBHOOKS_ALLOW_PRIVATE_NETWORKS"):
        return ""
    for kind in ("loopback", "link_local", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return ""


def url_check(url, *, resolve=socket.getaddrinfo):
    """The Target to POST to for `url`, or UrlRefused: not http(s), no host,
    credentials in it, a name that does not resolve, or any resolved address
    that is not public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("Only http:// and https:// URLs can receive webhooks.")
    if not parts.hostname:
        raise UrlRefused("The URL names no host.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Leave credentials out of the URL; verify the signature instead.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"{host} does not resolve ({exc}).") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve.")
    for address in addresses:
        if why := address_refusal(address):
            said = why if address == host else f"{host} resolves to {why}"
            raise UrlRefused(f"{said}: webhooks are only sent to public addresses.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0], addresses=addresses)


def post(target, *, body, headers, timeout=None):
    """POST `body` to the checked address of `target`; no redirects followed, no
    retries here (the delivery's backoff decides), at most `timeout` seconds in all.
    Returns the status and the first bytes of the answer; raises urllib3's errors."""
    timeout = setting("WEBHOOKS_TIMEOUT_SECONDS") if timeout is None else timeout
    default_port = 443 if target.scheme == "https" else 80
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != default_port:
        host_header += f":{target.port}"
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            excerpt = response.read(RESPONSE_EXCERPT_BYTES, decode_content=False)
        finally:
            response.release_conn()
        return Response(status=response.status, excerpt=excerpt.decode("utf-8", "replace"))
    finally:
        pool.close()
