"""Baseline for bench/ingest.py: aiosmtpd with a handler that does nothing and says 250.

Same server options as `emailsync smtpd` (fixed hostname, size limit, timeout), so the ratio
between the two measures only what Email Sync adds."""

import asyncio
import sys

from aiosmtpd.smtp import SMTP


class NothingHandler:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"


async def main(port: int):
    loop = asyncio.get_running_loop()
    handler = NothingHandler()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="bare.bench",
            data_size_limit=25 * 1024 * 1024,
            enable_SMTPUTF8=True,
            timeout=60,
            loop=loop,
        ),
        "127.0.0.1",
        port,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
