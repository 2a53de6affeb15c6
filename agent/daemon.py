"""agentd: the composition root. Builds every part once and passes it down.

agentd run [--root DIR] [--config FILE] [--log-format auto|journal|json|text]
agentd check-config [--root DIR] [--config FILE]
"""

# ruff: noqa: E402 (gc.disable() comes before the imports it is for)
from __future__ import annotations

import gc

gc.disable()  # until the imports below are done: see the end of this import section

import argparse
import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr, ValidationError

from agent import __version__
from agent.api import inventory as inventory_api
from agent.api.app import ApiInfo, RouteModule, build_app
from agent.api.metrics import ConnectionCounters, MetricsSource
from agent.api.mtls import require_role
from agent.api.upgrades import UpgradeRoutes
from agent.config import LoadedConfig, load_config, render_redacted, without_bootstrap_token
from agent.context import AgentContext
from agent.controller import Controller, Supervisor
from agent.errors import ConfigError, StateError
from agent.fleet import metrics as fleet_metrics
from agent.fleet.seed import adopt_seed, kept_bootstrap_token
from agent.fsio import remove_stale_temps
from agent.health import metrics as health_metrics
from agent.inventory import metrics as inventory_metrics
from agent.logs import setup_logging
from agent.model.config import AgentConfig
from agent.model.state import ConfigState
from agent.paths import Paths
from agent.planning import PlannerController
from agent.runtime import metrics as runtime_metrics
from agent.sdnotify import Notifier
from agent.state import StateStore
from agent.status import StatusBoard
from agent.storage import report as storage_report
from agent.sysexec import DEFAULT_PATH, ProcessRunner
from agent.upgrade import metrics as upgrade_metrics
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.watch import Watch

# Importing allocates some 60k objects that live as long as the process; the collector walking them
# again and again while they are built found nothing to free and cost ~60 ms of every start (far
# more on a slow board). They are frozen (left out of every later collection) and collection resumes.
gc.freeze()
gc.enable()

log = logging.getLogger("agent.daemon")

EXIT_CONFIG = 2


def route_modules(upgrades: UpgradeManager) -> tuple[RouteModule, ...]:
    """Route modules of the capabilities, served on the socket and the remote listener alike."""
    return (inventory_api, UpgradeRoutes(upgrades))


@dataclass
class Options:
    root: Path
    config: Path | None
    log_format: str


def parse_args(argv: list[str] | None) -> tuple[str, Options]:
    parser = argparse.ArgumentParser(prog="agentd", description="edge-agent daemon")
    parser.add_argument("--version", action="version", version=f"agentd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "run the daemon"), ("check-config", "print the merged config or every error")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--root", type=Path, default=Path("/"), help="run against this root directory")
        p.add_argument("--config", type=Path, help="operator config file instead of /etc/edge-agent/agent.toml")
        p.add_argument("--log-format", choices=["auto", "journal", "json", "text"], default="auto")
    ns = parser.parse_args(argv)
    return ns.command, Options(ns.root.resolve(), ns.config, ns.log_format)


def check_config(opts: Options) -> int:
    try:
        loaded = load_config(Paths(opts.root), opts.config)
    except ConfigError as exc:
        for p in exc.problems:
            print(f"error: {p}", file=sys.stderr)
        print(f"{len(exc.problems)} error(s); the config was not accepted", file=sys.stderr)
        return EXIT_CONFIG
    print(f"# merged from: {', '.join(loaded.sources) or 'built-in defaults only'}")
    print(f"# digest: {loaded.digest}")
    print(render_redacted(loaded.config), end="")
    return 0


