"""Prometheus text exposition, without a client library: a few counters and one histogram."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from agent import __version__
from agent.status import StatusBoard

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

MetricsSource = Callable[[], Iterable[str]]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
        yield "# HELP edge_agent_api_requests_total API requests served."
        yield "# TYPE edge_agent_api_requests_total counter"
        for (method, route, code), n in sorted(self.counts.items()):
            yield f'edge_agent_api_requests_total{{method="{method}",route="{escape(route)}",code="{code}"}} {n}'
        yield "# HELP edge_agent_api_request_duration_seconds API request latency."
        yield "# TYPE edge_agent_api_request_duration_seconds histogram"
        for route, counts in sorted(self.buckets.items()):
            r = escape(route)
            acc = 0
            for le, n in zip(BUCKETS, counts, strict=False):
                acc += n
                yield f'edge_agent_api_request_duration_seconds_bucket{{route="{r}",le="{le}"}} {acc}'
            acc += counts[-1]
            yield f'edge_agent_api_request_duration_seconds_bucket{{route="{r}",le="+Inf"}} {acc}'
            yield f'edge_agent_api_request_duration_seconds_sum{{route="{r}"}} {self.sums[route]:.6f}'
            yield f'edge_agent_api_request_duration_seconds_count{{route="{r}"}} {acc}'


def core_lines(board: StatusBoard, restarts: dict[str, int], started_at: float) -> Iterator[str]:
    yield "# HELP edge_agent_build_info Agent build; always 1."
    yield "# TYPE edge_agent_build_info gauge"
    yield f'edge_agent_build_info{{version="{__version__}"}} 1'
    yield "# HELP edge_agent_start_time_seconds Unix time the agent started."
    yield "# TYPE edge_agent_start_time_seconds gauge"
    yield f"edge_agent_start_time_seconds {started_at:.3f}"
    yield "# HELP edge_agent_condition Condition status (1 for the current status value)."
    yield "# TYPE edge_agent_condition gauge"
    for c in board.conditions():
        for s in ("True", "False", "Unknown"):
            yield f'edge_agent_condition{{type="{escape(c.type)}",status="{s}"}} {int(c.status == s)}'
    yield "# HELP edge_agent_controller_restarts_total Times the supervisor restarted a controller."
    yield "# TYPE edge_agent_controller_restarts_total counter"
    for name, n in sorted(restarts.items()):
        yield f'edge_agent_controller_restarts_total{{controller="{escape(name)}"}} {n}'


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
        yield "# HELP edge_agent_remote_connections_active Remote API connections open now (handshaking or served)."
        yield "# TYPE edge_agent_remote_connections_active gauge"
        yield f"edge_agent_remote_connections_active {self.active}"
        yield "# HELP edge_agent_remote_connections_limit Most remote API connections kept open at once."
        yield "# TYPE edge_agent_remote_connections_limit gauge"
        yield f"edge_agent_remote_connections_limit {self.limit}"
        yield "# HELP edge_agent_remote_connections_accepted_total Remote API connections taken on."
        yield "# TYPE edge_agent_remote_connections_accepted_total counter"
        yield f"edge_agent_remote_connections_accepted_total {self.accepted}"
        yield "# HELP edge_agent_remote_connections_dropped_total Remote connections the agent closed, by reason."
        yield "# TYPE edge_agent_remote_connections_dropped_total counter"
        for reason, n in (
            ("over_limit", self.over_limit),
            ("handshake_timeout", self.handshake_timeouts),
            ("handshake_failed", self.handshake_failures),
        ):
            yield f'edge_agent_remote_connections_dropped_total{{reason="{reason}"}} {n}'
        yield "# HELP edge_agent_remote_accept_errors_total Failed accepts on the remote port (EMFILE ...)."
        yield "# TYPE edge_agent_remote_accept_errors_total counter"
        yield f"edge_agent_remote_accept_errors_total {self.accept_errors}"
