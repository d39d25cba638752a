import asyncio
import io
import socket
import threading

import pytest

from emailsync.inbound.management.commands.smtpd import listening_socket


def test_accepted_connections_have_nagle_off():
    """Multi-line SMTP replies must not wait for the client's delayed ACK (~40 ms each)."""
    sock = listening_socket("127.0.0.1", 0, reuse_port=False)
    port = sock.getsockname()[1]
    seen = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            raw = transport.get_extra_info("socket")
            seen.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main():
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    # In a thread of its own: browser tests may leave an event loop running in this one.
    runner = threading.Thread(target=asyncio.run, args=(main(),))
    runner.start()
    runner.join(10)
    assert seen and seen[0] != 0


@pytest.mark.django_db(transaction=True)  # the command checks the database first
def test_the_listener_sets_its_startup_objects_aside_before_serving(monkeypatch):
    """Full garbage-collector passes must not walk Django and every module each time: the
    command freezes what exists at startup, then serves. What it loads lazily and every email
    needs (the Public Suffix List) is loaded first."""
    import gc

    from django.core.management import call_command

    from emailsync.inbound import authenticity
    from emailsync.inbound.management.commands import smtpd

    frozen_when_serving, thresholds_when_serving, suffixes_when_serving = [], [], []

    def run(coroutine):
        suffixes_when_serving.append(authenticity._public_suffix_list.cache_info().currsize)
        frozen_when_serving.append(gc.get_freeze_count())
        thresholds_when_serving.append(gc.get_threshold())
        coroutine.close()  # the listener itself is tested elsewhere

    unused = socket.socket()
    monkeypatch.setattr(smtpd.asyncio, "run", run)
    monkeypatch.setattr(smtpd, "listening_socket", lambda *args: unused)
    thresholds = gc.get_threshold()
    gc.unfreeze()
    authenticity._public_suffix_list.cache_clear()
    try:
        call_command("smtpd", "--port", "0", "--processes", "1", stdout=io.StringIO())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        unused.close()
    assert frozen_when_serving and frozen_when_serving[0] > 10_000
    # Young objects collected every 10,000 net allocations rather than Python's 700.
    assert thresholds_when_serving == [(10_000, 10, 10)]
    # The Public Suffix List is parsed before the first email, not during its batch.
    assert suffixes_when_serving == [1]


@pytest.mark.parametrize(
    "option, value",
    [("--port", "99999"), ("--port", "-1"), ("--processes", "-1")]
    + [("--max-sessions", "0"), ("--max-size", "0")],
)
def test_impossible_listener_options_are_refused_before_it_starts(monkeypatch, option, value):
    """Each would otherwise start something other than what the operator asked for, and say
    it had: a port above 65535 wrapped round to another port the banner did not name, a
    negative --processes started no listener and exited 0, and --max-sessions 0 answered
    every sender 421."""
    from django.core.management import CommandError, call_command

    from emailsync.inbound.management.commands import smtpd

    monkeypatch.setattr(smtpd.asyncio, "run", lambda coroutine: coroutine.close())
    monkeypatch.setattr(smtpd.Command, "supervise", lambda self, *args: None)
    monkeypatch.setattr(smtpd, "warn_if_database_unreachable", lambda: None)
    with pytest.raises(CommandError, match=option):
        call_command("smtpd", option, value, stdout=io.StringIO())
