"""The ``rtlab`` command: ``serve``, ``token``, ``lab`` and ``doctor``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
import time
from collections.abc import Sequence
from typing import Any

from rtlab import handout, workers
from rtlab.aio import compression
from rtlab.aio.admission import USER, is_loopback
from rtlab.aio.server import LabServer
from rtlab.bench import cli as bench_cli
from rtlab.core.ratelimit import TokenBucket
from rtlab.core.tokens import issue
from rtlab.course import notebooks_folder


async def serve(host: str, port: int, anonymous: bool = False, **options: Any) -> None:
    """Serve until Ctrl-C or SIGTERM, then close every connection with 1001 and return.

    ``options`` go to :class:`LabServer` (``data_dir``, ``ping_interval``...)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LabServer(host, port, allow_anonymous=anonymous or None, **options) as server:
        print(f"rtlab lab server on {server.http_url}", flush=True)
        print(f"  browser page  {server.http_url}", flush=True)
        print(f"  echo page     {server.http_url}echo.html", flush=True)
        who = "token=TOKEN" if options.get("secret") else "user=NAME"
        print(f"  events        {server.url}/ws?{who}", flush=True)
        print(f"  echo          {server.url}/echo", flush=True)
        print(f"  feed          {server.url}/feed", flush=True)
        if options.get("redis"):
            away = "" if server.events.manager.available else " (unreachable for now: retrying)"
            print(f"Rooms span every server on Redis {options['redis']}.{away}", flush=True)
        if options.get("data_dir") is not None:
            print(f"Room history is kept in {options['data_dir']}.", flush=True)
        if options.get("secret"):
            print(
                "Tokens are required on /ws: ?token=... (make them with rtlab token).", flush=True
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
        print("rtlab token: give --secret (or set RTLAB_SECRET)", file=sys.stderr)
        return 2
    now = time.time()
    for user in args.user:
        if not USER.fullmatch(user):
            print(f"rtlab token: not a valid user name: {user!r}", file=sys.stderr)
            return 2
        print(
            f"{user}\t{issue(secret, user, args.ttl, now)}"
            if len(args.user) > 1
            else issue(secret, user, args.ttl, now)
        )
    return 0


def lab(extra: Sequence[str]) -> int:
    """Replace this process with JupyterLab on the notebooks."""
    folder = notebooks_folder()
    args = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *extra]
    if os.geteuid() == 0:  # containers and CI machines: JupyterLab refuses root otherwise
        args.append("--allow-root")
    print(f"Starting JupyterLab on {folder}", flush=True)
    os.execv(sys.executable, args)
    return 1  # not reached


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rtlab", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_ = commands.add_parser("serve", help="run the lab server standalone")
    serve_.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve_.add_argument("--port", type=int, default=8765, help="port (default 8765, 0 = any)")
    serve_.add_argument(
        "--anonymous",
        action="store_true",
        help="accept ?user=NAME from any address, not only from this machine",
    )
    serve_.add_argument(
        "--secret",
        help="require tokens signed with this secret on /ws (make them with rtlab token); "
        "RTLAB_SECRET works too",
    )
    serve_.add_argument(
        "--origins",
        help="comma-separated browser origins allowed besides the server's own, "
        "e.g. https://class.example.org ('*' allows any: unsafe)",
    )
    serve_.add_argument(
        "--rate-limit",
        default="10/50",
        help="events per second per user, and the burst allowed: RATE/BURST "
        "(default 10/50, a lively chat), or 'off'",
    )
    serve_.add_argument(
        "--handshake-timeout",
        type=float,
        default=10,
        help="seconds a client has to finish its opening handshake (default 10)",
    )
    serve_.add_argument(
        "--max-connections-per-user",
        type=int,
        default=8,
        metavar="N",
        help="open connections one user may have (tabs, devices; default 8)",
    )
    serve_.add_argument(
        "--max-connections-per-address",
        type=int,
        default=256,
        metavar="N",
        help="open connections from one IP address (default 256); raise it for a class "
        "behind one NAT address",
    )
    serve_.add_argument("--certfile", help="TLS certificate (PEM): serve wss:// and https://")
    serve_.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    serve_.add_argument(
        "--data-dir", help="keep room history in this folder, so that it survives a restart"
    )
    serve_.add_argument(
        "--ping-interval",
        type=float,
        default=20,
        help="seconds between protocol pings to each client (default 20; 0 turns them off)",
    )
    serve_.add_argument(
        "--ping-timeout",
        type=float,
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
        type=int,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT); more than 1 needs --redis",
    )
    serve_.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve_.add_argument(
        "--compression",
        default=str(compression.DEFAULT_THRESHOLD),
        help="permessage-deflate: off, on (every message), or BYTES: only messages of at "
        f"least that size (default {compression.DEFAULT_THRESHOLD})",
    )

    commands.add_parser(
        "lab",
        help="open JupyterLab on the course notebooks (what `make lab` runs); "
        "other options go to JupyterLab",
    )

    commands.add_parser("doctor", help="check the installation and a loopback round trip")

    token_ = commands.add_parser("token", help="print signed tokens, one per user")
    token_.add_argument("--secret", help="the server's secret (or RTLAB_SECRET)")
    token_.add_argument(
        "--user", action="append", required=True, help="a user name; repeat for a class list"
    )
    token_.add_argument(
        "--ttl", type=float, default=8 * 3600, help="seconds the token is valid (default 8 h)"
    )
    handout.add_parser(commands)  # rtlab learner
    bench_cli.add_parser(commands)  # rtlab bench
    return top


