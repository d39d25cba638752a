"""The SMTP listener: a thin aiosmtpd adapter around `ingest`.

RCPT answers from a short-lived in-process cache of addresses, so an unknown address costs no
database query after the first. DATA hands the message to a group committer: every message that
finishes DATA while the previous batch is being written joins the next batch, which is written in
one transaction; each sender hears `250` only after the commit that holds its trigger. That keeps
the database work per message small and shared, which is what lets one listener keep up with a
busy MX on SQLite as well as PostgreSQL.
"""

import asyncio
import contextlib
import fcntl
import functools
import logging
import re
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, TLSSetupException, syntax
from django.conf import settings
from django.db import close_old_connections, connection

from emailsync.operations.outages import database_unavailable, first_line
from emailsync.review_requests.bounces import process_bounce, verify_bounce_local
from emailsync.review_requests.models import EmailSyncSettings
from emailsync.review_requests.unsubscribe import (
    process_unsubscribe_mail,
    verify_unsubscribe_local,
)

from . import flood_limit, rows, smtp_data, wal_checkpoints
from .addresses import parse_recipient, redact
from .authenticity import NotCached
from .evidence import configured_resolver, gather_evidence
from .headers import parse_headers, split_message_view
from .ingest import Inbound, IngestResult, ingest_batch
from .models import InboundAddress

log = logging.getLogger("emailsync.smtpd")

MAX_RECIPIENTS = 20


@dataclass(frozen=True)
class AddressEntry:
    agency_id: int
    enabled: bool
    accept_until: float | None  # epoch seconds for a rotated-out address
    rate_limit_per_hour: int

    def in_use(self, now: float) -> bool:
        """The agency's current address, or a rotated-out one still in its grace period."""
        return self.accept_until is None or now < self.accept_until

    def accepts(self, now: float) -> bool:
        return self.enabled and self.in_use(now)


class AddressBook:
    """Token → agency, cached per process for a few seconds (both hits and misses)."""

    def __init__(self, ttl: float | None = None):
        self._ttl = ttl
        self._cache: dict[str, tuple[float, AddressEntry | None]] = {}

    def cached(self, token: str) -> tuple[bool, AddressEntry | None]:
        hit = self._cache.get(token)
        if hit and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def load(self, token: str) -> AddressEntry | None:
        fresh_connection()
        # Two plain lookups: a listener serving many agencies misses this cache often.
        row = None
        found = rows.select(
            InboundAddress, ["agency_id", "retired_at", "accept_until"], {"token": [token]}
        )
        if found:
            sync = rows.select(
                EmailSyncSettings, ["enabled", "rate_limit_per_hour"], {"agency_id": [found[0][0]]}
            )
            row = (*found[0], *(sync[0] if sync else (False, None)))
        entry = None
        if row:
            agency_id, retired, until, enabled, limit = row
            if retired is None:
                until_epoch = None
            else:
                until_epoch = until.timestamp() if until else 0.0
            entry = AddressEntry(agency_id, bool(enabled), until_epoch, limit or 600)
        if len(self._cache) > 100_000:  # bounded: a dictionary attack cannot grow it forever
            self._cache.clear()
        ttl = settings.EMAILSYNC_LISTENER_CACHE_SECONDS if self._ttl is None else self._ttl
        self._cache[token] = (time.monotonic() + ttl, entry)
        return entry


def fresh_connection() -> None:
    """Drop a broken or expired connection before database work on a listener thread (never
    inside a transaction, where closing would lose it).

    A connection that committed a moment ago skips the health check's extra round trip: a
    connection goes stale while it idles, and a busy listener's never does. If the database went
    away in that moment, the batch fails, its senders are answered 451 and retry, and the
    failure marks the connection to be checked (and replaced) before the next batch."""
    if connection.in_atomic_block:
        return
    close_old_connections()
    if time.monotonic() - getattr(_recent, "committed", -RECENT) < RECENT:
        connection.health_check_done = True


RECENT = 1.0  # seconds
_recent = threading.local()


# Our own addresses on the inbound domain that are not agencies': (check, handler).
RETURN_PATHS = {
    "bounce": (verify_bounce_local, process_bounce),
    "unsubscribe": (verify_unsubscribe_local, lambda local, raw: process_unsubscribe_mail(local)),
}


