"""agentctl's command line: one declarative spec, read two ways.

A well-formed command line is read by a small parser here; ``--help`` and every
mistake go to argparse, built from the same spec, for its usage text and errors.
argparse (with the gettext, shutil and re it pulls in) costs agentctl ~10 ms at
start, a third of a whole `agentctl status` (bench/foundation_bench.py).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below

if TYPE_CHECKING:
    import argparse
    from typing import Any

DEFAULT_SOCKET = "/run/edge-agent/agent.sock"

EPILOG = """\
exit codes:
  0  the agent answered and is healthy (for 'upgrade': the request was accepted / succeeded)
  1  the agent answered and is degraded (some condition is not True; see the list), or refused the request
  2  the agent is unreachable: no socket, nothing listening, no answer in time, or an answer that is not JSON
for 'doctor': 0 every check passed, 1 warnings, 2 failures
for 'inventory --local': 0 scanned (unreadable fields are listed, not errors), 2 the box cannot be scanned (no libudev)
"""


class Opt:
    __slots__ = ("choices", "default", "dest", "flags", "help", "kind")

    def __init__(
        self, flags: tuple[str, ...], kind: str, default: Any, help: str, choices: tuple[str, ...] = ()
    ) -> None:
        self.flags, self.kind, self.default, self.help, self.choices = flags, kind, default, help, choices
        self.dest = flags[-1].lstrip("-").replace("-", "_")


OUTPUT = Opt(("-o", "--output"), "str", "text", "text or json", ("text", "json"))
GLOBAL = (
    Opt(("--socket",), "str", None, f"agent socket (default {DEFAULT_SOCKET})"),
    Opt(("--root",), "str", None, "root directory the agent runs under (agentd --root)"),
    Opt(("--request-timeout",), "float", 5.0, "give up on a request after S seconds (default 5)"),
)
# command -> (help, options, positionals as (name, required, help))
COMMANDS: dict[str, tuple[str, tuple[Opt, ...], tuple[tuple[str, bool, str], ...]]] = {
    "status": (
        "health, conditions and a summary of each part",
        (
            OUTPUT,
            Opt(("--wait",), "flag", False, "wait until the agent is ready"),
            Opt(("--timeout",), "float", 60.0, "with --wait: give up after S seconds"),
            Opt(("--watch",), "flag", False, "redraw the console screen every few seconds (Ctrl-C ends)"),
            Opt(("--interval",), "float", 3.0, "with --watch: seconds between redraws (default 3)"),
        ),
        (),
    ),
    "doctor": (
        "check everything locally (seed, CA pin, registrar, certificate, clock, k3s/k0s, disk, socket)",
        (OUTPUT,),
        (),
    ),
    "console": (
        "draw the offline status screen on a console (what edge-agent-console.service runs)",
        (
            Opt(("--tty",), "str", None, "terminal device to draw on, e.g. /dev/tty1 (default: stdout)"),
            Opt(("--interval",), "float", 3.0, "seconds between redraws (default 3)"),
            Opt(("--once",), "flag", False, "draw once and exit"),
        ),
        (),
    ),
    "support-bundle": (
        "write a tar.gz for a technician to hand over (secrets redacted)",
        (Opt(("-f", "--file"), "str", None, "where to write it (default ./edge-agent-support-HOST-TIME.tar.gz)"),),
        (),
    ),
    "inventory": (
        "the detected hardware (from the agent; --local scans the box itself, agent running or not)",
        (
            OUTPUT,
            Opt(("--local",), "flag", False, "scan the hardware here instead of asking the agent (works with it down)"),
            Opt(
                ("--nvidia-smi-timeout",),
                "float",
                5.0,  # the agent's [inventory] nvidia_smi_timeout default (tests/inventory/test_local.py)
                "with --local: give nvidia-smi S seconds, then kill it (default 5)",
            ),
        ),
        (),
    ),
    "upgrade": (
        "upgrade from a signed bundle, or show upgrade status",
        (
            Opt(("--wait",), "flag", False, "follow the upgrade until it ends"),
            Opt(("--force",), "flag", False, "also try a version that failed before"),
            Opt(("--timeout",), "float", 3600.0, "with --wait: give up after S seconds"),
            OUTPUT,
        ),
        (
            ("source", True, "bundle path or URL, or 'status', or 'cancel'"),
            ("id", False, "with 'status': the upgrade id (default: all); with 'cancel': required"),
        ),
    ),
}


class Args:
    """The parsed command line (what argparse.Namespace would hold)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # for mypy: attributes come from the spec
        raise AttributeError(name)


def _take(opt: Opt, value: str, out: dict[str, Any]) -> bool:
    if opt.choices and value not in opt.choices:
        return False
    if opt.kind == "float":
        try:
            out[opt.dest] = float(value)
        except ValueError:
            return False
    else:
        out[opt.dest] = value
    return True


def fast_parse(argv: list[str]) -> Args | None:
    """The command line, or None for anything argparse should handle (help, errors, odd spellings)."""
    out: dict[str, Any] = {o.dest: o.default for o in GLOBAL}
    options = {f: o for o in GLOBAL for f in o.flags}
    positionals: tuple[tuple[str, bool, str], ...] = ()
    given: list[str] = []
    command = None
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok.startswith("-") and tok != "-":
            name, eq, inline = tok.partition("=")
            opt = options.get(name)
            if opt is None:
                return None
            if opt.kind == "flag":
                if eq:
                    return None
                out[opt.dest] = True
                continue
            if not eq:
                if i >= len(argv):
                    return None
                inline, i = argv[i], i + 1
            if not _take(opt, inline, out):
                return None
        elif command is None:
            if tok not in COMMANDS:
                return None
            command = tok
            _, opts, positionals = COMMANDS[tok]
            out.update({o.dest: o.default for o in opts})
            options = {f: o for o in opts for f in o.flags}
        else:
            given.append(tok)
    if command is None or (out["socket"] and out["root"]) or len(given) > len(positionals):
        return None
    for n, (name, required, _) in enumerate(positionals):
        if n >= len(given) and required:
            return None
        out[name] = given[n] if n < len(given) else None
    out["command"] = command
    return Args(out)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="agentctl",
        description="Ask the local edge-agent how it is.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()

    def add(target: Any, o: Opt) -> None:
        if o.kind == "flag":
            target.add_argument(*o.flags, action="store_true", help=o.help)
        else:
            target.add_argument(
                *o.flags, type=float if o.kind == "float" else str, default=o.default, help=o.help,
                choices=list(o.choices) or None, metavar="S" if o.kind == "float" else None,
            )  # fmt: skip

    for o in GLOBAL:
        add(where if o.dest in ("socket", "root") else p, o)
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_, opts, positionals) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        for pos, required, pos_help in positionals:
            sp.add_argument(pos, nargs=None if required else "?", help=pos_help)
        for o in opts:
            add(sp, o)
    return p


def parse(argv: list[str]) -> Args:
    return fast_parse(argv) or Args(vars(build_parser().parse_args(argv)))