def rate_limit(text: str) -> TokenBucket | None:
    """``RATE/BURST`` (events per second per user, burst) or ``off``."""
    if text == "off":
        return None
    rate, _, burst = text.partition("/")
    try:
        return TokenBucket(float(rate), int(burst))
    except ValueError:
        raise ValueError(
            f"--rate-limit must look like 10/50 (rate/burst) or off, got {text!r}"
        ) from None


def serve_command(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        parser().error(f"--port must be between 0 and 65535, got {args.port}")
    if (args.certfile is None) != (args.keyfile is None):
        parser().error("--certfile and --keyfile go together")
    for flag in ("max_connections_per_user", "max_connections_per_address"):
        if getattr(args, flag) < 1:
            parser().error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.redis and not args.redis.startswith(("redis://", "rediss://", "unix://")):
        parser().error(f"--redis must look like redis://HOST:PORT/DB, got {args.redis!r}")
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as error:
            print(f"rtlab serve: cannot load the certificate: {error}", file=sys.stderr)
            return 1
    try:
        limit = rate_limit(args.rate_limit)
        compression.threshold(args.compression)
    except ValueError as error:
        parser().error(str(error))
    options = {
        "rate_limit": limit,
        "handshake_timeout": args.handshake_timeout,
        "max_connections_per_user": args.max_connections_per_user,
        "max_connections_per_address": args.max_connections_per_address,
        "secret": args.secret or os.environ.get("RTLAB_SECRET") or None,
        "origins": [o.strip() for o in args.origins.split(",")] if args.origins else None,
        "ssl_context": context,
        "data_dir": args.data_dir,
        "ping_interval": args.ping_interval or None,
        "ping_timeout": args.ping_timeout,
        "redis": args.redis,
        "reuse_port": args.reuse_port,
        "compression": args.compression,
    }
    try:
        asyncio.run(serve(args.host, args.port, args.anonymous, **options))
    except OSError as error:
        print(f"rtlab serve: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    if args.command == "lab":
        return lab(extra)
    if extra:
        parser().error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve" and args.workers != 1:
        if args.workers < 1 or not args.redis:
            parser().error("--workers N needs N >= 1 and --redis (else each has its own rooms)")
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