def count_recorded(agency_id: int, limit: int) -> int:
    fresh_connection()
    return flood_limit.recorded_in_last_hour(agency_id, limit)


def handle_return_mail(returns, raw: bytes) -> None:
    """Bounces and mailto unsubscribes of the review requests we sent (our mail, not a
    trigger's): acted on in memory, then dropped."""
    fresh_connection()
    for parsed in returns:
        outcome = RETURN_PATHS[parsed.kind][1](parsed.local, raw)
        log.info("%s address: %s", parsed.kind, outcome)


def prepare(rcpts, raw: bytes, header: bytes, body, dnsfunc, null_sender=False) -> Inbound:
    """The work that needs no database: parse once, verify signatures (maybe DNS)."""
    headers = parse_headers(header)
    evidence = gather_evidence(header, body, dnsfunc, headers=headers, raw=raw)
    return Inbound(tuple(rcpts), header, body, evidence, "smtp", headers, null_sender)


@contextlib.contextmanager
def writers_turn():
    """On SQLite, listener processes take turns at writing through a lock file beside the
    database. SQLite lets one writer in at a time and makes the others poll with sleeps of
    1, 2, 5, 10… ms, which several listeners sharing a port turned into long waits; a lock
    in the kernel wakes the next one the moment the previous commit is done."""
    name = wal_checkpoints.database_file()
    if name is None:  # not SQLite, or in memory: nothing to share a file with
        yield
        return
    handle = _LOCK_FILES.get(name)
    if handle is None:
        handle = _LOCK_FILES[name] = open(name + wal_checkpoints.LOCK_SUFFIX, "a+b")  # noqa: SIM115
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)


_LOCK_FILES: dict = {}


def commit_batch(items: list[Inbound]) -> list:
    """Write a batch of messages, all or nothing. If that fails, write them one by one,
    so one bad message costs only its own sender a retry (451), not everyone in the batch."""
    with writers_turn():
        return _commit_batch(items)


def _commit_batch(items: list[Inbound]) -> list:
    fresh_connection()
    wal_checkpoints.keep_checkpoints_out_of_commits()
    try:
        results = ingest_batch(items)
        _recent.committed = time.monotonic()
        return results
    except Exception as exc:
        if len(items) == 1 or database_unavailable(exc):  # one by one would fail the same way
            log_failure(f"batch of {len(items)} not written; answering 451", exc)
            return [exc] * len(items)
        log.warning("batch of %d failed; retrying one by one", len(items), exc_info=True)
    results = []
    for item in items:
        try:
            results.append(ingest_batch([item])[0])
        except Exception as exc:  # that sender's MTA retries later
            log_failure("ingest failed; answering 451", exc)
            results.append(exc)
    return results


def log_failure(what: str, exc: BaseException) -> None:
    """A database outage is one line per failure (sending servers retry every few minutes, and
    a traceback each time would bury the log); anything else is a fault, with its traceback."""
    if database_unavailable(exc):
        log.warning("%s: database unavailable (%s)", what, first_line(exc))
    else:
        log.error("%s", what, exc_info=exc)


class GroupCommitter:
    """Batches DATA-complete messages into shared transactions on a database thread.

    One batch is written at a time: everything that finishes DATA meanwhile joins the next.
    A second batch in flight (PostgreSQL allows it) was measured and lost: under load the
    sessions finish DATA together, so it only split one batch into two smaller ones, each
    paying the statements and the commit, and the two contended for the same agencies'
    locks (docs/PERFORMANCE.md, stop 16). `parallel` still allows more, and every write on
    the path is safe under concurrent batches, as it must be with several listener processes:
    new rows are inserts, and the rows two batches can share are upserts on their unique keys
    (the dedupe ledger, an unmapped sender), taken in a fixed order; a message delivered twice
    at once is settled by the trigger's unique key (one batch retries it and answers 451 or
    250)."""

    def __init__(self, max_batch: int = 200, linger: float | None = None, parallel: int = 1):
        self.max_batch = max_batch
        # Waiting a moment for more messages makes batches (and so commits) fewer; each sender
        # waits for its commit anyway, so a few milliseconds here cost little latency.
        self.linger = settings.EMAILSYNC_GROUP_COMMIT_MS / 1000 if linger is None else linger
        self.parallel = parallel
        self.executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="smtpd-db")
        self.pending: list = []
        self.wakeup: asyncio.Event | None = None
        self.slots: asyncio.Semaphore | None = None
        self.task: asyncio.Task | None = None
        self.in_flight: set[asyncio.Task] = set()

    async def submit(self, item):
        loop = asyncio.get_running_loop()
        if self.task is None:
            self.wakeup = asyncio.Event()
            self.slots = asyncio.Semaphore(self.parallel)
            self.task = loop.create_task(self.run())
        future = loop.create_future()
        self.pending.append((item, future))
        self.wakeup.set()
        return await future

    async def run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            if self.linger and len(self.pending) < self.max_batch:
                await asyncio.sleep(self.linger)
            self.wakeup.clear()
            while self.pending:
                await self.slots.acquire()
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                log.debug("committing a batch of %d", len(batch))
                task = loop.create_task(self.commit(loop, batch))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)

    async def commit(self, loop, batch):
        try:
            results = await loop.run_in_executor(
                self.executor, commit_batch, [item for item, _ in batch]
            )
        except Exception as exc:  # the executor itself failed: every sender retries
            log.exception("batch of %d not committed; answering 451", len(batch))
            results = [exc] * len(batch)
        finally:
            self.slots.release()
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self):
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.in_flight:  # let commits already under way finish and answer their senders
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        self.executor.shutdown(wait=True)


