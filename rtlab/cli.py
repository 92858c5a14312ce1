"""The rtlab command: the lab server, class tokens, your copies of the lessons, checks."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rtlab import cliargs, handout, tls, workers
from rtlab.addresses import reachable, url_host
from rtlab.aio import compression, log_flood
from rtlab.aio.admission import MAX_HANDSHAKES_PER_ADDRESS, USER, is_loopback
from rtlab.aio.data_dir import DataDirError
from rtlab.aio.redis_adapter import shown_url
from rtlab.aio.server import LabServer, log_to
from rtlab.bench import cli as bench_cli
from rtlab.core.tokens import ROLES, issue
from rtlab.handout import HandoutError, learner_folder, notebooks_folder

FIRST_LESSON = "00_welcome.ipynb"  # what rtlab lab opens
# Bytes a message to rtlab serve may have, inflated: a 1 KiB compressed frame of dense
# JSON inflating to 1 MiB takes 50 ms to parse, before the rate limit sees an event.
CLASS_MAX_SIZE = 64 * 2**10


async def serve(
    host: str,
    port: int,
    anonymous: bool = False,
    log_level: str = "info",
    log_all: bool = False,
    **options: Any,
) -> None:
    """Serve until Ctrl-C or SIGTERM, then close every connection with 1001 and return.

    The server's log goes to stderr from ``log_level`` up, every line of a flood too with
    ``log_all``; ``options`` go to :class:`LabServer` (``data_dir``, ``ping_interval``...)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = LabServer(host, port, allow_anonymous=anonymous or None, **options)
    if log_all:
        server.log_every_line()
    log_to(server.logger, sys.stderr, log_level.upper())
    async with server:
        print(f"rtlab lab server on {server.http_url}", flush=True)
        if host in ("0.0.0.0", "::", ""):
            others = [(a, i) for a, i in reachable(host) if not is_loopback(a)]
            scheme = "https" if options.get("ssl_context") else "http"
            print("  students open one of (this machine's addresses):", flush=True)
            for address, interface in others or [("127.0.0.1", "only this machine")]:
                url = f"{scheme}://{url_host(address)}:{server.port}/"
                print(f"                {url}  ({interface})", flush=True)
        print(f"  browser page  {server.http_url}", flush=True)
        print(f"  echo page     {server.http_url}echo.html", flush=True)
        print(f"  the class     {server.http_url}teacher (an instructor's token)", flush=True)
        who = "token=TOKEN" if options.get("secret") else "user=NAME"
        print(f"  events        {server.url}/ws?{who}", flush=True)
        print(f"  echo          {server.url}/echo", flush=True)
        print(f"  feed          {server.url}/feed", flush=True)
        said = server.descriptors_said
        print(f"{said[:1].upper()}{said[1:]}.", flush=True)  # File descriptors: ...
        if options.get("redis"):
            away = "" if server.events.manager.available else " (unreachable for now: retrying)"
            shown = shown_url(options["redis"])  # never its password
            print(f"Rooms span every server on Redis {shown}.{away}", flush=True)
        if options.get("data_dir") is not None:
            window = options.get("history_window", 300)
            print(
                f"Room history (the last {window:g} s of each room) is kept in "
                f"{options['data_dir']}.",
                flush=True,
            )
        if options.get("secret"):
            print(
                "Tokens are required on /ws, /echo and /feed: ?token=... "
                "(make them with rtlab token).",
                flush=True,
            )
        elif anonymous:
            print("Anyone who can reach this port may join as any ?user=NAME.", flush=True)
        elif not is_loopback(host):
            print(
                "Note: ?user=NAME is accepted from this machine only; "
                "add --anonymous to let other machines join.",
                flush=True,
            )
        print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()
        print(f"stopping: closing {len(server.clients)} connection(s) with 1001", flush=True)
    print("stopped", flush=True)


