"""agentctl: talk to the local edge-agent over its unix socket.

Standard library only on the hot path: a technician on a slow box types this.
"""

from __future__ import annotations

import os
import sys
import time

from agent.cli.args import DEFAULT_SOCKET, Args, parse
from agent.cli.transport import Reply, request
from agent.errors import Unreachable

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below

if TYPE_CHECKING:
    pass

EXIT_OK, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 2


def socket_path(ns: Args) -> str:
    if ns.socket:
        return str(ns.socket)
    if ns.root:
        return os.path.join(ns.root, DEFAULT_SOCKET.lstrip("/"))
    return DEFAULT_SOCKET


def use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def emit_json(reply: Reply) -> None:
    """The document exactly as the agent sent it (compact, keys sorted): the schema tooling parses.
    Re-encoding it would mean importing the json package (~8 ms); pipe it to jq to read it."""
    sys.stdout.flush()
    sys.stdout.buffer.write(reply.raw + b"\n")
    sys.stdout.buffer.flush()


def cmd_status(sock: str, ns: Args) -> int:
    if ns.watch:
        from agent.cli.console import watch

        return watch(sock, ns.root, None, ns.interval, ns.request_timeout, once=False)
    deadline = time.monotonic() + ns.timeout
    while True:
        try:
            reply = request(sock, "GET", "/v1/status", ns.request_timeout)
            ready = reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("health") == "healthy"
            if not ns.wait or ready or time.monotonic() >= deadline:
                break
        except Unreachable:
            if not ns.wait or time.monotonic() >= deadline:
                raise
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    doc = reply.body
    if reply.status != 200 or not isinstance(doc, dict):
        raise Unreachable(f"the agent answered {reply.status} to /v1/status")
    if ns.output == "json":
        emit_json(reply)
    else:
        from agent.cli.status_view import render_status

        sys.stdout.write(render_status(doc, use_color()))
    return EXIT_OK if doc.get("health") == "healthy" else EXIT_DEGRADED


def cmd_inventory(sock: str, ns: Args) -> int:
    if ns.local:
        return cmd_inventory_local(ns)
    reply = request(sock, "GET", "/v1/inventory", ns.request_timeout)
    if reply.status != 200:
        return problem_exit(reply)
    if ns.output == "json":
        emit_json(reply)
    else:
        from agent.cli.inventory_view import render_inventory

        sys.stdout.write(render_inventory(reply.body, color=use_color()))
    return EXIT_OK


def cmd_inventory_local(ns: Args) -> int:
    """Scan the box in this process: the document the agent would serve, without the agent."""
    from agent.inventory.blockingexec import BlockingRunner, tool_path
    from agent.inventory.collect import Collector
    from agent.inventory.document import encode
    from agent.inventory.oneshot import scan_document

    try:
        collector = Collector(ns.root or "/")
    except (ImportError, OSError) as exc:  # pyudev finds no libudev
        print(f"agentctl: cannot scan this box: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    doc = scan_document(collector, BlockingRunner(tool_path()), nvidia_timeout=ns.nvidia_smi_timeout)
    if ns.output == "json":
        sys.stdout.buffer.write(encode(doc) + b"\n")
        sys.stdout.buffer.flush()
    else:
        from agent.cli.inventory_view import render_inventory

        sys.stdout.write(render_inventory(doc, color=use_color()))
    return EXIT_OK


def cmd_upgrade(sock: str, ns: Args) -> int:
    from agent.cli.upgrade_view import render_upgrade

    tty = sys.stdout.isatty()
    if ns.source == "cancel":
        if not ns.id:
            print("agentctl: upgrade cancel needs the upgrade id (see agentctl upgrade status)", file=sys.stderr)
            return EXIT_DEGRADED
        reply = request(sock, "DELETE", f"/v1/upgrades/{ns.id}", ns.request_timeout)
        if reply.status not in (200, 202):
            return problem_exit(reply)
        emit_json(reply) if ns.output == "json" else sys.stdout.write(render_upgrade(reply.body, tty=tty))
        return EXIT_OK
    if ns.source == "status":
        reply = request(sock, "GET", f"/v1/upgrades/{ns.id}" if ns.id else "/v1/upgrades", ns.request_timeout)
        if reply.status != 200:
            return problem_exit(reply)
        emit_json(reply) if ns.output == "json" else sys.stdout.write(render_upgrade(reply.body, tty=tty))
        return EXIT_OK
    source = ns.source
    if "://" not in source:
        source = os.path.abspath(source)
    reply = request(sock, "POST", "/v1/upgrades", ns.request_timeout, {"source": source, "force": ns.force})
    if reply.status not in (200, 201, 202):
        return problem_exit(reply)
    doc, final = reply.body, reply
    deadline = time.monotonic() + ns.timeout
    shown = ""
    while ns.wait and isinstance(doc, dict) and doc.get("state") not in ("committed", "rolled-back", "failed"):
        if time.monotonic() >= deadline:
            print(f"agentctl: upgrade {doc.get('id')} still {doc.get('state')} after {ns.timeout:g}s", file=sys.stderr)
            return EXIT_DEGRADED
        if tty:
            sys.stdout.write("\r" + render_upgrade(doc, tty=True).rstrip("\n"))
            sys.stdout.flush()
        elif doc.get("state") != shown:  # plain lines off a TTY: one per state
            shown = str(doc.get("state"))
            sys.stdout.write(render_upgrade(doc, tty=False))
            sys.stdout.flush()
        time.sleep(0.5)
        try:
            reply = request(sock, "GET", f"/v1/upgrades/{doc['id']}", ns.request_timeout)
        except Unreachable:
            continue  # the agent restarts during its own upgrade: keep asking
        if reply.status == 200:
            doc, final = reply.body, reply
    if tty and ns.wait:
        sys.stdout.write("\r")
    emit_json(final) if ns.output == "json" else sys.stdout.write(render_upgrade(doc, tty=tty))
    failed = isinstance(doc, dict) and doc.get("state") in ("rolled-back", "failed")
    return EXIT_DEGRADED if failed else EXIT_OK


def cmd_doctor(sock: str, ns: Args) -> int:
    from agent.cli.doctor import run

    return run(ns.root, sock, ns.output, ns.request_timeout)


def cmd_console(sock: str, ns: Args) -> int:
    from agent.cli.console import watch

    return watch(sock, ns.root, ns.tty, ns.interval, ns.request_timeout, once=ns.once)


def cmd_support_bundle(sock: str, ns: Args) -> int:
    from agent.cli.support_bundle import run

    return run(ns.root, sock, ns.file, ns.request_timeout)


def problem_exit(reply: Reply) -> int:
    body = reply.body if isinstance(reply.body, dict) else {}
    detail = body.get("detail") or body.get("title") or f"HTTP {reply.status}"
    print(f"agentctl: the agent refused: {detail}", file=sys.stderr)
    return EXIT_DEGRADED


def main(argv: list[str] | None = None) -> int:
    ns = parse(sys.argv[1:] if argv is None else argv)
    sock = socket_path(ns)
    handlers = {
        "status": cmd_status,
        "inventory": cmd_inventory,
        "upgrade": cmd_upgrade,
        "doctor": cmd_doctor,
        "console": cmd_console,
        "support-bundle": cmd_support_bundle,
    }
    try:
        return handlers[ns.command](sock, ns)
    except Unreachable as exc:
        print(f"agentctl: {exc}", file=sys.stderr)
        if ns.command == "inventory":
            print("agentctl: 'agentctl inventory --local' scans the hardware without the agent", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
