"""Each way in that must stay shut: tokens, weak keys, pins, guessing, missing or wrong certificates."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from agent.fleet.transport import AiohttpTransport, HttpResponse
from agent.registrar.ca import CertificateAuthority

from .harness import FAST, box_config, client_cert, cond, make_box, new_registrar, wait_for


def csr_der(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cn: str = "box", claims: bool = False) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [
                *([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "fleet:admin")] if claims else []),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
    )
    if claims:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("registrar.example")]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


async def enroll(
    handle,
    node_id: str,
    token: str,
    der: bytes,
    *,
    path: str = "simpleenroll",
    cert: tuple[Path, Path] | None = None,
    local_addr: str | None = None,
) -> tuple[int, Mapping[str, str], bytes]:
    ctx = ssl.create_default_context(cafile=str(handle.state_dir / "ca.pem"))
    if cert:
        ctx.load_cert_chain(*cert)
    headers = {"Content-Type": "application/pkcs10"}
    if token:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{node_id}:{token}".encode()).decode()
    connector = aiohttp.TCPConnector(ssl=ctx, local_addr=(local_addr, 0) if local_addr else None)
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(f"{handle.url}/.well-known/est/{path}", data=base64.encodebytes(der), headers=headers) as r,
    ):
        return r.status, dict(r.headers), await r.read()


async def test_wrong_token_is_refused(registrar):
    good = registrar.token()
    wrong = good.split(".")[0] + "." + "x" * 43
    status, headers, _ = await enroll(registrar, "box-1", wrong, csr_der(p256()))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert (await enroll(registrar, "box-1", "not-a-token", csr_der(p256())))[0] == 401
    assert registrar.reg.registry.list_nodes() == []


async def test_one_time_token_cannot_be_reused(registrar):
    token = registrar.token(uses=1)
    assert (await enroll(registrar, "box-1", token, csr_der(p256())))[0] == 200
    assert (await enroll(registrar, "box-2", token, csr_der(p256())))[0] == 401
    # nor can a second key claim the first box's id with it
    assert (await enroll(registrar, "box-1", token, csr_der(p256())))[0] == 401
    assert [n.node_id for n in registrar.reg.registry.list_nodes()] == ["box-1"]


async def test_lost_answer_can_be_fetched_again_with_the_same_key(registrar):
    token, key = registrar.token(uses=1), p256()
    assert (await enroll(registrar, "box-1", token, csr_der(key)))[0] == 200
    assert (await enroll(registrar, "box-1", token, csr_der(key)))[0] == 200


async def test_token_past_its_ttl_is_refused(registrar):
    token = registrar.token(ttl=-1)
    status, _, body = await enroll(registrar, "box-1", token, csr_der(p256()))
    assert status == 401 and b"expired" in body


async def test_weak_keys_are_refused_and_do_not_use_up_the_token(registrar):
    token = registrar.token(uses=1)
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    status, _, body = await enroll(registrar, "box-1", token, csr_der(weak_rsa))
    assert status == 400 and b"1024" in body
    k1 = ec.generate_private_key(ec.SECP256K1())
    status, _, body = await enroll(registrar, "box-1", token, csr_der(k1))
    assert status == 400 and b"secp256k1" in body
    assert (await enroll(registrar, "box-1", token, csr_der(p256())))[0] == 200


async def test_registrar_sets_subject_and_sans_whatever_the_csr_claims(registrar):
    status, _, body = await enroll(registrar, "box-1", registrar.token(), csr_der(p256(), "root", claims=True))
    assert status == 200
    from cryptography.hazmat.primitives.serialization import pkcs7

    (cert,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    assert cert.subject.rfc4514_string() == "CN=box-1,OU=fleet:node"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["box-1"]


async def test_guessing_is_rate_limited_per_source(registrar):
    token = registrar.token(uses=2)
    wrong = token.split(".")[0] + "." + "y" * 43
    statuses = [(await enroll(registrar, "box-1", wrong, csr_der(p256())))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    status, headers, _ = await enroll(registrar, "box-1", token, csr_der(p256()))
    assert status == 429 and int(headers["Retry-After"]) > 0  # even the right token waits now
    # another source is not affected
    assert (await enroll(registrar, "box-2", token, csr_der(p256()), local_addr="127.0.0.2"))[0] == 200


async def test_mtls_endpoints_need_a_live_node_certificate(registrar, tmp_path):
    der = csr_der(p256())
    assert (await enroll(registrar, "", "", der, path="simplereenroll"))[0] == 401
    reader = client_cert(registrar, tmp_path / "r", "fleet:reader")
    assert (await enroll(registrar, "", "", der, path="simplereenroll", cert=(reader.cert, reader.key)))[0] == 403
    for with_cert, expected in ((False, 401), (True, 403)):
        ctx = ssl.create_default_context(cafile=str(reader.ca))
        if with_cert:
            ctx.load_cert_chain(reader.cert, reader.key)
        async with aiohttp.ClientSession() as s, s.post(f"{registrar.url}/v1/fleet/register", json={}, ssl=ctx) as r:
            assert r.status == expected


async def test_foreign_and_expired_certificates_fail_the_handshake(registrar, tmp_path):
    der = csr_der(p256())
    foreign = client_cert(registrar, tmp_path / "f", "fleet:node", ca=CertificateAuthority.create("other"))
    expired = client_cert(registrar, tmp_path / "x", "fleet:node", expired=True)
    for cc in (foreign, expired):
        try:
            status = (await enroll(registrar, "", "", der, path="simplereenroll", cert=(cc.cert, cc.key)))[0]
        except (aiohttp.ClientError, ssl.SSLError, ConnectionError):
            status = 0
        assert status == 0


class Recording:
    """A transport that records what would leave the box."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    async def request(self, method, url, *, ssl_context, headers=None, body=None, timeout=30.0) -> HttpResponse:
        self.sent.append((method, url, dict(headers or {})))
        return await self.inner.request(method, url, ssl_context=ssl_context, headers=headers, body=body,
                                        timeout=timeout)  # fmt: skip


