"""Membership calls over mTLS: register, heartbeat, CRL (the wire models: agent.model.wire).

A 503 with Retry-After (the registrar's database is unreachable: every replica shares it) is
honoured: the call waits that long (at most RETRY_AFTER_CAP) before it fails, so the box's next
try comes no sooner than the registrar asked, whatever backoff follows."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ValidationError

from agent.errors import FleetError
from agent.fleet.est_client import raise_for, retry_after
from agent.fleet.transport import HttpResponse, Transport
from agent.model.wire import HeartbeatRequest, MembershipAnswer, RegisterRequest

__all__ = ["MembershipAnswer", "RegistrarClient"]

RETRY_AFTER_CAP = 60.0


class RegistrarClient:
    def __init__(
        self,
        base_url: str,
        transport: Transport,
        mtls: ssl.SSLContext,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.transport = transport
        self.mtls = mtls
        self.timeout = timeout
        self.sleep = sleep

    async def _check(self, resp: HttpResponse, what: str) -> None:
        if resp.status == 503 and any(k.lower() == "retry-after" for k in resp.headers):
            await self.sleep(min(retry_after(resp), RETRY_AFTER_CAP))
        raise_for(resp, what)

    async def _post(self, path: str, doc: BaseModel) -> MembershipAnswer:
        resp = await self.transport.request(
            "POST",
            f"{self.base}{path}",
            ssl_context=self.mtls,
            headers={"Content-Type": "application/json"},
            # json.dumps of the fields set: the bytes the previous release sent (no "join_tokens": null)
            body=json.dumps(doc.model_dump(mode="json", exclude_unset=True)).encode(),
            timeout=self.timeout,
        )
        await self._check(resp, path)
        try:
            return MembershipAnswer.model_validate_json(resp.body)
        except ValidationError as exc:
            raise FleetError(f"{path}: the registrar's answer is not a membership document") from exc

    async def register(self, doc: RegisterRequest) -> MembershipAnswer:
        return await self._post("/v1/fleet/register", doc)

    async def heartbeat(self, doc: HeartbeatRequest) -> MembershipAnswer:
        return await self._post("/v1/fleet/heartbeat", doc)

    async def crl(self) -> bytes:
        """The fleet CRL, DER."""
        resp = await self.transport.request(
            "GET", f"{self.base}/v1/fleet/crl", ssl_context=self.mtls, timeout=self.timeout
        )
        await self._check(resp, "crl")
        return resp.body
