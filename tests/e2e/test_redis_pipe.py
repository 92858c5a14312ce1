"""The Redis adapter's connection (rtlab/aio/redis_pipe.py) against a real redis-server:
commands of one turn answered in order, written with the next turn's, an error failing
its own command only, a channel's messages in order, a late reply dropping the
connection, and the URLs it takes (a password, a user, a db, a Unix socket, TLS)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
from redis.exceptions import NoScriptError, ResponseError

from rtlab.aio.redis_pipe import RedisPipe
from tests.e2e.redis_server import RedisServer, free_port

pytestmark = pytest.mark.slow
GUARD = 30.0  # seconds: a hang guard, never a speed requirement


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, GUARD))


def test_a_turns_commands_are_answered_in_order_and_an_error_fails_only_its_own(redis_server):
    async def scenario() -> None:
        pipe = await RedisPipe.open(redis_server.url, "test")
        counts = [pipe.call("INCR", "pipe:n") for _ in range(100)]
        wrong = pipe.call("INCR", "pipe:other")
        text = pipe.call("SET", "pipe:text", "not a number")
        broken = pipe.call("INCR", "pipe:text")
        missing = pipe.call("EVALSHA", "0" * 40, 0)
        after = pipe.call("GET", "pipe:n")
        assert await asyncio.gather(*counts) == list(range(1, 101))
        assert await wrong == 1 and await text == "OK"
        with pytest.raises(ResponseError, match="not an integer"):
            await broken
        with pytest.raises(NoScriptError):
            await missing
        assert await after == "100"  # the connection goes on after errors
        assert not pipe.closed.done()
        pipe.close()

    run(scenario())


def test_what_the_next_turn_queues_joins_the_write(redis_server):
    """A turn's commands are written at the end of the next turn, after one more look at
    the sockets: what the loop read meanwhile (here, a callback of the next turn) goes
    in the same write; what comes later goes in a write of its own."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pipe = await RedisPipe.open(redis_server.url, "test")
        transport = pipe._transport
        assert transport is not None
        writes: list[bytes] = []
        write = transport.write

        def counted(data: bytes) -> None:
            writes.append(data)
            write(data)

        transport.write = counted  # type: ignore[method-assign]
        later: list[asyncio.Future[object]] = []
        first = pipe.call("INCR", "pipe:turns")
        loop.call_soon(lambda: later.append(pipe.call("INCR", "pipe:turns")))
        assert await first == 1 and await later[0] == 2
        assert len(writes) == 1
        assert await pipe.call("INCR", "pipe:turns") == 3
        assert len(writes) == 2
        pipe.close()

    run(scenario())


def test_a_subscribed_pipe_hands_every_message_over_in_order(redis_server):
    async def scenario() -> list[str]:
        got: list[str] = []
        done = asyncio.Event()

        def on_message(text: str) -> None:
            got.append(text)
            if len(got) == 500:
                done.set()

        sub = await RedisPipe.open(redis_server.url, "sub", on_message=on_message)
        assert await sub.call("SUBSCRIBE", "pipe:channel") == ["subscribe", "pipe:channel", 1]
        pub = await RedisPipe.open(redis_server.url, "pub")
        sent = [pub.call("PUBLISH", "pipe:channel", f"m{i} é") for i in range(500)]
        assert await asyncio.gather(*sent) == [1] * 500
        await asyncio.wait_for(done.wait(), GUARD)
        sub.close()
        pub.close()
        return got

    assert run(scenario()) == [f"m{i} é" for i in range(500)]


def test_a_reply_later_than_the_timeout_drops_the_connection(redis_server):
    async def scenario() -> None:
        pipe = await RedisPipe.open(redis_server.url, "late", timeout=0.3)
        blocked = pipe.call("BLPOP", "pipe:never", 0)  # waits for ever
        behind = pipe.call("PING")
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.3 s"):
            await blocked
        with pytest.raises(TimeoutError):
            await behind
        with pytest.raises(TimeoutError):
            await pipe.closed
        with pytest.raises(ConnectionError, match="closed"):
            await pipe.call("PING")  # a closed pipe refuses at once

    run(scenario())


def test_a_connection_redis_drops_fails_what_waits(redis_server):
    async def scenario() -> None:
        pipe = await RedisPipe.open(redis_server.url, "victim")
        killer = await RedisPipe.open(redis_server.url, "killer")
        blocked = pipe.call("BLPOP", "pipe:never", 0)
        await killer.call("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
        with pytest.raises(ConnectionError):
            await blocked
        with pytest.raises(ConnectionError):
            await pipe.closed
        killer.close()

    run(scenario())


def test_a_password_a_user_and_a_db_from_the_url(redis_server):
    store = redis_server.client()
    port = redis_server.port
    store.execute_command("ACL", "SETUSER", "ada", "on", ">s3cret", "~*", "+@all")
    store.config_set("requirepass", "p@ss")
    try:

        async def scenario() -> None:
            with pytest.raises(ResponseError):  # a wrong password: told, not hidden
                await RedisPipe.open(f"redis://:wrong@127.0.0.1:{port}/0", "x")
            pipe = await RedisPipe.open(f"redis://:p%40ss@127.0.0.1:{port}/3", "default")
            await pipe.call("SET", "pipe:db", "three")
            assert await pipe.call("CLIENT", "GETNAME") == "default"
            user = await RedisPipe.open(f"redis://ada:s3cret@127.0.0.1:{port}/3", "ada")
            assert await user.call("ACL", "WHOAMI") == "ada"
            assert await user.call("GET", "pipe:db") == "three"
            pipe.close()
            user.close()

        run(scenario())
    finally:
        store.execute_command("AUTH", "p@ss")
        store.config_set("requirepass", "")
        store.execute_command("ACL", "DELUSER", "ada")
    assert redis_server.client().get("pipe:db") is None  # it went to db 3, not 0


def test_a_unix_socket_url(tmp_path: Path):
    socket = tmp_path / "redis.sock"
    server = RedisServer(None, None, "--unixsocket", str(socket), "--unixsocketperm", "700")
    server.start()
    try:

        async def scenario() -> str:
            pipe = await RedisPipe.open(f"unix://{socket}?db=2", "unix")
            answer = await pipe.call("ECHO", "over a socket file")
            pipe.close()
            return answer

        assert run(scenario()) == "over a socket file"
    finally:
        server.kill()


def test_a_tls_url_verifies_the_server_unless_told_not_to(tmp_path: Path):
    """rediss:// against redis-server's own TLS port, its certificate from a test CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    port = free_port()
    server = RedisServer(None, None, "--tls-port", str(port), "--port", "0")
    server.options += ("--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"]))
    server.options += ("--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no")
    server.start_unchecked()
    try:

        async def scenario() -> None:
            url = f"rediss://127.0.0.1:{port}/0"
            trusted = f"{url}?ssl_ca_certs={files['ca']}"
            for _ in range(200):  # until it listens (a hang guard bounds it)
                try:
                    pipe = await RedisPipe.open(trusted, "tls")
                    break
                except ConnectionRefusedError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("redis-server did not open its TLS port")
            assert await pipe.call("ECHO", "private") == "private"
            pipe.close()
            with pytest.raises(ssl.SSLCertVerificationError):  # a CA it does not know
                await RedisPipe.open(url, "untrusted")
            pipe = await RedisPipe.open(f"{url}?ssl_cert_reqs=none", "unverified")
            assert await pipe.call("PING") == "PONG"
            pipe.close()

        run(scenario())
    finally:
        server.kill()