async def test_agent_refuses_to_send_its_token_to_a_ca_that_does_not_match_the_pin(registrar, run_controller, tmp_path):
    wrong_pin = CertificateAuthority.create("impostor").pin
    ctx = make_box(tmp_path / "b", box_config(registrar.url, wrong_pin, registrar.token()), "9" * 32)
    transport = Recording()
    run_controller(ctx, transport=transport)
    await wait_for(lambda: cond(ctx, "Enrolled") == ("False", "PinMismatch"), what="pin mismatch")
    await wait_for(lambda: len(transport.sent) >= 2, what="a retry")
    assert all(url.endswith("/.well-known/est/cacerts") for _, url, _ in transport.sent)
    assert all("Authorization" not in h for _, _, h in transport.sent)
    assert ctx.board.condition("Enrolled").severity == "error"
    assert registrar.reg.registry.list_nodes() == []


async def test_revoked_box_is_cut_off_and_backs_off(registrar, run_controller, tmp_path):
    ctx = make_box(tmp_path / "b", box_config(registrar.url, registrar.pin, registrar.token()), "6" * 32)
    run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None)
    node_id = registrar.reg.registry.list_nodes()[0].node_id
    registrar.reg.registry.revoke_node(node_id)
    await wait_for(lambda: (ctx.board.condition("Enrolled") or None) and "refused (403)"
                   in ctx.board.condition("Enrolled").message, what="revocation noticed")  # fmt: skip
    assert ctx.board.sections()["fleet"]["next_attempt_in"] <= 0.5 * 1.2


async def test_serving_certificate_covers_the_listen_address_and_sans(tmp_path):
    handle = new_registrar(tmp_path / "reg", replace(FAST))
    await handle.start()
    try:
        cert = x509.load_pem_x509_certificate((handle.state_dir / "server.pem").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        ctx = ssl.create_default_context(cafile=str(handle.state_dir / "ca.pem"))  # no -k
        async with aiohttp.ClientSession() as s, s.get(f"https://localhost:{handle.port}/.well-known/est/cacerts",
                                                        ssl=ctx) as r:  # fmt: skip
            assert r.status == 200
    finally:
        await handle.stop()
