"""Internationalised addresses: IDN domains go out as A-labels, Unicode names stay Unicode, and
an address that needs SMTPUTF8 fails on its own with a reason a person can act on."""

import email.header
import email.utils

import pytest

from emailsync.agencies.models import SenderAddress, User
from emailsync.outbox import rendering
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sending_addresses")]


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    ("to_email", "name", "a_label"),
    [
        ("zoe@bücher.de", "Zoë Müller", "zoe@xn--bcher-kva.de"),
        # Ingest stores `renee@xn--mnchen-3ya.de` in its Unicode form.
        ("renee@münchen.de", "Renée", "renee@xn--mnchen-3ya.de"),
        ("kenji@例え.jp", "健二", "kenji@xn--r8jz45g.jp"),
    ],
)
def test_an_idn_recipient_gets_the_a_label_and_keeps_the_unicode_name(
    sink, acme, make_request, to_email, name, a_label
):
    request = make_request(acme, to_email, name=name, role="candidate")
    stats = Worker().run_once()
    assert (stats.sent, stats.failed) == (1, 0)
    [received] = sink.received
    assert received.rcpt_tos == [a_label]
    assert header_block(received.raw).isascii()  # 7-bit headers: any relay accepts them
    [to] = received.message["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, a_label)
    row = request.emails.get()
    request.refresh_from_db()
    assert (row.status, row.status_reason, row.last_error) == ("sent", "", "")
    assert request.status == "sent"
    assert row.to_email == to_email  # the stored address is untouched


def test_a_non_ascii_local_part_fails_clearly_without_blocking_the_batch(sink, acme, make_request):
    needs_utf8 = make_request(acme, "李明@例え.jp", name="李明")
    idn = make_request(acme, "zoe@bücher.de", name="Zoë Müller")
    plain = make_request(acme, "cara@candidate.test")
    stats = Worker().run_once()
    assert (stats.sent, stats.failed, stats.retried) == (2, 1, 0)
    assert sorted(r.rcpt_tos[0] for r in sink.received) == [
        "cara@candidate.test",
        "zoe@xn--bcher-kva.de",
    ]
    row = needs_utf8.emails.get()
    needs_utf8.refresh_from_db()
    assert row.status == "failed" and row.next_attempt_at is None  # permanent: no retries
    assert row.status_reason == row.last_error == rendering.SMTPUTF8_NEEDED
    assert "SMTPUTF8" in row.status_reason and "codec" not in row.status_reason
    assert (needs_utf8.status, needs_utf8.status_reason) == ("failed", rendering.SMTPUTF8_NEEDED)
    assert idn.emails.get().status == plain.emails.get().status == "sent"
    assert Worker().run_once().claimed == 0  # nothing left to retry


def test_unicode_names_idn_reply_to_and_idn_settings_render(sink, acme, make_request, settings):
    settings.EMAILSYNC_FROM_EMAIL = "bewertungen@bücher.example"
    settings.EMAILSYNC_INBOUND_DOMAIN = "eingang.bücher.example"
    acme.name = "Bäckerei Personal GmbH"
    acme.save()
    acme.sam.display_name = "Zoë Ärger"
    acme.sam.save()
    # The first sending address cannot be written in a 7-bit header: the next one is used.
    acme.sam.senders.all().delete()
    SenderAddress.objects.create(agency=acme, profile=acme.sam, email="ärger@bäckerei.de")
    SenderAddress.objects.create(agency=acme, profile=acme.sam, email="zoe@bäckerei.de")
    make_request(acme, "zoe@bücher.de", name="Zoë Müller")
    stats = Worker().run_once()
    assert stats.sent == 1
    [received] = sink.received
    message = received.message
    assert header_block(received.raw).isascii()
    assert email.utils.parseaddr(str(message["From"])) == (
        "Zoë Ärger at Bäckerei Personal GmbH",
        "bewertungen@xn--bcher-kva.example",
    )
    assert message["Reply-To"].addresses[0].addr_spec == "zoe@xn--bckerei-5wa.de"
    assert received.mail_from.endswith("@eingang.xn--bcher-kva.example")
    assert "@eingang.xn--bcher-kva.example?subject=unsubscribe>" in message["List-Unsubscribe"]
    assert "Zoë Ärger" in message["Subject"] and "Bäckerei Personal GmbH" in message["Subject"]


def test_a_reply_to_with_no_usable_address_is_left_out(sink, acme, make_request):
    acme.sam.senders.all().delete()
    SenderAddress.objects.create(agency=acme, profile=acme.sam, email="sam@bücher..de")
    User.objects.filter(pk=acme.sam.user.pk).update(email="李@bücher.de")
    User.objects.filter(agency=acme, role=User.Role.ADMIN).update(email="管理@bücher.de")
    make_request(acme, "cara@candidate.test")
    assert Worker().run_once().sent == 1
    [received] = sink.received
    assert "Reply-To" not in received.message


def test_the_esp_path_gets_ascii_addresses_too(acme, make_request):
    request = make_request(acme, "zoe@bücher.de", name="Zoë Müller")
    row = OutboundEmail.objects.select_related("review_request__agency").get(review_request=request)
    message = rendering.build_message(row, esp=True)
    [to] = message.to
    name, address = email.utils.parseaddr(to)
    assert address == "zoe@xn--bcher-kva.de"
    assert str(email.header.make_header(email.header.decode_header(name))) == "Zoë Müller"
    assert message.message().as_bytes().split(b"\n\n", 1)[0].isascii()
    row.to_email = "李明@例え.jp"
    with pytest.raises(ValueError, match="SMTPUTF8"):
        rendering.build_message(row, esp=True)


def test_domains_are_encoded_with_idna_2008_and_uts46():
    assert rendering.ascii_domain("bücher.de") == "xn--bcher-kva.de"
    assert rendering.ascii_domain("BÜCHER.DE") == "xn--bcher-kva.de"  # UTS #46 maps case
    assert rendering.ascii_domain("bücher.de.") == "xn--bcher-kva.de."  # a root dot stays
    assert rendering.ascii_domain("faß.de") == "xn--fa-hia.de"  # IDNA 2003 would send to fass.de
    assert (
        rendering.ascii_domain("☃.net") == "xn--n3h.net"
    )  # IDNA 2008 rejects it; 2003 still allows
    assert rendering.ascii_domain("candidate.test") == "candidate.test"
    with pytest.raises(ValueError):
        rendering.ascii_domain("bücher..de")


def test_domains_fall_back_to_the_stdlib_codec_without_the_idna_package(monkeypatch):
    monkeypatch.setattr(rendering, "idna", None)
    assert rendering.ascii_domain("bücher.de") == "xn--bcher-kva.de"
    assert rendering.ascii_domain("faß.de") == "fass.de"