class Agent:
    """The running daemon: config, state, controllers, API, signals, sd_notify."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.paths = Paths(opts.root)
        self.board = StatusBoard()
        self.store = StateStore(self.paths.state_file)
        self.notifier = Notifier()
        self.info = ApiInfo()
        self.stopping = asyncio.Event()
        self.ctx: AgentContext | None = None
        self.supervisor: Supervisor | None = None
        self.api_runner: web.AppRunner | None = None
        self.remote_connections = ConnectionCounters()

    # -- config ---------------------------------------------------------
    def initial_config(self) -> AgentConfig:
        """The config to start on. Never raises: a bad config falls back to the
        last known good one (kept in state) or the built-in defaults."""
        try:
            loaded = load_config(self.paths, self.opts.config)
        except ConfigError as exc:
            return self._config_rejected(exc, self._last_good())
        self._config_accepted(loaded)
        return loaded.config

    def _last_good(self) -> tuple[AgentConfig, str]:
        kept = self.store.load_section("config", ConfigState).last_good
        if kept is not None:
            try:
                config = AgentConfig.model_validate(kept)
            except ValidationError:
                log.warning("the last known good config in state no longer validates; using defaults")
            else:
                # state never holds the bootstrap token; a box not enrolled yet still has it in its seed
                token = kept_bootstrap_token(self.paths)
                if token and not config.fleet.bootstrap_token.get_secret_value():
                    fleet = config.fleet.model_copy(update={"bootstrap_token": SecretStr(token)})
                    config = config.model_copy(update={"fleet": fleet})
                return config, "the last known good config"
        return AgentConfig(), "the built-in defaults"

    def _scrub_last_good(self) -> None:
        """State written by an older agent may hold the bootstrap token in last_good: drop it."""
        kept = self.store.load_section("config", ConfigState).last_good
        if kept is not None and (clean := without_bootstrap_token(kept)) != kept:
            try:
                self.store.save_section("config", ConfigState(last_good=clean))
            except StateError as exc:
                log.error("%s", exc)

    def _config_rejected(self, exc: ConfigError, fallback: tuple[AgentConfig, str]) -> AgentConfig:
        config, what = fallback
        for p in exc.problems:
            log.error("config rejected: %s", p)
        first = exc.problems[0]
        more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        self.board.set_condition(
            "ConfigValid", "False", "Invalid", f"{first}{more}; running on {what}; see agentd check-config"
        )
        return config

    def _config_accepted(self, loaded: LoadedConfig) -> None:
        self.info.config_digest = loaded.digest
        self.info.config_sources = loaded.sources
        self.board.set_condition("ConfigValid", "True", "Loaded", f"{len(loaded.sources)} file(s) merged")
        try:
            self.store.save_section("config", ConfigState(last_good=without_bootstrap_token(loaded.merged)))
        except StateError as exc:
            log.error("%s", exc)

    def reload(self) -> None:
        assert self.ctx is not None
        try:
            loaded = load_config(self.paths, self.opts.config)
        except ConfigError as exc:
            self._config_rejected(exc, (self.ctx.config.value, "the previous config"))
            return
        self._config_accepted(loaded)
        self.ctx.config.set(loaded.config)
        logging.getLogger().setLevel(loaded.config.agent.log_level.upper())
        log.info("config reloaded (%s)", loaded.digest)

    # -- lifecycle ------------------------------------------------------
    def prepare_dirs(self) -> None:
        for d, mode in ((self.paths.state_dir, 0o700), (self.paths.run_dir, 0o755)):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(mode)
        remove_stale_temps(self.paths.state_dir)
        try:
            adopted = adopt_seed(self.paths)
        except OSError as exc:
            adopted = f"could not adopt the first-boot seed: {exc}"
        if adopted:
            log.info("%s", adopted)
        try:
            self.store.load()
        except StateError as exc:
            self.board.set_condition("StateValid", "False", "Unreadable", str(exc))
            return
        self._scrub_last_good()
        if self.store.problem:
            self.board.set_condition("StateValid", "False", "Corrupt", self.store.problem)
        elif self.store.invalid:
            self.board.set_condition("StateValid", "False", "InvalidSection", "; ".join(self.store.invalid.values()))
        else:
            self.board.set_condition("StateValid", "True", "Loaded", str(self.paths.state_file))

    @staticmethod
    def build_controllers(
        ctx: AgentContext,
        planner: PlannerController,
        api_runner: web.AppRunner,
        upgrades: UpgradeManager,
        remote: ConnectionCounters,
    ) -> list[Controller]:
        # Imported here, once the agent is READY: the controllers' modules (pyudev, psutil,
        # cryptography, the runtime and health machinery) are a third of what agentd imports.
        from agent.fleet.enrollment import EnrollmentController
        from agent.fleet.remote import RemoteApiController
        from agent.health.controller import HealthController
        from agent.inventory.controller import InventoryController
        from agent.runtime.controller import RuntimeController
        from agent.storage.controller import StorageController
        from agent.upgrade.controller import UpgradeController

        return [
            planner,
            InventoryController(ctx),
            EnrollmentController(ctx),
            RemoteApiController(ctx, api_runner, counters=remote),
            StorageController(ctx),
            RuntimeController(ctx),
            UpgradeController(ctx, upgrades),
            HealthController(ctx),
        ]

    @staticmethod
    def metric_sources(ctx: AgentContext, upgrades: UpgradeManager) -> list[MetricsSource]:
        return [
            lambda: inventory_metrics.metrics(ctx),
            lambda: fleet_metrics.metrics(ctx),
            lambda: runtime_metrics.metrics(ctx),
            lambda: upgrade_metrics.metrics(upgrades),
            lambda: health_metrics.metrics(ctx.board),
            lambda: storage_report.board_metrics(ctx.board),
        ]

    async def serve_socket(self, api_runner: web.AppRunner, group: str) -> None:
        sock_path = self.paths.socket
        if sock_path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(sock_path))
            except OSError:
                sock_path.unlink()  # stale socket of a dead agent
            else:
                raise SystemExit(f"agentd: another agent is already serving {sock_path}")
            finally:
                probe.close()
        old_umask = os.umask(0o117)
        try:
            await web.UnixSite(api_runner, str(sock_path)).start()
        finally:
            os.umask(old_umask)
        sock_path.chmod(0o660)
        try:
            os.chown(sock_path, -1, grp.getgrnam(group).gr_gid)
        except KeyError:
            log.info("group %s does not exist; %s stays root-only", group, sock_path)
        except PermissionError:
            log.info("cannot hand %s to group %s (not root)", sock_path, group)

    async def watchdog(self, interval: float) -> None:
        # Pinged from the event loop itself, so a blocked loop misses pings and systemd restarts us.
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def run(self) -> int:
        self.prepare_dirs()
        config = self.initial_config()
        logging.getLogger().setLevel(config.agent.log_level.upper())
        ctx = AgentContext(
            paths=self.paths,
            runner=ProcessRunner(path=os.environ.get("PATH", DEFAULT_PATH)),
            board=self.board,
            store=self.store,
            config=Watch(config),
        )
        self.ctx = ctx
        planner = PlannerController(ctx)
        planner.plan_once()  # every controller starts on a plan (inventory and assignment follow)
        upgrades = UpgradeManager(ctx, installers=default_installers(ctx))
        app = build_app(
            ctx,
            self.info,
            route_modules(upgrades),
            [*self.metric_sources(ctx, upgrades), self.remote_connections.lines],
            middlewares=[require_role],
        )
        self.api_runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self.api_runner.setup()
        await self.serve_socket(self.api_runner, config.api.socket_group)

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        tasks = []
        interval = self.notifier.watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(self.watchdog(interval)))
        tasks.append(asyncio.create_task(self.report_status()))
        self.notifier.notify("READY=1", f"STATUS=serving on {self.paths.socket}")
        log.info("agentd %s ready on %s (root %s)", __version__, self.paths.socket, self.paths.root)

        # Socket serving, state and config loaded: READY is said. The controllers start before the
        # loop runs again, so the first request is still answered with every controller started.
        controllers = self.build_controllers(ctx, planner, self.api_runner, upgrades, self.remote_connections)
        self.supervisor = Supervisor(controllers, self.board)
        self.info.restarts = self.supervisor.restarts
        self.supervisor.start()

        await self.stopping.wait()
        log.info("stopping")
        self.notifier.notify("STOPPING=1")
        for t in tasks:
            t.cancel()
        await self.supervisor.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.api_runner.cleanup(), 1.5)
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()
        return 0

    async def report_status(self) -> None:
        """Keep systemd's STATUS= line in step with the conditions."""
        last = ""
        while True:
            degraded = self.board.degraded()
            line = "healthy" if not degraded else "degraded: " + ", ".join(c.type for c in degraded)
            if line != last:
                self.notifier.notify(f"STATUS={line}")
                last = line
            await self.board.wait_change()


def main(argv: list[str] | None = None) -> int:
    command, opts = parse_args(argv)
    if command == "check-config":
        return check_config(opts)
    setup_logging("info", opts.log_format)
    return asyncio.run(Agent(opts).run())


if __name__ == "__main__":
    sys.exit(main())