class ListenerState:
    """Shared by every session of one listener: caches, limits, the committer."""

    def __init__(
        self, *, max_sessions: int = 100, dnsfunc=None, address_ttl=None, processes: int = 1
    ):
        self.addresses = AddressBook(address_ttl)
        self.limiter = flood_limit.FloodLimit()
        self._flood_reads: dict[int, asyncio.Future] = {}
        self.committer = GroupCommitter()
        self.lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smtpd-lookup")
        self.max_sessions = max_sessions
        self.processes = processes  # listeners sharing the port each enforce a share of limits
        self.sessions = 0
        # Shutting down: the sessions in hand finish, but start no new message (a sending
        # server that reuses its connection would be cut off mid-way when the grace ends).
        self.stopping = False
        self.dnsfunc = dnsfunc
        path = wal_checkpoints.database_file()
        self.checkpointer = wal_checkpoints.Checkpointer(path).start() if path else None

    async def prepare(self, rcpts, raw: bytes, header: bytes, body, null_sender=False) -> "Inbound":
        """Parse and verify a message. When every DKIM key it needs is already cached this is
        pure CPU, done right here: a trip to a thread would cost more than it saves under
        the GIL. A key that needs DNS sends the work to a thread, so the loop never waits."""
        resolver = self.dnsfunc or configured_resolver()
        from_cache = getattr(resolver, "from_cache", None)
        if from_cache is not None:
            try:
                return prepare(rcpts, raw, header, body, from_cache, null_sender)
            except NotCached:
                pass
        return await asyncio.get_running_loop().run_in_executor(
            self.lookups, prepare, rcpts, raw, header, body, resolver, null_sender
        )

    def read_flood_count(self, agency_id: int, limit: int) -> asyncio.Future:
        """Read how many triggers every listener recorded for the agency in the last hour
        (one reading at a time per agency); the limiter has it when the future is done."""
        pending = self._flood_reads.get(agency_id)
        if pending is not None:
            return pending
        loop = asyncio.get_running_loop()
        try:
            pending = loop.run_in_executor(self.lookups, count_recorded, agency_id, limit)
        except RuntimeError as exc:  # the executor is shut down: the listener is stopping
            log_failure("flood-limit count not read", exc)
            pending = loop.create_future()
            pending.set_result(None)
            return pending
        read_at = self.limiter.reading_started(agency_id)
        self._flood_reads[agency_id] = pending

        def done(future: asyncio.Future) -> None:
            self._flood_reads.pop(agency_id, None)
            failed = future.cancelled() or future.exception() is not None
            if failed and not future.cancelled():
                log_failure("flood-limit count not read", future.exception())
            self.limiter.reading_done(agency_id, read_at, None if failed else future.result())

        pending.add_done_callback(done)
        return pending

    async def aclose(self):
        await self.committer.aclose()
        self.lookups.shutdown(wait=False, cancel_futures=True)
        if self.checkpointer is not None:
            self.checkpointer.stop()


@functools.cache
def _hook_names(handler_class: type) -> list[str]:
    return [name for name in dir(handler_class) if name.startswith("handle_")]


