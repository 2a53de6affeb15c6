"""Doctor checks for the fleet side: seed, registrar reachability step by step, CA pin, clock, certificate.

Everything here runs without the agent daemon and without the fleet being
healthy: each step says which one failed (DNS, TCP, TLS, HTTP) so a technician
knows whether to look at the cable, the firewall or the registrar.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import tomllib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography import x509

from agent.cli.doctor.findings import Finding
from agent.config import credential_seed
from agent.errors import FleetError
from agent.fleet.est_client import EST, parse_certs_only
from agent.fleet.identity import IdentityFiles, pin_of
from agent.model.config import FleetSection
from agent.paths import Paths
from agent.urls import redact_url

SKEW_WARN, SKEW_FAIL = 30.0, 300.0
EXPIRY_WARN_DAYS = 7.0


def check_seed(paths: Paths, fleet: FleetSection | None) -> list[Finding]:
    """Is there a seed (file or credential), is it TOML, does it name a registrar and a pin?"""
    out: list[Finding] = []
    found = [p for p in (paths.boot_seed, credential_seed(paths), paths.kept_seed) if p.is_file()]
    for path in found:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            out.append(Finding("seed.parse", "fail", f"seed {path} is not readable TOML: {exc}",
                               "write the seed again from the fleet's provisioning tool", str(path)))  # fmt: skip
            continue
        fleet_table = doc.get("fleet")
        table: dict[str, object] = fleet_table if isinstance(fleet_table, dict) else {}
        missing = [k for k in ("url", "ca_pin") if not table.get(k)]
        if missing:
            out.append(Finding("seed.parse", "warn", f"seed {path} has no [fleet] {' or '.join(missing)}",
                               "the seed needs fleet.url and fleet.ca_pin", str(path)))  # fmt: skip
        else:
            given = table["url"]
            url = ", ".join(redact_url(str(u)) for u in (given if isinstance(given, list) else [given]))
            out.append(Finding("seed.parse", "ok", f"seed {path} parses (registrar {url})", path=str(path)))
    if paths.boot_seed in found and paths.kept_seed.is_file():
        out.append(Finding("seed.boot_token", "warn",
                           f"{paths.boot_seed} is still on the boot partition although the agent kept a copy",
                           "start edge-agent once (it moves the seed) or delete the file",
                           str(paths.boot_seed)))  # fmt: skip
    if not found:
        if fleet is not None and fleet.url:
            out.append(Finding("seed.present", "ok", "no seed file; the fleet is set in the agent's config"))
        else:
            out.append(Finding("seed.present", "warn",
                               f"no seed: neither {paths.boot_seed} nor the credential {credential_seed(paths)}",
                               "put the seed from the fleet on the boot partition as edge-agent.toml",
                               str(paths.boot_seed)))  # fmt: skip
    return out


def _hostport(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    return u.hostname or "", u.port or 443


def check_registrar(fleet: FleetSection, paths: Paths, timeout: float) -> list[Finding]:
    """DNS, then TCP, then TLS, then GET cacerts; the CA pin and the clock from that answer."""
    host, port = _hostport(fleet.urls[0])
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return [Finding("registrar.dns", "fail", f"cannot resolve {host}: {exc.strerror}",
                        "check /etc/resolv.conf and the uplink, or use the registrar's IP in fleet.url")]  # fmt: skip
    out = [Finding("registrar.dns", "ok", f"{host} resolves to {infos[0][4][0]}")]
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        out.append(Finding("registrar.tcp", "fail", f"no answer from {where} within {timeout:g}s",
                           "a firewall drops the traffic or the uplink is down"))  # fmt: skip
        return out
    except OSError as exc:
        out.append(Finding("registrar.tcp", "fail", f"TCP to {where} failed: {exc.strerror or exc}",
                           "is edge-registrar running and listening on that port?"))  # fmt: skip
        return out
    out.append(Finding("registrar.tcp", "ok", f"TCP to {where} connects"))
    blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    blind.check_hostname = False
    blind.verify_mode = ssl.CERT_NONE  # the pin below is what authenticates the registrar
    try:
        tls = blind.wrap_socket(raw, server_hostname=host)
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        out.append(Finding("registrar.tls", "fail", f"TLS handshake with {where} failed: {exc}",
                           "something other than edge-registrar answers on that port (a proxy?)"))  # fmt: skip
        return out
    out.append(Finding("registrar.tls", "ok", f"TLS with {where} ({tls.version()})"))
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=blind)
    conn.sock = tls
    try:
        conn.request("GET", f"{EST}/cacerts", headers={"Connection": "close"})
        resp = conn.getresponse()
        body, date, status = resp.read(), resp.getheader("Date"), resp.status
    except (OSError, http.client.HTTPException) as exc:
        out.append(Finding("registrar.http", "fail", f"GET {EST}/cacerts on {where} failed: {exc}",
                           "the registrar is up but does not answer EST"))  # fmt: skip
        return out
    finally:
        conn.close()
    if status != 200:
        out.append(Finding("registrar.http", "fail", f"GET {EST}/cacerts answered {status}",
                           "the registrar is up but refuses EST"))  # fmt: skip
        return out
    out.append(Finding("registrar.http", "ok", f"{EST}/cacerts answers"))
    out.append(_pin_finding(fleet.ca_pin, body, paths))
    out.append(_clock_finding(date))
    return out


def _pin_finding(pin: str, body: bytes, paths: Paths) -> Finding:
    try:
        certs = parse_certs_only(body)
    except FleetError as exc:
        return Finding("fleet.ca_pin", "fail", str(exc), "the registrar's EST endpoint is broken")
    offered = [pin_of(c) for c in certs]
    if not pin:
        return Finding("fleet.ca_pin", "warn", f"no fleet.ca_pin configured; the registrar offers {offered[0]}",
                       "copy the pin that `edge-registrar init` printed into the seed")  # fmt: skip
    if pin.lower() not in offered:
        return Finding("fleet.ca_pin", "fail",
                       f"the registrar's CA is {', '.join(offered) or 'missing'} but the seed pins {pin}",
                       "the seed is for another fleet, or the registrar's CA was replaced: get a new seed")  # fmt: skip
    kept = IdentityFiles(paths.identity_dir).ca
    if kept.is_file():
        try:
            kept_pin = pin_of(x509.load_pem_x509_certificate(kept.read_bytes()))
        except ValueError:
            return Finding("fleet.ca_pin", "fail", f"{kept} is not a PEM certificate",
                           "remove it; the agent fetches the CA again", str(kept))  # fmt: skip
        if kept_pin != pin.lower():
            return Finding("fleet.ca_pin", "fail", f"{kept} is {kept_pin}, not the pinned {pin}",
                           "the box enrolled with another fleet: re-seed and re-enroll", str(kept))  # fmt: skip
    return Finding("fleet.ca_pin", "ok", f"the registrar's CA matches the pin {pin[:23]}...")


def _clock_finding(date: str | None) -> Finding:
    if not date:
        return Finding("clock.skew", "skip", "the registrar sent no Date header")
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Finding("clock.skew", "skip", f"the registrar's Date header is unreadable: {date[:40]}")
    skew = time.time() - theirs
    text = f"this box's clock is {abs(skew):.0f}s {'ahead of' if skew > 0 else 'behind'} the registrar"
    fix = "enable NTP (timedatectl set-ntp true) or set the clock; certificates fail on a wrong clock"
    if abs(skew) >= SKEW_FAIL:
        return Finding("clock.skew", "fail", text, fix)
    if abs(skew) >= SKEW_WARN:
        return Finding("clock.skew", "warn", text, fix)
    return Finding("clock.skew", "ok", text)


def check_certificate(paths: Paths, in_fleet: bool = True, now: datetime | None = None) -> list[Finding]:
    """The node certificate: present, valid now, not near its end, not revoked, key kept private."""
    files = IdentityFiles(paths.identity_dir)
    now = now or datetime.now(UTC)
    out: list[Finding] = []
    if files.key.is_file():
        mode = files.key.stat().st_mode & 0o777
        if mode & 0o077:
            out.append(Finding("identity.key_mode", "fail", f"{files.key} has mode {mode:04o}; others can read it",
                               f"chmod 0600 {files.key}", str(files.key)))  # fmt: skip
        else:
            out.append(Finding("identity.key_mode", "ok", f"{files.key} is {mode:04o}", path=str(files.key)))
    if not files.cert.is_file() and not in_fleet:
        out.append(Finding("identity.cert", "skip", "no node certificate: the box is not in a fleet"))
        return out
    if not files.cert.is_file():
        out.append(Finding("identity.cert", "warn", f"no node certificate at {files.cert}: not enrolled yet",
                           "check the registrar findings; a pending node needs approval on the registrar",
                           str(files.cert)))  # fmt: skip
        return out
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except ValueError:
        out.append(Finding("identity.cert", "fail", f"{files.cert} is not a PEM certificate",
                           "remove it; the agent enrolls again", str(files.cert)))  # fmt: skip
        return out
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    left = (end - now).total_seconds()
    serial = f"serial {cert.serial_number:x}"
    if now < start:
        out.append(Finding("identity.cert", "fail",
                           f"{files.cert} ({serial}) is valid only from {start:%Y-%m-%d %H:%M}Z",
                           "the clock is behind: fix the time (see clock.skew)", str(files.cert)))  # fmt: skip
    elif left <= 0:
        out.append(Finding("identity.cert", "fail", f"{files.cert} ({serial}) expired {end:%Y-%m-%d %H:%M}Z",
                           "the agent re-enrolls once the registrar is reachable; otherwise get a new seed",
                           str(files.cert)))  # fmt: skip
    elif left < EXPIRY_WARN_DAYS * 86400 and left < (end - start).total_seconds() / 3:
        out.append(Finding("identity.cert", "warn",
                           f"{files.cert} ({serial}) expires {end:%Y-%m-%d %H:%M}Z, in {left / 3600:.1f}h",
                           "renewal needs the registrar: check the registrar findings", str(files.cert)))  # fmt: skip
    else:
        out.append(Finding("identity.cert", "ok", f"{files.cert} ({serial}) valid until {end:%Y-%m-%d}",
                           path=str(files.cert)))  # fmt: skip
    out.extend(_revocation(files, cert))
    return out


def _revocation(files: IdentityFiles, cert: x509.Certificate) -> list[Finding]:
    if not files.crl.is_file():
        return []
    try:
        crl = x509.load_pem_x509_crl(files.crl.read_bytes())
    except ValueError:
        return [Finding("identity.revoked", "warn", f"{files.crl} is not a PEM CRL",
                        "remove it; the agent fetches it again", str(files.crl))]  # fmt: skip
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return [Finding("identity.revoked", "fail", f"the fleet revoked this node's certificate (serial "
                        f"{cert.serial_number:x})", "ask the fleet operator to approve the node again",
                        str(files.cert))]  # fmt: skip
    return [Finding("identity.revoked", "ok", "the certificate is not on the fleet's revocation list",
                    path=str(files.crl))]  # fmt: skip
