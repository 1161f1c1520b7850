"""The ``adaptd`` command.

    adaptd run [--config FILE]            the long-running service
    adaptd policies [--follow]            tail the policy topic readably, signatures checked
    adaptd keys generate [--out DIR]      an Ed25519 key pair to sign the policies with
    adaptd config show [--config FILE]    the effective configuration, secrets redacted
    adaptd config docs                    the configuration reference, as Markdown

Installed tooling adds its own commands through the ``adaptd.commands`` entry points (the
``demo`` extra: ``adaptd demo``, ``adaptd feed``); this module never imports it.

Invalid configuration exits with status 2 and a message naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import __version__
from .config.settings import ConfigError, Settings, load_settings, redacted

if TYPE_CHECKING:
    from .service.daemon import Daemon

EXIT_CONFIG = 2
COMMANDS_GROUP = "adaptd.commands"
"""Entry-point group of the commands that installed tooling adds."""


class Command(Protocol):
    """A subcommand that a package adds through the ``adaptd.commands`` entry points."""

    name: str
    help: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Run it; the exit status. ConfigError and InputError exit with status 2."""
        ...


class InputError(Exception):
    """A command's input (a CSV file, say) cannot be used; the message says why."""


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--config FILE`` (a YAML or TOML settings file)."""
    parser.add_argument("--config", type=Path, help="YAML or TOML settings file")
    return parser


def plugin_commands() -> dict[str, Command]:
    """The commands installed packages add, by name (an extra that is not installed adds none)."""
    return {ep.name: ep.load() for ep in entry_points(group=COMMANDS_GROUP)}


def _parser(plugins: dict[str, Command]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptd", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"adaptd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--max-events", type=int, help="stop after this many input records")
    run.add_argument("--idle-timeout", type=float, help="stop after this many idle seconds")

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    with_config(cfg_sub.add_parser("show", help="print the effective configuration"))
    cfg_sub.add_parser("docs", help="print the configuration reference (Markdown)")

    pol = with_config(sub.add_parser("policies", help="tail the policy topic"))
    pol.add_argument("--follow", action="store_true", help="keep waiting for new policies")
    pol.add_argument("--json", action="store_true", help="one JSON summary per line")
    pol.add_argument(
        "--no-verify",
        action="store_true",
        help="show policies without checking their signatures (signing.verify false)",
    )

    keys = sub.add_parser("keys", help="signing keys for the policies")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="write a new Ed25519 key pair")
    gen.add_argument("--out", type=Path, default=Path("."), help="folder to write them to")
    gen.add_argument("--name", default="adaptd-signing", help="NAME.pem and NAME.pub")

    for name, command in sorted(plugins.items()):
        command.configure(sub.add_parser(name, help=command.help))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    plugins = plugin_commands()
    args = _parser(plugins).parse_args(argv)
    try:
        if args.command == "config" and args.config_command == "docs":
            from .config.docs import render

            print(render(), end="")
            return 0
        if args.command == "config":
            settings = load_settings(args.config)
            print(json.dumps(redacted(settings), indent=2))
            return 0
        if args.command == "run":
            return _run(load_settings(args.config), args.max_events, args.idle_timeout)
        if args.command == "policies":
            from .core.signing import Keyring
            from .io.subscriber import tail

            settings = load_settings(args.config)
            keyring = None
            if settings.signing.verify and not args.no_verify:
                if not settings.signing.trusted_keys:
                    raise ConfigError(
                        "signing.trusted_keys: no public key to verify the policies with "
                        "(set it, or pass --no-verify to show them unverified)"
                    )
                keyring = Keyring.from_pem(settings.signing.public_pems())
            return asyncio.run(
                tail(settings.kafka, follow=args.follow, as_json=args.json, keyring=keyring)
            )
        if args.command == "keys":
            return _generate_keys(args.out, args.name)
        return plugins[args.command].run(args)
    except (ConfigError, InputError) as exc:
        print(f"adaptd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _run(settings: Settings, max_events: int | None, idle_timeout: float | None) -> int:
    from .io.logs import configure, get_logger
    from .service.daemon import Daemon

    configure(settings.log_level, settings.log_format)

    async def main_async() -> None:
        daemon = Daemon(settings)
        install_signal_handlers(daemon.stop)
        await run_as_service(daemon, max_events=max_events, idle_timeout_s=idle_timeout)

    try:
        asyncio.run(main_async())
    except Exception as exc:
        # Start-up against an unreachable Kafka or Redis ends here, among others: say what
        # failed, with the traceback in the log, and exit non-zero for the supervisor.
        reason = f"{type(exc).__name__}: {exc}{_settings_to_check(exc, settings)}"
        get_logger().error("adaptd failed", error=reason, exc_info=True)
        print(f"adaptd: {reason}", file=sys.stderr)
        return 1
    return 0


def _settings_to_check(exc: Exception, settings: Settings) -> str:
    """The settings a failed connection to Kafka depends on (aiokafka says only "Unable to
    bootstrap", and why the broker refused, a wrong SASL password for one, in its own log)."""
    from aiokafka.errors import KafkaConnectionError

    if not isinstance(exc, KafkaConnectionError):
        return ""
    k = settings.kafka
    check = [f"kafka.bootstrap_servers={k.bootstrap_servers}"]
    if k.security_protocol.endswith("SSL"):
        check.append(f"the TLS settings (kafka.security_protocol={k.security_protocol}, ssl_*)")
    if k.security_protocol.startswith("SASL"):
        check.append(
            f"kafka.sasl_username={k.sasl_username!r} and kafka.sasl_password ({k.sasl_mechanism})"
        )
    return " (check " + "; ".join(check) + ")"


def _generate_keys(folder: Path, name: str) -> int:
    """Write NAME.pem (the private key, readable by its owner only) and NAME.pub."""
    from .core.signing import Signer, generate_key_pair

    private, public = generate_key_pair()
    secret, shared = folder / f"{name}.pem", folder / f"{name}.pub"
    for path in (secret, shared):
        if path.exists():
            raise InputError(f"{path} exists: not overwriting a key")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private)
        shared.write_bytes(public)
    except OSError as exc:
        raise InputError(f"cannot write the keys: {exc}") from exc
    print(f"key id {Signer.from_pem(private).key_id}")
    print(f"private key: {secret} (signing.key_file of the daemon; keep it secret)")
    print(f"public key:  {shared} (signing.trusted_keys of subscribers)")
    return 0