class Handler:
    """aiosmtpd hooks. Decisions are `ingest`'s; this only speaks SMTP."""

    def __init__(self, state: ListenerState):
        self.state = state

    def __dir__(self):
        """Only the hooks: for each new session aiosmtpd reads every attribute dir() names on
        its handler, twice (see ListenerSMTP.__dir__)."""
        return _hook_names(type(self))

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        if self.state.stopping:
            return "421 4.3.2 Shutting down; please try again in a moment"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients in one message"
        parsed = parse_recipient(address)
        if parsed.kind == "postmaster":
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if parsed.kind in RETURN_PATHS:
            if RETURN_PATHS[parsed.kind][0](parsed.local) is None:
                log.info("rcpt refused: forged %s address", parsed.kind)
                return "550 5.1.1 No such mailbox here"
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if parsed.kind != "agency":
            log.info("rcpt refused: %s", redact(address))
            return "550 5.1.1 No such mailbox here"
        found, entry = self.state.addresses.cached(parsed.token)
        if not found:
            try:
                entry = await asyncio.get_running_loop().run_in_executor(
                    self.state.lookups, self.state.addresses.load, parsed.token
                )
            except Exception as exc:  # database unavailable: a transient failure, the MTA retries
                log_failure("address lookup failed; answering 451", exc)
                return "451 4.3.0 Temporary lookup failure, please try again later"
        now = time.time()
        if entry is None or not entry.accepts(now):
            log.info("rcpt refused: %s", redact(address))
            if entry is not None and entry.in_use(now):  # so Email Sync is off
                # The bounce reaches the recruiter who BCC'd us: say what to do about it.
                return (
                    "550 5.1.1 Email Sync is switched off for this agency; "
                    "its admin can switch it on"
                )
            return "550 5.1.1 This Email Sync address does not exist or is no longer in use"
        agency_id, limit = entry.agency_id, entry.rate_limit_per_hour
        share = max(1, limit // self.state.processes)
        limiter = self.state.limiter
        if limiter.unread(agency_id):  # the agency's first email here: count the others' first
            with contextlib.suppress(Exception):  # logged; a flood limit never refuses mail
                # Shielded: other sessions wait on the same reading, and this session being
                # cancelled (its client gone) must not cancel it under them.
                await asyncio.shield(self.state.read_flood_count(agency_id, limit))
        elif limiter.due(agency_id):
            self.state.read_flood_count(agency_id, limit)  # in the background
        if not limiter.has_room(agency_id, share, limit):
            return "450 4.7.1 Too many messages for this address, please try again later"
        envelope.rcpt_tos.append(address)
        shares = getattr(envelope, "rate_shares", None)
        if shares is None:
            shares = envelope.rate_shares = {}
        shares[agency_id] = (share, limit)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        raw = envelope.original_content or b""
        parsed = [parse_recipient(a) for a in envelope.rcpt_tos]
        rcpts = [a for a, p in zip(envelope.rcpt_tos, parsed, strict=True) if p.kind == "agency"]
        envelope.content = envelope.original_content = None  # the body goes nowhere from here
        returns = [p for p in parsed if p.kind in RETURN_PATHS]
        if returns:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self.state.lookups, handle_return_mail, returns, raw
                )
            except Exception:  # the DSN or unsubscribe must not be lost: the sender retries
                log.exception("bounce or unsubscribe not recorded; answering 451")
                return "451 4.3.0 Temporary failure, please try again later"
            if not rcpts:
                return "250 2.0.0 OK"
        if not rcpts:
            # Only postmaster@: acknowledged, as RFC 5321 requires, but nothing is kept.
            log.info("postmaster message from %s accepted and discarded", session.peer)
            return "250 2.0.0 OK"
        # Checked again and counted here, with no await in between: sessions that all passed
        # RCPT together cannot all be let through past the limit.
        shares = getattr(envelope, "rate_shares", {})
        limiter = self.state.limiter
        if not all(limiter.has_room(agency, *limits) for agency, limits in shares.items()):
            return "450 4.7.1 Too many messages for this address, please try again later"
        for agency_id in shares:
            limiter.count(agency_id)
        header, body = split_message_view(raw)  # the body stays a view: one copy in memory
        try:
            inbound = await self.state.prepare(
                rcpts, raw, header, body, null_sender=envelope.mail_from == "<>"
            )
            del body
        except Exception:  # anything before the commit: the sending server must retry
            log.exception("message not read; answering 451")
            return "451 4.3.0 Temporary failure, please try again later"
        try:
            results: list[IngestResult] = await self.state.committer.submit(inbound)
        except Exception:  # the committer logged why, with its traceback, once
            return "451 4.3.0 Temporary failure, please try again later"
        if not results:
            return "550 5.1.1 This Email Sync address is no longer in use"
        if any(r.retry_later for r in results):
            # Whatever was recorded for other agencies is "already received" on the retry.
            for result in results:
                if result.retry_later and result.agency_id in shares:
                    limiter.refund(result.agency_id)
            return "451 4.4.3 Temporary DNS failure checking the DKIM signature, try again later"
        ids = ", ".join(str(r.trigger_id) for r in results)
        if all(not r.created for r in results):
            return f"250 2.0.0 OK: already received as trigger {ids}"
        return f"250 2.0.0 OK: trigger {ids}"


