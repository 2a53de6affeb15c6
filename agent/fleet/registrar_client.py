"""Membership calls over mTLS: register, heartbeat, CRL (the wire models: agent.model.wire).

A 503 with Retry-After (the registrar's database is unreachable: every replica shares it) fails
at once with the asked seconds on the error (``RegistrarDown.retry_after``); the enrollment
controller waits them (agent.fleet.retry_after) before its next try, in its one place that waits."""

from __future__ import annotations

import json
import ssl

from pydantic import BaseModel, ValidationError

from agent.errors import FleetError
from agent.fleet.est_client import raise_for
from agent.fleet.transport import Transport
from agent.model.wire import HeartbeatRequest, MembershipAnswer, RegisterRequest

__all__ = ["MembershipAnswer", "RegistrarClient"]


class RegistrarClient:
    def __init__(
        self,
        base_url: str,
        transport: Transport,
        mtls: ssl.SSLContext,
        timeout: float = 30.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.transport = transport
        self.mtls = mtls
        self.timeout = timeout

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
        raise_for(resp, path)
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
        raise_for(resp, "crl")
        return resp.body