def token(args: argparse.Namespace) -> int:
    """Print one token per ``--user``, as ``user<TAB>token`` lines for a class list."""
    secret = args.secret or os.environ.get("RTLAB_SECRET")
    if not secret:
        args.usage_error("give --secret (or set RTLAB_SECRET)")
    for user in args.user:  # every name checked before any token is printed
        if not USER.fullmatch(user):
            args.usage_error(
                f"not a valid user name: {user!r} (up to 32 letters, digits, _ . or -, "
                "starting with a letter or digit)"
            )
    now = time.time()
    for user in args.user:
        print(
            f"{user}\t{issue(secret, user, args.ttl, now, args.role)}"
            if len(args.user) > 1
            else issue(secret, user, args.ttl, now, args.role)
        )
    return 0


def lab_argv(folder: Path, extra: Sequence[str]) -> list[str]:
    """The command line of JupyterLab on ``folder``, opening its first lesson if it has one.

    ``--LabApp.default_url`` opens the lesson whatever the current folder (a positional
    path would be taken from the current folder, not from ``root_dir``), in the browser
    and in the URL JupyterLab prints. ``extra`` comes after, so it may override both."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    if (folder / FIRST_LESSON).is_file():
        argv.append(f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}")
    argv.extend(extra)
    if os.geteuid() == 0:  # containers and CI machines: JupyterLab refuses root otherwise
        argv.append("--allow-root")
    return argv


def lab(solutions: bool, extra: Sequence[str]) -> int:
    """Replace this process with JupyterLab: on the learner's copies, made or brought up to
    date first (never overwriting an edit), or with ``solutions`` on the course itself."""
    folder = notebooks_folder() if solutions else learner_folder()
    if not solutions:
        try:
            print(handout.refresh(folder), flush=True)
        except HandoutError as error:
            print(f"rtlab lab: {error}", file=sys.stderr)
            return 1
    print(f"Starting JupyterLab on {folder}", flush=True)
    os.execv(sys.executable, lab_argv(folder, extra))
    return 1  # not reached


def parser() -> argparse.ArgumentParser:
    """The whole command line; each subcommand reports its own usage errors."""
    top = argparse.ArgumentParser(
        prog="rtlab",
        description=__doc__,
        epilog="rtlab COMMAND --help shows a command's options.",
    )
    top.add_argument("--version", action="version", version=f"rtlab {version('rtlab')}")
    commands = top.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    serve_ = commands.add_parser(
        "serve",
        help="run the lab server for yourself or a class",
        description="Run the lab server until Ctrl-C: the chat page, /ws events, /echo, /feed "
        "and, with tokens, the instructor's /teacher. Alone it serves this machine; for a "
        "class, see docs/workshop.md (RTLAB_SECRET, --host 0.0.0.0, --certfile/--keyfile, "
        "--data-dir).",
    )
    serve_.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve_.add_argument(
        "--port", type=cliargs.port, default=8765, help="port (default 8765, 0 = any)"
    )
    serve_.add_argument(
        "--anonymous",
        action="store_true",
        help="accept ?user=NAME from any address, not only from this machine",
    )
    serve_.add_argument(
        "--secret",
        help="require tokens signed with this secret on /ws, /echo and /feed (make them "
        "with rtlab token); "
        "RTLAB_SECRET works too",
    )
    serve_.add_argument(
        "--origins",
        help="comma-separated browser origins allowed besides the server's own, "
        "e.g. https://class.example.org ('*' allows any: unsafe)",
    )
    serve_.add_argument(
        "--rate-limit",
        type=cliargs.rate_limit,
        default="10/50",
        help="events per second per user, and the burst allowed: RATE/BURST "
        "(default 10/50, a lively chat), or 'off'",
    )
    serve_.add_argument(
        "--handshake-timeout",
        type=cliargs.seconds,
        default=10,
        help="seconds a client has to finish its opening handshake (default 10)",
    )
    serve_.add_argument(
        "--max-size",
        type=cliargs.at_least(1024),
        default=CLASS_MAX_SIZE,
        metavar="BYTES",
        help=f"bytes one message may have, inflated (default {CLASS_MAX_SIZE}: a chat "
        "message is at most 500 characters); a bigger one closes its connection with 1009. "
        "Parsing costs CPU before any rate limit can count it: a notebook's server allows "
        f"{2**20}, a class's needs less",
    )
    serve_.add_argument(
        "--max-connections-per-user",
        type=cliargs.at_least(1),
        default=8,
        metavar="N",
        help="open connections one user may have (tabs, devices; default 8)",
    )
    serve_.add_argument(
        "--max-connections-per-address",
        type=cliargs.at_least(1),
        default=256,
        metavar="N",
        help="open connections from one IP address (default 256); raise it for a class "
        "behind one NAT address",
    )
    serve_.add_argument(
        "--max-handshakes-per-address",
        type=cliargs.at_least(1),
        default=MAX_HANDSHAKES_PER_ADDRESS,
        metavar="N",
        help="connections from one IP address still sending their request "
        f"(default {MAX_HANDSHAKES_PER_ADDRESS}); past it the oldest (2 s or more) is closed",
    )
    serve_.add_argument(
        "--host-name",
        action="append",
        metavar="NAME",
        help="a name browsers use to reach this server (the Host header), e.g. "
        "class.example.org; repeat for more ('*': any, behind a proxy that checks). "
        "Served anyway: localhost and loopback addresses; beyond 127.0.0.1 also IP "
        "addresses and this machine's names; with TLS any name",
    )
    serve_.add_argument("--certfile", help="TLS certificate (PEM): serve wss:// and https://")
    serve_.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    serve_.add_argument(
        "--data-dir",
        help="keep room history (and, without --redis, the class's progress) in this folder, "
        "so that it survives a restart",
    )
    serve_.add_argument(
        "--history-window",
        type=cliargs.seconds,
        default=300,
        metavar="SECONDS",
        help="how far back a room's history reaches: what a late joiner or a reconnecting "
        "client (or, with --data-dir, a restart) can catch up on (default 300; a class "
        "that wants the morning's table chat: 14400)",
    )
    serve_.add_argument(
        "--ping-interval",
        type=cliargs.seconds_or_off,
        default=20,
        help="seconds between protocol pings to each client (default 20; 0 turns them off)",
    )
    serve_.add_argument(
        "--ping-timeout",
        type=cliargs.seconds,
        default=20,
        help="seconds a client has to answer a ping before it is dropped (default 20)",
    )
    serve_.add_argument(
        "--redis",
        metavar="URL",
        help="redis://HOST:PORT/DB: rooms, history and presence span every rtlab serve "
        "given the same URL (scale out over processes and hosts)",
    )
    serve_.add_argument(
        "--workers",
        type=cliargs.at_least(1),
        default=1,
        help="server processes sharing the port (SO_REUSEPORT); more than 1 needs --redis",
    )
    serve_.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve_.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="what the server logs to stderr: info (default) has a line for each connection "
        "opened and closed, refusal, rate limit and Redis loss; warning, only trouble",
    )
    serve_.add_argument(
        "--log-all",
        action="store_true",
        help=f"log every line, even in a flood; by default, past {log_flood.BURST} lines of "
        f"one kind at once (then {log_flood.RATE:g} a second) the rest are counted and the "
        "count is logged",
    )
    serve_.add_argument(
        "--compression",
        type=cliargs.compression_option,
        default=str(compression.DEFAULT_THRESHOLD),
        help="permessage-deflate: off, on (every message), or BYTES: only messages of at "
        f"least that size (default {compression.DEFAULT_THRESHOLD})",
    )

    lab_ = commands.add_parser(
        "lab",
        allow_abbrev=False,  # JupyterLab's options pass through whole
        help="open JupyterLab on your own copies of the lessons (make lab)",
        description="Open JupyterLab on 00_welcome.ipynb in your own copies of the lessons: "
        "learner/ beside a checkout's notebooks/, else ~/rtlab-learner, or $RTLAB_LEARNER_DIR. "
        "The first run makes them (solutions out); later runs add new lessons and update "
        "copies you never edited, never overwriting your work. Other options go to JupyterLab.",
    )
    lab_.add_argument(
        "--solutions",
        action="store_true",
        help="open the course's notebooks/ instead, solutions in (instructors, maintainers)",
    )

    commands.add_parser(
        "doctor",
        help="check the installation and a loopback round trip",
        description="Print a table of what the lessons need (Python, the packages, the "
        "JupyterLab extensions, a lab server's round trip on 127.0.0.1), and of the programs "
        "only some parts use (redis-server, node and npm), each with how to fix it; with "
        "RTLAB_SERVER set, a connection to the class's server with RTLAB_TOKEN. Exit code 0 "
        "when the lessons can run; the optional rows do not change it.",
    )

    token_ = commands.add_parser(
        "token",
        help="print signed tokens for a class, one per user",
        description="Print a signed token per --user, as name<TAB>token lines (the token "
        "alone for a single --user), for a server started with the same secret.",
    )
    token_.add_argument("--secret", help="the server's secret (or RTLAB_SECRET)")
    token_.add_argument(
        "--user", action="append", required=True, help="a user name; repeat for a class list"
    )
    token_.add_argument(
        "--ttl",
        type=cliargs.seconds,
        default=8 * 3600,
        help="seconds the token is valid (default 8 h)",
    )
    token_.add_argument(
        "--role",
        choices=ROLES,
        default=ROLES[0],
        help="student (default), or instructor: the one who may open /teacher",
    )
    handout.add_parser(commands)  # rtlab learner
    bench_cli.add_parser(commands)  # rtlab bench
    for command in commands.choices.values():
        command.set_defaults(usage_error=command.error)  # "rtlab serve: error: ..."
    return top


def serve_command(args: argparse.Namespace) -> int:
    if (args.certfile is None) != (args.keyfile is None):
        args.usage_error("--certfile and --keyfile go together")
    if args.redis and not args.redis.startswith(("redis://", "rediss://", "unix://")):
        args.usage_error(f"--redis must look like redis://HOST:PORT/DB, got {args.redis!r}")
    if args.redis and args.data_dir:
        args.usage_error(
            "--data-dir keeps what Redis keeps with --redis (history and progress): "
            "leave it out, and give Redis persistence of its own"
        )
    context = None
    if args.certfile:
        try:
            context = tls.context(args.certfile, args.keyfile)
        except tls.TLSFileError as error:
            args.usage_error(str(error))
    options = {
        "rate_limit": args.rate_limit,
        "handshake_timeout": args.handshake_timeout,
        "max_size": args.max_size,
        "max_connections_per_user": args.max_connections_per_user,
        "max_connections_per_address": args.max_connections_per_address,
        "secret": args.secret or os.environ.get("RTLAB_SECRET") or None,
        "origins": [o.strip() for o in args.origins.split(",")] if args.origins else None,
        "hosts": args.host_name,
        "max_handshakes_per_address": args.max_handshakes_per_address,
        "ssl_context": context,
        "data_dir": args.data_dir,
        "history_window": args.history_window,
        "ping_interval": args.ping_interval or None,
        "ping_timeout": args.ping_timeout,
        "redis": args.redis,
        "reuse_port": args.reuse_port,
        "compression": args.compression,
    }
    try:
        asyncio.run(
            serve(args.host, args.port, args.anonymous, args.log_level, args.log_all, **options)
        )
    except DataDirError as error:  # in use by another server: nothing in it was touched
        print(f"rtlab serve: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"rtlab serve: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args, extra = top.parse_known_args(argv)
    if args.command is None:
        top.print_help(sys.stderr)
        return 2
    if args.command == "lab":
        return lab(args.solutions, extra)
    if extra:
        args.usage_error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve" and args.workers != 1:
        if not args.redis:
            args.usage_error("--workers needs --redis (else each worker has its own rooms)")
        given = sys.argv[1:] if argv is None else argv
        return workers.run(given, args.workers, args.host, args.port)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "token":
        return token(args)
    if args.command == "learner":
        return handout.run(args)
    if args.command == "bench":
        return bench_cli.main(args)
    from rtlab import doctor

    return doctor.main()


if __name__ == "__main__":
    sys.exit(main())
