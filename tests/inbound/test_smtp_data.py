"""The listener's DATA reading against aiosmtpd's own, on the same bytes.

aiosmtpd runs for real on a loopback socket with a handler that keeps what it is given; ours
reads the same bytes, cut into the same pieces, from a stream reader. Small limits make size
and line-length refusals, and their order, easy to reach.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound.smtp_data import read_message

LINE_LIMIT = 64
SIZE_LIMIT = 400


class SmallSMTP(SMTP):
    line_length_limit = LINE_LIMIT


class Keeper:
    def __init__(self):
        self.content = None

    async def handle_DATA(self, server, session, envelope):
        self.content = envelope.original_content
        return "250 OK"


async def read_reply(reader) -> str:
    while True:
        line = (await reader.readline()).decode().rstrip("\r\n")
        if line[3:4] != "-":
            return line


async def aiosmtpd_reading(chunks: list[bytes], size_limit) -> tuple[bytes, str | None]:
    keeper = Keeper()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SmallSMTP(keeper, hostname="h", data_size_limit=size_limit), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_reply(reader)
        for command in (b"HELO c", b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"DATA"):
            writer.write(command + b"\r\n")
            await read_reply(reader)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        reply = await read_reply(reader)
        writer.write(b"NOOP\r\n")  # the session goes on after the message: nothing was over-read
        assert await read_reply(reader) == "250 OK"
        writer.close()
    finally:
        server.close()
    return (keeper.content, None) if reply == "250 OK" else (b"", reply)


async def our_reading(chunks: list[bytes], size_limit) -> tuple[bytes, str | None]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_data(b"NOOP\r\n")
    # A reader that missed the end would wait for ever: give up instead.
    result = await asyncio.wait_for(read_message(reader, size_limit, LINE_LIMIT), 10)
    assert await reader.readuntil(b"\r\n") == b"NOOP\r\n"  # nothing over-read either
    return result


def both(chunks, size_limit=SIZE_LIMIT):
    async def run():
        return await aiosmtpd_reading(chunks, size_limit), await our_reading(chunks, size_limit)

    # A thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


line = st.one_of(
    st.sampled_from(
        [
            b"",
            b"..",
            b"...",
            b".x",
            b"x.",
            b"a.b",
            b" .",
            b"x" * 61,
            b"x" * 62,
            b"x" * 63,
            b"x" * 64,
            b"x" * 65,
            b"x" * 200,
            b"y.\n.z",
            b"\r",
            b"a\rb",
        ]
    ),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r\n", b"\n")),
)
# A line of a lone dot would end the message: a client sends it stuffed, as "..".
message = st.lists(line.filter(lambda x: x != b"."), max_size=14).map(
    lambda lines: b"".join(x + b"\r\n" for x in lines)
)


@settings(max_examples=300, deadline=None)
@given(
    message, st.lists(st.integers(min_value=0), max_size=4), st.sampled_from([SIZE_LIMIT, 90, None])
)
def test_our_reading_gives_what_aiosmtpd_gives(body, points, size_limit):
    theirs, ours = both(cut(body + b".\r\n", points), size_limit)
    assert ours == theirs


def test_dot_stuffing_and_the_end_of_data():
    body = b"Subject: x\r\n\r\n..leading dot\r\nends in a dot.\r\n.\r\n"
    theirs, ours = both([body])
    assert ours == theirs == (b"Subject: x\r\n\r\n.leading dot\r\nends in a dot.\r\n", None)
    assert both([b".\r\n"])[1] == (b"", None)  # an empty message
    assert both([b"x.\r\n", b".\r\n"])[1] == (b"x.\r\n", None)  # the end in its own packet


def test_refusals_come_only_after_the_whole_message():
    too_big = b"".join(b"%d\r\n" % i for i in range(200)) + b".\r\n"
    theirs, ours = both([too_big])
    assert ours == theirs == (b"", "552 Error: Too much mail data")
    too_long = b"ok\r\n" + b"x" * 300 + b"\r\nafter\r\n.\r\n"
    theirs, ours = both([too_long])
    assert ours == theirs == (b"", "500 Line too long (see RFC5321 4.5.3.1.6)")


def test_a_message_bigger_than_the_line_limit_is_read_whole():
    lines = [b"line %03d of a long message, with a dot at the end." % i for i in range(40)]
    body = b"".join(x + b"\r\n" for x in lines) + b".\r\n"
    theirs, ours = both([body], size_limit=None)
    assert ours == theirs and ours[0].count(b"\r\n") == 40