GC_YOUNG_THRESHOLD = 20_000
"""Net allocations of container objects between two young-generation collections."""


def tune_gc() -> None:
    """Tune the collector for a long-running daemon: freeze what start-up allocated (modules,
    clients, the learner's proxy) out of the collector's sight, and collect young objects
    less often.

    The per-event path allocates and frees small containers (tuples, examples) at a high rate;
    with CPython's default young threshold (700) the collector ran about 380 times per
    200,000 events and took about a tenth of the daemon's CPU, and nearly everything it
    looked at was still alive (docs/benchmarks.md). Reference cycles are still collected,
    once every ``GC_YOUNG_THRESHOLD`` net allocations. Process-wide, so the entry point
    does it, as it installs the signal handlers; a program embedding ``Daemon`` decides for
    itself.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def run_as_service(
    daemon: Daemon, *, max_events: int | None = None, idle_timeout_s: float | None = None
) -> None:
    """Run ``daemon`` as ``adaptd run`` does: the collector is tuned once it has started."""
    run = asyncio.create_task(daemon.run(max_events=max_events, idle_timeout_s=idle_timeout_s))
    if await daemon.wait_started(run):
        tune_gc()
    await run


def install_signal_handlers(stop: Callable[[], object]) -> None:
    """First SIGTERM/SIGINT: graceful stop. A second one: exit at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def handle(signum: int) -> None:
        if received:
            os._exit(128 + signum)
        received.append(signum)
        stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)
    # What every task and thread waits on, for a daemon that stops moving without an error.
    from .io.diagnostics import snapshot
    from .io.logs import get_logger

    loop.add_signal_handler(
        signal.SIGUSR1,
        lambda: get_logger("adaptd").warning("what the daemon waits on", tasks=snapshot()),
    )


if __name__ == "__main__":
    sys.exit(main())