# `<local@domain>` with a dot-atom local part and a plain domain: what nearly every MTA sends.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>(?=[ \t]|$)"
)


_SESSION_TABLE_NAMES: dict[type, list[str]] = {}
_SIZE_REFUSALS = ("552 Error: Too much mail data", "552 Error: message size exceeds")


class ListenerSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on concurrent sessions and tolerance for long lines."""

    # RFC 5321 says 1,000 octets, but real mail (unwrapped HTML from ATS templates) breaks it;
    # refusing such mail would lose a trigger for a cosmetic rule.
    line_length_limit = 256 * 1024

    def __dir__(self):
        """Only the command methods. aiosmtpd builds its per-session tables from dir() and
        inspect.getmembers(), which reads every attribute there is, for each new connection (a
        tenth of a millisecond each). Its built-in AUTH mechanisms are left out on purpose: an
        MX takes no logins, and a sending server that sees AUTH offered may try it, fail, and
        defer the mail instead of delivering it (RFC 4954 3: offer only what can succeed)."""
        names = _SESSION_TABLE_NAMES.get(type(self))
        if names is None:
            names = _SESSION_TABLE_NAMES[type(self)] = sorted(
                name for name in super().__dir__() if name.startswith("smtp_")
            )
        return names

    def _getaddr(self, arg):
        """MAIL FROM and RCPT TO paths. aiosmtpd runs every one through the email package's
        full RFC 5322 parser (a tenth of a message's CPU here); the common simple form is
        read directly, with the same result (a property test holds the two together), and
        anything else still goes to aiosmtpd — whose parser raises on some junk, which is
        answered as a malformed address instead of a 500."""
        simple = _SIMPLE_PATH.match(arg)
        rest = arg[simple.end() :].lstrip(" \t") if simple else ""
        if simple is None or rest.startswith("("):  # a comment: the full parser's business
            try:
                return super()._getaddr(arg)
            except Exception:  # the email package trips on some junk ("<"): malformed
                return None, None
        address = simple.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    def __init__(self, handler: Handler, **kwargs):
        super().__init__(handler, **kwargs)
        self.listener_state = handler.state
        self.counted = False
        self._held_lines: list[str] = []

    # No login is offered (__dir__ says why), so HELP does not list AUTH among the commands;
    # one sent anyway still gets aiosmtpd's refusal.
    login_offered = False

    @syntax("AUTH <mechanism>", when="login_offered")
    async def smtp_AUTH(self, arg: str) -> None:
        await super().smtp_AUTH(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message read in pieces rather than line by line
        (`smtp_data` says why); the replies around it are aiosmtpd's."""
        if self._decode_data:  # never so here; aiosmtpd's own reading decodes
            return await super().smtp_DATA(arg)
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        if arg:
            return await self.push("501 Syntax: DATA")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, refusal = await smtp_data.read_message(
                self._reader, self.data_size_limit, self.line_length_limit
            )
        except asyncio.CancelledError:  # the client went away mid-message
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        if refusal:
            self._set_post_data_state()
            return await self.push(refusal)
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def data_received(self, data: bytes) -> None:
        """The timeout is for a silent client, not a slow one. aiosmtpd restarts its timer only
        when a command arrives, which made it a deadline for the whole of DATA: a 20 MiB message
        over a slow link was cut off every time (RFC 5321 4.5.3.2 gives a client minutes per
        block). Any bytes arriving move the deadline here, which costs one clock read."""
        if self._timeout_handle is not None:
            self._deadline = self.loop.time() + self._timeout_duration
        super().data_received(data)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Move the silence deadline without re-arming a timer. aiosmtpd cancels its timer and
        arms a new one on every command — seven per session, 7% of the listener's protocol
        CPU under cProfile. Here one timer per session stays armed; when it fires before the
        deadline (the client spoke since), it sleeps again until then."""
        self._deadline = self.loop.time() + (duration or self._timeout_duration)
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or handle.when() > self._deadline:
            if handle is not None:
                handle.cancel()
            self._timeout_handle = self.loop.call_at(self._deadline, self._silence_check)

    def _silence_check(self) -> None:
        if self.loop.time() < self._deadline:
            self._timeout_handle = self.loop.call_at(self._deadline, self._silence_check)
            return
        self._timeout_cb()

    _deadline = 0.0

    async def handle_exception(self, error: Exception) -> str:
        """A failed STARTTLS handshake is routine (scanners; old senders offering only TLS
        versions we refuse): one line, not aiosmtpd's two tracebacks at ERROR. Anything else
        is our fault, logged in full, and answered 451 so the sender retries rather than
        bouncing the email (aiosmtpd would say 500 and name the exception)."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__ or error
            log.info("STARTTLS failed for %s: %s", self.session.peer, cause.__class__.__name__)
            return "421 4.7.0 TLS negotiation failed"
        log.exception("SMTP session error with %s", self.session.peer)
        return "451 4.3.0 Temporary failure, please try again later"

    def _timeout_cb(self):
        """Say why before closing (RFC 5321 3.8: a 421 where possible), so the sending server
        logs a timeout rather than a dropped connection; it retries either way."""
        if self.transport is not None and not self.transport.is_closing():
            log.info("session timed out after %s s of silence", self._timeout_duration)
            self.transport.write(
                f"421 4.4.2 {self.hostname} Timeout, closing the connection\r\n".encode()
            )
        super()._timeout_cb()

    async def push(self, status):
        """aiosmtpd's replies, less an AUTH offer with nothing in it, a multi-line reply in one
        write, and its size refusals with the enhanced status code (RFC 3463) and the limit, so
        the sender's bounce tells the recruiter what to do."""
        if isinstance(status, str) and status.startswith("250-AUTH"):
            return None  # aiosmtpd lists AUTH after STARTTLS even with no mechanism to offer
        if isinstance(status, str) and status.startswith("250-"):
            # A line of a multi-line reply (EHLO's): held and sent with its last line, so the
            # reply is one write and one packet, not one per line (aiosmtpd writes each line).
            self._held_lines.append(status)
            return None
        if self._held_lines and isinstance(status, str):
            status = "\r\n".join([*self._held_lines, status])
            self._held_lines.clear()
        if isinstance(status, str) and status.startswith(_SIZE_REFUSALS):
            size, mib = self.data_size_limit or 0, 1024 * 1024
            limit = f"{size // mib} MiB" if size % mib == 0 else f"{size:,} bytes"
            status = f"552 5.3.4 Message too big: the limit here is {limit}"
        return await super().push(status)

    def connection_made(self, transport):
        state = self.listener_state
        if self.transport is None and not self.counted:
            if state.sessions >= state.max_sessions:
                transport.write(b"421 4.3.2 Too many connections, please try again later\r\n")
                transport.close()
                self.refused = True
                return
            state.sessions += 1
            self.counted = True
        super().connection_made(transport)

    def connection_lost(self, error):
        if getattr(self, "refused", False):
            return
        if self.counted:
            self.listener_state.sessions -= 1
            self.counted = False
        super().connection_lost(error)

    def eof_received(self):
        if getattr(self, "refused", False):
            return False
        return super().eof_received()


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def protocol_factory(
    state: ListenerState,
    *,
    tls: ssl.SSLContext | None = None,
    data_size_limit: int = 25 * 1024 * 1024,
    timeout: float = 60,
):
    handler = Handler(state)
    hostname = settings.EMAILSYNC_SMTP_HOSTNAME

    def factory():
        return ListenerSMTP(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Email Sync",
            tls_context=tls,
            require_starttls=False,
            timeout=timeout,
            loop=asyncio.get_running_loop(),
        )

    return factory
