"""The registrar service object: CA, registry, settings, guess limiter, TLS context, peer identity."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psutil
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from agent.registrar.ca import CertificateAuthority, cert_pem
from agent.registrar.identity import ensure_serving
from agent.registrar.ratelimit import SharedGuessLimiter
from agent.registrar.registry import Cluster, ClusterView, Node, Registry

PEERCERT_ROLE = "organizationalUnitName"


@dataclass(frozen=True)
class Settings:
    cert_lifetime: timedelta = timedelta(days=90)
    retry_after: int = 60
    servers: int = 1
    distribution: Literal["k3s", "k0s"] = "k3s"
    k8s_version: str = ""
    guess_burst: int = 10
    guess_window: float = 60.0


@dataclass(frozen=True)
class Peer:
    """The verified client certificate of an mTLS request."""

    common_name: str
    role: str
    serial: int


@dataclass
class Registrar:
    state_dir: Path
    ca: CertificateAuthority
    registry: Registry
    settings: Settings = field(default_factory=Settings)
    limiter: SharedGuessLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = SharedGuessLimiter(self.registry, self.settings.guess_burst, self.settings.guess_window)

    def cluster(self, name: str) -> Cluster:
        """The stored cluster, else one made with this registrar's settings (stored once, whichever
        replica is first: a cluster is never replaced, its join tokens are kept)."""
        existing = self.registry.get_cluster(name)
        return existing if existing is not None else self.registry.ensure_cluster(self.new_cluster(name))

    def new_cluster(self, name: str) -> Cluster:
        return Cluster(name, self.settings.distribution, self.settings.k8s_version, self.settings.servers)

    def member(self, peer: Peer, view_rule: str = "") -> tuple[Node, ClusterView | None] | None:
        """The node behind a node certificate that is not revoked, whatever the node's state, in one
        read; with ``view_rule`` (a rule kind) what its answer needs too (``Registry.member_view``)."""
        if peer.role != "fleet:node":
            return None
        seen: tuple[Node, ClusterView | None] | None
        if view_rule:
            seen = self.registry.member_view(peer.serial, view_rule)
        else:
            node = self.registry.certified_node(peer.serial)
            seen = (node, None) if node is not None else None
        return seen if seen is not None and seen[0].node_id == peer.common_name else None

    def heartbeat(
        self, peer: Peer, instance: str, status: dict[str, Any] | None, observed: str, view_rule: str
    ) -> tuple[Node, ClusterView] | None:
        """A heartbeat's common case (``Registry.heartbeat``): stored, and its node and answer's view read, in
        one statement; None when the caller must read why not (``member``) and judge the instance."""
        if peer.role != "fleet:node" or not peer.common_name:
            return None
        return self.registry.heartbeat(peer.common_name, peer.serial, instance, status, observed, view_rule)

    def live_node(self, peer: Peer) -> Node | None:
        """The node behind a node certificate that is neither revoked nor superseded by revocation."""
        seen = self.member(peer)
        return seen[0] if seen is not None and seen[0].state == "approved" else None

    def crl_der(self) -> bytes:
        revoked = [(serial, datetime.fromtimestamp(at, UTC)) for serial, at in self.registry.revoked()]
        return self.ca.crl(revoked, self.registry.crl_number()).public_bytes(Encoding.DER)

    def ssl_context(self, names: list[str]) -> ssl.SSLContext:
        """Serving context: the registrar's recorded serving certificate for every name (serverAuth
        only, no fleet role); client certs optional (EST enrollment has none yet), verified against
        the fleet CA when given."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=cert_pem(self.ca.cert).decode())
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self.renew_serving(ctx, names)
        return ctx

    def renew_serving(self, ctx: ssl.SSLContext, names: list[str]) -> None:
        """Load the serving certificate into ``ctx``: the one on disk while it is good, else a renewed
        one (new handshakes use it)."""
        chain, key = ensure_serving(self.ca, self.registry, self.state_dir, list(dict.fromkeys(names)))
        ctx.load_cert_chain(chain, key)


REGISTRAR: web.AppKey[Registrar] = web.AppKey("registrar", Registrar)


def peer_of(request: web.Request) -> Peer | None:
    transport = request.transport
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    fields = {k: v for rdn in cert.get("subject", ()) for k, v in rdn}
    try:
        serial = int(cert["serialNumber"], 16)
    except (KeyError, ValueError):
        return None
    return Peer(str(fields.get("commonName", "")), str(fields.get(PEERCERT_ROLE, "")), serial)


def source_of(request: web.Request) -> str:
    return request.remote or "unknown"


def serving_names(host: str, extra: list[str]) -> list[str]:
    """Names the serving certificate covers: the listen address (every local address
    for a wildcard), the host name, and whatever --san adds."""
    names: list[str] = []
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names += [socket.gethostname(), "localhost"]
        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    names.append(a.address.split("%")[0])
    else:
        names.append(host)
    return list(dict.fromkeys([*names, *extra]))
