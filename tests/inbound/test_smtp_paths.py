"""The listener reads simple MAIL FROM / RCPT TO paths itself; the result must be exactly
aiosmtpd's, whose full parser still handles everything else."""

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound.smtp import ListenerSMTP

LISTENER = object.__new__(ListenerSMTP)  # _getaddr needs no session state
AIOSMTPD = object.__new__(SMTP)

atext = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)  # RFC 5322 atext
label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,4}[A-Za-z0-9])?", fullmatch=True)
noise = st.sampled_from(["", " ", "  ", "\t", ".", "..", "@", "<", ">", '"', "(c)", "[", "\\"])
params = st.sampled_from(["", " SIZE=1000", " BODY=8BITMIME", " SMTPUTF8", "SIZE=1", "\tX=1"])


@st.composite
def paths(draw):
    local = ".".join(draw(st.lists(atext, min_size=1, max_size=3)))
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    parts = [draw(noise), "<", draw(noise), local, draw(noise), "@", domain, draw(noise), ">"]
    if draw(st.booleans()):  # mostly well-formed, sometimes with junk dropped in
        parts = ["<", local, "@", domain, ">"]
    return "".join(parts) + draw(params)


@settings(max_examples=600, deadline=None)
@given(st.one_of(paths(), st.text(max_size=40)))
def test_same_result_as_aiosmtpd(arg):
    assert LISTENER._getaddr(arg) == aiosmtpd_result(arg)


def aiosmtpd_result(arg):
    try:
        return AIOSMTPD._getaddr(arg)
    except Exception:  # e.g. IndexError on "<"; the listener calls that malformed
        return None, None


@pytest.mark.parametrize(
    "arg",
    [
        "<cara@candidate.test>",
        "<Cara.Candidate+tag@Mail.Candidate.test> SIZE=1600 BODY=8BITMIME",
        "<acme-x7k2m9q4p8r3t5v1@in.emailsync.test>",
        "<>",
        " <a@b.test>",
        "<a@b.test>SIZE=1",
        '<"quoted local"@b.test>',
        "<a..b@b.test>",
        "<a@-b.test>",
        "<a@[127.0.0.1]>",
        "<josé@exämple.test>",
        "a@b.test",
        "",
    ],
)
def test_real_world_paths(arg):
    assert LISTENER._getaddr(arg) == aiosmtpd_result(arg)


def test_junk_that_trips_the_email_package_is_a_malformed_address():
    with pytest.raises(IndexError):
        AIOSMTPD._getaddr("<")
    assert LISTENER._getaddr("<") == LISTENER._getaddr('"') == (None, None)


def test_the_fast_path_is_taken_for_the_common_form(monkeypatch):
    def refuse(self, arg):
        raise AssertionError("the full parser was used")

    monkeypatch.setattr(SMTP, "_getaddr", refuse)
    assert LISTENER._getaddr("<cara@candidate.test> SIZE=10") == ("cara@candidate.test", "SIZE=10")


def test_session_tables_are_the_same_as_aiosmtpds():
    """The listener lists only its command and AUTH methods to dir(); aiosmtpd's per-session
    tables built from it must still be complete."""
    import asyncio
    import threading

    from emailsync.inbound.smtp import Handler, ListenerState

    async def build():
        handler = Handler(ListenerState())
        ours = ListenerSMTP(handler, hostname="mx.test", loop=asyncio.get_running_loop())

        class PlainListener(ListenerSMTP):
            def __dir__(self):
                return object.__dir__(self)

        plain = PlainListener(handler, hostname="mx.test", loop=asyncio.get_running_loop())
        return ours, plain

    # On a thread of its own: another test's event loop may still be set on this one.
    built = []
    worker = threading.Thread(target=lambda: built.append(asyncio.run(build())))
    worker.start()
    worker.join(30)
    ours, plain = built[0]
    assert sorted(ours._smtp_methods) == sorted(plain._smtp_methods)
    assert "DATA" in ours._smtp_methods and "STARTTLS" in ours._smtp_methods
    # No login mechanisms at all, deliberately (an MX takes no logins); the full table has them.
    assert ours._auth_methods == {} and sorted(plain._auth_methods) == ["LOGIN", "PLAIN"]
    assert sorted(ours._handle_hooks) == sorted(plain._handle_hooks)
