"""The core /metrics families: build, conditions, controller restarts, API requests, remote connections.

Written through :mod:`agent.api.exposition`, the one Prometheus writer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from agent import __version__
from agent.api.exposition import counter, format_value, gauge, histogram
from agent.status import StatusBoard

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

MetricsSource = Callable[[], Iterable[str]]


class RequestMetrics:
    """API request counts by (method, route, code) and a latency histogram by route."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        self.counts[(method, route, code)] += 1
        b = self.buckets.get(route)
        if b is None:
            b = self.buckets[route] = [0] * (len(BUCKETS) + 1)
        for i, le in enumerate(BUCKETS):
            if seconds <= le:
                b[i] += 1
                break
        else:
            b[-1] += 1
        self.sums[route] += seconds

    def lines(self) -> Iterator[str]:
        requests = counter("edge_agent_api_requests_total", "API requests served.")
        for (method, route, code), n in sorted(self.counts.items()):
            requests.add(n, {"method": method, "route": route, "code": code})
        yield from requests.lines()
        latency = histogram("edge_agent_api_request_duration_seconds", "API request latency.")
        for route, counts in sorted(self.buckets.items()):
            acc = 0
            for le, n in zip(BUCKETS, counts, strict=False):
                acc += n
                latency.add(acc, {"route": route, "le": format_value(le)}, "_bucket")
            acc += counts[-1]
            latency.add(acc, {"route": route, "le": "+Inf"}, "_bucket")
            latency.add(self.sums[route], {"route": route}, "_sum")
            latency.add(acc, {"route": route}, "_count")
        yield from latency.lines()


def core_lines(board: StatusBoard, restarts: dict[str, int], started_at: float) -> Iterator[str]:
    yield from gauge("edge_agent_build_info", "Agent build; always 1.").add(1, {"version": __version__}).lines()
    yield from gauge("edge_agent_start_time_seconds", "Unix time the agent started.").add(started_at).lines()
    conditions = gauge("edge_agent_condition", "Condition status (1 for the current status value).")
    for c in board.conditions():
        for s in ("True", "False", "Unknown"):
            conditions.add(int(c.status == s), {"type": c.type, "status": s})
    yield from conditions.lines()
    restarted = counter("edge_agent_controller_restarts_total", "Times the supervisor restarted a controller.")
    for name, n in sorted(restarts.items()):
        restarted.add(n, {"controller": name})
    yield from restarted.lines()


@dataclass
class ConnectionCounters:
    """What the remote (mTLS) listener did with the TCP connections it accepted."""

    limit: int = 0
    active: int = 0
    accepted: int = 0
    over_limit: int = 0
    handshake_timeouts: int = 0
    handshake_failures: int = 0
    accept_errors: int = 0

    def lines(self) -> Iterator[str]:
        for family in (
            gauge(
                "edge_agent_remote_connections_active", "Remote API connections open now (handshaking or served)."
            ).add(self.active),
            gauge("edge_agent_remote_connections_limit", "Most remote API connections kept open at once.").add(
                self.limit
            ),
            counter("edge_agent_remote_connections_accepted_total", "Remote API connections taken on.").add(
                self.accepted
            ),
            counter("edge_agent_remote_connections_dropped_total", "Remote connections the agent closed, by reason.")
            .add(self.over_limit, {"reason": "over_limit"})
            .add(self.handshake_timeouts, {"reason": "handshake_timeout"})
            .add(self.handshake_failures, {"reason": "handshake_failed"}),
            counter("edge_agent_remote_accept_errors_total", "Failed accepts on the remote port (EMFILE ...).").add(
                self.accept_errors
            ),
        ):
            yield from family.lines()
