"""The enrollment controller ("fleet"): identity, EST enrollment, membership, heartbeats, renewal.

One pass: make sure the box has an identity and a valid certificate (enroll,
or renew at two thirds of its life), register once per start (and again when
the inventory changes), else heartbeat; publish the assignment into
``ctx.assignment`` and report the cluster's join tokens when this box is a
server. Every failure backs off (capped exponential with jitter, cap
``fleet.retry_max``, at most 30 s once enrolled so a box is back within a
minute of a registrar restart) forever and says why in a condition; a 503 or
429 with ``Retry-After`` waits what the registrar asked instead (up to 20 %
more, capped by ``fleet.retry_max``, never under the backoff's floor), and the
log line and ``last_error`` say so; nothing blocks the
rest of the agent, and nothing here ever needs a restart to recover.

Conditions: ``Enrolled``, ``PendingApproval`` (info), ``Assigned``,
``IdentityReset`` (info, when a cloned image's identity was set aside),
``ReplicasTrusted`` (only once a replica of a ``fleet.url`` list showed a CA
that does not match the pin). With several replicas every call fails over as
agent.fleet.failover describes.

Reads: ctx.config (``[fleet]``), ctx.inventory (registered facts), ctx.desired (the chosen node
address, registered first so joiners get a server URL on it), ctx.join_tokens, its own state
section "fleet" and the identity files. Writes: the identity files, ctx.assignment, the "fleet" state
and status sections, the conditions above.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.context import AgentContext
from agent.controller import backoff_delay
from agent.errors import (
    ConfigError,
    EnrollmentDenied,
    EnrollmentPending,
    FleetError,
    FleetUnavailable,
    NoMachineId,
    PinMismatch,
)
from agent.fleet import hardware
from agent.fleet import identity as ident
from agent.fleet import retry_after as hint
from agent.fleet.addresses import local_addresses, split_listen
from agent.fleet.est_client import EstClient, check_pin, pinned_context
from agent.fleet.failover import PIN_MISMATCH, Replicas, short_name
from agent.fleet.registrar_client import MembershipAnswer, RegistrarClient
from agent.fleet.seed import forget_bootstrap_token
from agent.fleet.status_report import StatusReport
from agent.fleet.transport import AiohttpTransport, Transport
from agent.fsio import atomic_write
from agent.model.config import FleetSection
from agent.model.network import NetworkPlan
from agent.model.state import FleetState
from agent.model.status import FleetStatus
from agent.model.wire import HeartbeatRequest, HeartbeatStatus, JoinTokensReport, RegisterRequest

log = logging.getLogger("agent.fleet")

STATE_SECTION = "fleet"
RECONNECT_CAP = 30.0


def _replica_errors(section: FleetStatus) -> str:
    """`` (host:port: why, ...)`` for the other registrar replicas whose last call failed."""
    failed = [f"{short_name(u)}: {e}" for u, e in section.registrar_errors.items() if u != section.registrar]
    return f" ({', '.join(failed)})" if failed else ""


def fleet_summary(section: FleetStatus) -> str:
    """The one line agentctl status shows for the fleet: the registrar in use and why the others failed."""
    if not section.enrolled:
        waiting = section.waiting or section.last_error or "not enrolled yet"
        retry = section.next_attempt_in
        return f"not enrolled: {waiting}" + (f" (retry in {retry}s)" if retry else "")
    via = f" via {section.registrar}{_replica_errors(section)}" if section.registrar else ""
    line = f"enrolled{via}, cert until {(section.cert_not_after or '?')[:10]}"
    if section.cluster:
        init = ", initialising" if section.cluster_init else ""
        line += f"; cluster {section.cluster} ({section.distribution or '?'}) as {section.role}{init}"
    if section.last_error:
        line += f"; last error: {section.last_error}"
    return line


WAITING_POLL = 2.0


class EnrollmentController:
    name = "fleet"

    def __init__(
        self,
        ctx: AgentContext,
        transport: Transport | None = None,
        *,
        base_delay: float = 1.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.ctx = ctx
        self.transport: Transport = transport or AiohttpTransport()
        self.base_delay = base_delay
        self.request_timeout = request_timeout  # per registrar call; then the next replica is asked
        # (cert serial, inventory version, chosen node addresses): a change of any registers again
        self._registered_for: tuple[str, int, tuple[str, ...]] | None = None
        self._reported_tokens: tuple[str, str] | None = None
        self._sent_tokens: tuple[str, str] | None = None
        self._crl_number = -1
        self._section = FleetStatus()
        self._token_forgotten = False
        self._replicas = Replicas(())
        self._status = StatusReport()  # a heartbeat carries the status when it changed
        self._boot_id = hardware.boot_id(ctx.paths)  # with hardware: which box sends this (duplicates)

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._loop()
        finally:  # kept-alive registrar connections end with the controller (a restart opens new ones)
            if isinstance(self.transport, AiohttpTransport):
                await self.transport.close()

    async def _loop(self) -> None:
        attempt = 0
        restored = False
        while True:
            version = self.ctx.config.version
            cfg = self.ctx.config.value.fleet
            if not cfg.urls:
                self._cond("Enrolled", "False", "NotConfigured", "no fleet.url in the config or seed", info=True)
                await self.ctx.config.wait_newer(version)
                continue
            try:
                identity = ident.load_or_create(self.ctx.paths)
                if not restored:
                    self._restore(identity)
                    restored = True
                delay = await self._pass(cfg, identity)
                attempt = 0
            except EnrollmentPending as exc:
                attempt = 0
                delay = min(exc.retry_after, cfg.retry_max)
                self._cond("PendingApproval", "True", "AwaitingApproval", f"{exc}; asking again in {delay:.0f}s",
                           info=True)  # fmt: skip
                self._cond("Enrolled", "False", "PendingApproval", str(exc), info=True)
            except (FleetError, ConfigError) as exc:
                attempt += 1
                delay, why = self._retry_delay(exc, attempt, cfg)
                self._failed(exc, delay, attempt, why)
            await self._sleep(delay, version)

    async def _sleep(self, delay: float, config_version: int) -> None:
        """Sleep, but wake at once when the config (URL, pin, token) changes, or when this server has
        a join token to report (joiners are waiting for it)."""
        tokens = self.ctx.join_tokens
        waits = [
            asyncio.ensure_future(self.ctx.config.wait_newer(config_version)),
            asyncio.ensure_future(tokens.wait_newer(tokens.version)),
        ]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _retry_delay(self, exc: Exception, attempt: int, cfg: FleetSection) -> tuple[float, str]:
        """The wait before the next try, and what set it when the registrar did (Retry-After)."""
        asked = exc.retry_after if isinstance(exc, FleetUnavailable) else None
        if asked is not None:
            wait = hint.honoured(asked, floor=self.base_delay, cap=cfg.retry_max)
            return wait, f", as the registrar asked: {hint.describe(asked)}"
        # an enrolled box reconnects within a minute of the registrar coming back
        cap = min(cfg.retry_max, RECONNECT_CAP) if self._section.enrolled else cfg.retry_max
        return backoff_delay(attempt, self.base_delay, cap), ""

    def _failed(self, exc: Exception, delay: float, attempt: int, why: str = "") -> None:
        reason, info = {
            NoMachineId: ("NoMachineId", True),
            PinMismatch: ("PinMismatch", False),
            EnrollmentDenied: ("Denied", False),
            ConfigError: ("BadConfig", False),
        }.get(type(exc), ("RegistrarUnreachable", True))
        if type(exc) is FleetError:
            reason, info = "RegistrarError", False
        message = f"{exc} (attempt {attempt}, next in {delay:.1f}s{why})"
        log.warning("fleet: %s", message)
        if self.ctx.board.condition("Enrolled") is None or not self._section.enrolled:
            self._cond("Enrolled", "False", reason, message, info=info)
        else:
            self._cond("Enrolled", "True", reason, f"enrolled; registrar call failed: {message}", info=info)
        self._publish(last_error=message, next_attempt_in=round(delay, 1))

    # -- one pass ---------------------------------------------------------------------------
    async def _pass(self, cfg: FleetSection, identity: ident.Identity) -> float:
        if identity.replaced:
            self._cond("IdentityReset", "True", identity.reset_reason or "ClonedImage",
                       f"identity {identity.replaced} was made for another machine ({identity.reset_why}); "
                       f"made {identity.node_id}",
                       info=True)  # fmt: skip
        self._replicas.reconfigure(cfg.urls)
        pin = check_pin(cfg.ca_pin)
        ca, cert = self._current(identity, pin)
        if ca is None or cert is None or cert.not_valid_after_utc <= datetime.now(UTC):
            ca, cert = await self._enroll(cfg, pin, identity)
        elif datetime.now(UTC) >= ident.renew_at(cert):
            cert = await self._renew(pin, identity, ca)
        elif self._section.cert_serial != f"{cert.serial_number:x}":
            self._mark_enrolled(identity, cert)  # enrolled before this start
        mtls = self._mtls(identity, ca)
        inventory_version = self.ctx.inventory.version
        registration = (f"{cert.serial_number:x}", inventory_version, self._chosen_addresses())
        if self._registered_for != registration:
            reg = self._register_doc(identity)
            answer = await self._replicas.call(lambda url: self._client(url, mtls).register(reg))
            self._registered_for = registration
        else:
            beat = self._heartbeat_doc(identity.node_id)
            try:
                answer = await self._replicas.call(lambda url: self._client(url, mtls).heartbeat(beat))
            except BaseException:
                self._status.failed()
                raise
            self._status.answered(answer.status_kept)
        await self._refresh_crl(mtls, identity, answer.crl_number)
        self._mark_enrolled(identity, cert)  # in touch again after an outage
        self._apply(identity, answer)
        self._publish(last_contact=datetime.now(UTC).isoformat(timespec="seconds"), last_error="", next_attempt_in=None)
        self._check_replicas()
        until_renewal = (ident.renew_at(cert) - datetime.now(UTC)).total_seconds()
        # told to wait for an assignment (the first server has not reported its join token yet):
        # ask again soon, so a joining box starts within seconds of its server, not a heartbeat later
        interval = cfg.heartbeat_interval if self.ctx.assignment.value is not None else WAITING_POLL
        return max(0.1, min(cfg.heartbeat_interval, interval, until_renewal))

    def _est(self, url: str, pin: str) -> EstClient:
        return EstClient(url, pin, self.transport, self.request_timeout)

    def _client(self, url: str, mtls: ssl.SSLContext) -> RegistrarClient:
        return RegistrarClient(url, self.transport, mtls, self.request_timeout)

    def _check_replicas(self) -> None:
        """A replica that showed a foreign CA is never passed over in silence, even while another one answers."""
        foreign = [u for u, e in self._replicas.errors.items() if e == PIN_MISMATCH]
        if foreign:
            self._cond("ReplicasTrusted", "False", "PinMismatch",
                       f"{', '.join(foreign)}: the registrar's CA does not match fleet.ca_pin (talking to "
                       f"{self._replicas.url} instead); nothing secret was sent there")  # fmt: skip
        elif self.ctx.board.condition("ReplicasTrusted") is not None:
            self._cond("ReplicasTrusted", "True", "PinsMatch", "every registrar that answered has the pinned CA")

    def _current(self, identity: ident.Identity, pin: str) -> tuple[x509.Certificate | None, x509.Certificate | None]:
        ca = ident.load_cert(identity.files.ca)
        if ca is None or ident.pin_of(ca) != pin:
            return None, None  # a new pin (another fleet) means enrolling again
        cert = ident.load_cert(identity.files.cert)
        if cert is None or not ident.cert_matches_key(cert, identity.key):
            return ca, None
        return ca, cert

    async def _enroll(
        self, cfg: FleetSection, pin: str, identity: ident.Identity
    ) -> tuple[x509.Certificate, x509.Certificate]:
        previous = self.ctx.board.condition("Enrolled")
        if previous is None or previous.reason in ("NotConfigured", "NoMachineId"):
            # a retry keeps showing why the last attempt failed until this one has an outcome
            self._cond("Enrolled", "False", "Enrolling", f"enrolling with {self._replicas.url}", info=True)
        # checks the pin; nothing secret has been sent yet
        ca = await self._replicas.call(lambda url: self._est(url, pin).fetch_ca())
        token = cfg.bootstrap_token.get_secret_value()
        if not token:
            raise EnrollmentDenied(
                "no fleet.bootstrap_token in the config or seed; cannot enroll (a used token is removed from "
                "seed.toml after enrollment: enrolling again needs a new one, in /boot/edge-agent.toml, the "
                "edge-agent.seed credential or /etc/edge-agent/agent.toml.d/)"
            )
        csr = ident.make_csr(identity)
        # every replica shares the fleet CA (one CA key): the certificate checked above holds for all of them
        cert = await self._replicas.call(lambda url: self._est(url, pin).simpleenroll(ca, identity.node_id, token, csr))
        self._store_cert(identity, ca, cert)
        log.info("fleet: enrolled as %s (certificate serial %x)", identity.node_id, cert.serial_number)
        return ca, cert

    async def _renew(self, pin: str, identity: ident.Identity, ca: x509.Certificate) -> x509.Certificate:
        mtls, csr = self._mtls(identity, ca), ident.make_csr(identity)
        cert = await self._replicas.call(lambda url: self._est(url, pin).simplereenroll(mtls, ca, csr))
        self._store_cert(identity, ca, cert)
        log.info("fleet: certificate renewed (serial %x)", cert.serial_number)
        return cert

    def _approval(self, answer: MembershipAnswer) -> None:
        """A box certified while approval policies judge it is still pending: say so until approved."""
        pending = self.ctx.board.condition("PendingApproval")
        if answer.state == "pending":
            self._cond("PendingApproval", "True", "AwaitingApproval", answer.waiting or "the registrar awaits approval",
                       info=True)  # fmt: skip
        elif answer.state == "approved" and pending is not None and pending.status == "True":
            self._cond("PendingApproval", "False", "Approved", "the registrar approved the node", info=True)

    def _store_cert(self, identity: ident.Identity, ca: x509.Certificate, cert: x509.Certificate) -> None:
        atomic_write(identity.files.ca, ident.pem(ca), mode=0o644, dir_mode=0o700)
        atomic_write(identity.files.cert, ident.pem(cert), mode=0o644, dir_mode=0o700)
        self._cond("PendingApproval", "False", "Approved", "the registrar issued a certificate", info=True)
        self._mark_enrolled(identity, cert)

    def _mark_enrolled(self, identity: ident.Identity, cert: x509.Certificate) -> None:
        self._cond("Enrolled", "True", "Enrolled", f"node {identity.node_id}, certificate valid until "
                   f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
        self._publish(
            node_id=identity.node_id,
            enrolled=True,
            cert_serial=f"{cert.serial_number:x}",
            cert_not_after=cert.not_valid_after_utc.isoformat(),
            renew_at=ident.renew_at(cert).isoformat(),
        )
        if not self._token_forgotten:
            # the certificate is the box's credential now; the used bootstrap token leaves the disk
            try:
                if forget_bootstrap_token(self.ctx.paths):
                    log.info("fleet: enrolled; removed the bootstrap token from %s", self.ctx.paths.kept_seed)
                self._token_forgotten = True
            except OSError as exc:
                log.error("fleet: cannot remove the bootstrap token from %s: %s", self.ctx.paths.kept_seed, exc)

    def _mtls(self, identity: ident.Identity, ca: x509.Certificate) -> ssl.SSLContext:
        ctx = pinned_context(ca)
        ctx.load_cert_chain(identity.files.cert, identity.files.key)
        return ctx

    async def _refresh_crl(self, mtls: ssl.SSLContext, identity: ident.Identity, number: int) -> None:
        if number == self._crl_number and identity.files.crl.is_file():
            return
        der = await self._replicas.call(lambda url: self._client(url, mtls).crl())
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError as exc:
            raise FleetError("the registrar's CRL is not a DER CRL") from exc
        atomic_write(identity.files.crl, crl.public_bytes(Encoding.PEM), mode=0o644)
        self._crl_number = number

    # -- documents ----------------------------------------------------------------------------
    def _register_doc(self, identity: ident.Identity) -> RegisterRequest:
        cfg = self.ctx.config.value
        try:
            listen = split_listen(cfg.api.remote_listen)
        except ValueError:
            listen = None
        inventory = self.ctx.inventory.value
        return RegisterRequest(
            # the node address the planner chose comes first: the registrar hands joiners a server URL on it
            addresses=list(dict.fromkeys([*self._chosen_addresses(), *local_addresses(listen[0] if listen else "")])),
            api_port=listen[1] if listen else 0,
            inventory=inventory.model_dump(mode="json") if inventory is not None else {},
            dmi_serial=identity.dmi_serial,
            site=cfg.fleet.site,
            labels=dict(cfg.fleet.labels),
        )

    def _chosen_addresses(self) -> tuple[str, ...]:
        chosen = self.ctx.desired.value.network
        return chosen.internal if isinstance(chosen, NetworkPlan) else ()

    def _heartbeat_doc(self, node_id: str) -> HeartbeatRequest:
        board = self.ctx.board
        status = HeartbeatStatus(
            health="degraded" if board.degraded() else "healthy",
            conditions=board.conditions(),
            sections=board.sections(),
        )
        doc = HeartbeatRequest(
            boot_id=self._boot_id,
            hardware=hardware.read(self.ctx.paths).key,
            status=self._status.carry(node_id, status.model_dump(mode="json")),
        )
        tokens = self.ctx.join_tokens.value
        assignment = self.ctx.assignment.value
        if tokens is not None and assignment is not None and assignment.role == "server":
            pair = (tokens.server.get_secret_value(), tokens.agent.get_secret_value())
            if pair != self._reported_tokens:
                doc = HeartbeatRequest(
                    boot_id=doc.boot_id,
                    hardware=doc.hardware,
                    status=doc.status,
                    join_tokens=JoinTokensReport(server=pair[0], agent=pair[1]),
                )
                self._sent_tokens = pair
        return doc

    # -- results ------------------------------------------------------------------------------
    def _apply(self, identity: ident.Identity, answer: MembershipAnswer) -> None:
        if self._sent_tokens is not None:
            self._reported_tokens, self._sent_tokens = self._sent_tokens, None
        self._approval(answer)
        if answer.assignment is None:
            if self.ctx.assignment.value is None:
                self._cond("Assigned", "False", "Waiting", answer.waiting or "no assignment yet", info=True)
            self._publish(waiting=answer.waiting)
            return
        a = answer.assignment
        self.ctx.assignment.set(a)
        init = ", initialising it" if a.cluster_init else ""
        self._cond("Assigned", "True", "Assigned", f"cluster {a.cluster} ({a.distribution}) as {a.role}{init}")
        self._publish(waiting="", cluster=a.cluster, role=a.role, cluster_init=a.cluster_init,
                      server_url=a.server_url, distribution=a.distribution)  # fmt: skip
        self.ctx.store.save_section(STATE_SECTION, FleetState(node_id=identity.node_id, assignment=a))

    def _restore(self, identity: ident.Identity) -> None:
        """The last assignment survives restarts and offline registrars (never another machine's)."""
        saved = self.ctx.store.load_section(STATE_SECTION, FleetState)
        a = saved.assignment
        if saved.node_id != identity.node_id or a is None:
            return
        if self.ctx.assignment.value is None:
            self.ctx.assignment.set(a)
            self._cond("Assigned", "True", "Restored", f"cluster {a.cluster} as {a.role} (kept from before)")

    def _publish(self, **changes: Any) -> None:
        doc = {**self._section.model_dump(), **changes}
        if self._replicas.urls:
            doc.update(self._replicas.status())
        section = FleetStatus.model_validate(doc)
        self._section = section.model_copy(update={"summary": fleet_summary(section)})
        self.ctx.board.set_section(self._section)

    def _cond(self, type_: str, status: Any, reason: str, message: str, *, info: bool = False) -> None:
        self.ctx.board.set_condition(type_, status, reason, message, severity="info" if info else "error")
