"""Membership calls over mTLS: register, heartbeat, CRL (see agent.registrar.membership for the wire).

A 503 with Retry-After (the registrar's database is unreachable: every replica shares it) is
honoured: the call waits that long (at most RETRY_AFTER_CAP) before it fails, so the box's next
try comes no sooner than the registrar asked, whatever backoff follows."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.errors import FleetError
from agent.fleet.est_client import raise_for, retry_after
from agent.fleet.transport import HttpResponse, Transport
from agent.model.fleet import Assignment

RETRY_AFTER_CAP = 60.0


@dataclass(frozen=True)
class MembershipAnswer:
    cluster: str
    assignment: Assignment | None
    waiting: str
    crl_number: int
    state: str = ""  # "approved" or "pending" (certified while approval policies judge it); "" from older registrars


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

    async def _post(self, path: str, doc: dict[str, Any]) -> MembershipAnswer:
        resp = await self.transport.request(
            "POST",
            f"{self.base}{path}",
            ssl_context=self.mtls,
            headers={"Content-Type": "application/json"},
            body=json.dumps(doc).encode(),
            timeout=self.timeout,
        )
        await self._check(resp, path)
        try:
            answer = json.loads(resp.body)
            raw = answer.get("assignment")
            return MembershipAnswer(
                cluster=str(answer.get("cluster", "")),
                assignment=Assignment.model_validate(raw) if raw else None,
                waiting=str(answer.get("waiting", "")),
                crl_number=int(answer.get("crl_number", 0)),
                state=str(answer.get("state", "")),
            )
        except (ValueError, AttributeError, ValidationError) as exc:
            raise FleetError(f"{path}: the registrar's answer is not a membership document") from exc

    async def register(self, doc: dict[str, Any]) -> MembershipAnswer:
        return await self._post("/v1/fleet/register", doc)

    async def heartbeat(self, doc: dict[str, Any]) -> MembershipAnswer:
        return await self._post("/v1/fleet/heartbeat", doc)

    async def crl(self) -> bytes:
        """The fleet CRL, DER."""
        resp = await self.transport.request(
            "GET", f"{self.base}/v1/fleet/crl", ssl_context=self.mtls, timeout=self.timeout
        )
        await self._check(resp, "crl")
        return resp.body
