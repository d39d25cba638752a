"""`ingest`, the one decision function, called directly (the adapters are tested elsewhere)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.agencies.models import SenderAddress, User
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import InboundAddress, Trigger, TriggerRecipient, UnmappedSender
from emailsync.review_requests.models import (
    AskedRecipient,
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
)

from .mail import Ed25519SigningKey, FakeDns, SigningKey, build

pytestmark = pytest.mark.django_db


def run(agency, raw, dns, rcpts=None, now=None):
    header, body = split_message(raw)
    evidence = gather_evidence(header, body, dns)
    return ingest(rcpts or [agency.bcc], header, body, evidence, "smtp", now=now)


def test_signed_email_from_a_recruiter_schedules_one_request_per_recipient(
    sync_agency, acme_key, dns
):
    raw = acme_key.sign(
        build(to=("Cara <cara@candidate.test>",), cc=("Clive Client <clive@client.test>",))
    )
    [result] = run(sync_agency, raw, dns)
    assert result.created and result.status == "accepted" and result.requests == 2
    trigger = Trigger.objects.get(pk=result.trigger_id)
    assert trigger.auth_method == "dkim_aligned" and "d=acme.test" in trigger.auth_detail
    assert trigger.recruiter.display_name == "Sam Carter" and trigger.subject == ""
    requests = ReviewRequest.objects.filter(agency=sync_agency).order_by("email")
    assert [(r.email, r.name) for r in requests] == [
        ("cara@candidate.test", "Cara"),
        ("clive@client.test", "Clive Client"),
    ]
    for request in requests:
        assert request.source == Source.EMAIL_SYNC and request.recruiter == trigger.recruiter
        assert request.deadline == trigger.received_at + timedelta(hours=72)
        assert trigger.received_at <= request.send_after <= request.deadline


def test_the_same_message_twice_creates_nothing_new(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(message_id="<same@acme.test>"))
    [first] = run(sync_agency, raw, dns)
    [again] = run(sync_agency, raw, dns)
    assert not again.created and again.trigger_id == first.trigger_id
    assert Trigger.objects.count() == 1 and ReviewRequest.objects.count() == 1


def test_one_log_record_per_batch_names_each_new_trigger_and_nothing_else(
    sync_agency, acme_key, dns, caplog
):
    raw = acme_key.sign(build(message_id="<logged@acme.test>", subject="Offer MARKER-7731"))
    with caplog.at_level("INFO", logger="emailsync.inbound"):
        [first] = run(sync_agency, raw, dns)
        run(sync_agency, raw, dns)  # a redelivery writes nothing, so says nothing
    written = [r.getMessage() for r in caplog.records if r.getMessage().startswith("wrote")]
    assert written == [f"wrote 1 trigger(s): {first.trigger_id} agency={sync_agency.pk} accepted"]


def test_without_message_id_the_header_block_identifies_a_retry(sync_agency, acme_key, dns):
    raw = build().replace(b"Message-ID:", b"X-Was-Message-ID:")
    raw = acme_key.sign(raw)
    assert run(sync_agency, raw, dns)[0].created
    relayed = b"Received: from relay.test by mx.test; Mon, 1 Jan 2026 00:00:00 +0000\r\n" + raw
    assert not run(sync_agency, relayed, dns)[0].created


def test_unsigned_email_is_quarantined_and_asks_nobody(sync_agency, dns):
    [result] = run(sync_agency, build(), dns)
    assert result.status == "quarantined" and result.reason == "sender_unauthenticated"
    assert not ReviewRequest.objects.exists()
    held = TriggerRecipient.objects.get()
    assert held.outcome == "held" and held.reason == "quarantined"
    assert "no DKIM signature" in Trigger.objects.get().auth_detail


def test_stranger_using_a_leaked_address_is_quarantined(sync_agency):
    stranger = SigningKey("stranger.test")
    raw = stranger.sign(build(sender="Eve <eve@stranger.test>"))
    [result] = run(sync_agency, raw, FakeDns(stranger))
    assert result.status == "quarantined" and result.reason == "sender_not_agency"
    assert not ReviewRequest.objects.exists()


def test_signature_by_another_domain_is_not_aligned(sync_agency):
    other = SigningKey("bulk-mailer.test")
    raw = other.sign(build())
    [result] = run(sync_agency, raw, FakeDns(other))
    assert result.reason == "sender_unauthenticated"


def test_trusted_signing_domain_of_the_agencys_ats(sync_agency):
    ats = SigningKey("mail.ats-vendor.test")
    sync = EmailSyncSettings.for_agency(sync_agency)
    sync.trusted_signing_domains = "ats-vendor.test"
    sync.save()
    [result] = run(sync_agency, ats.sign(build()), FakeDns(ats))
    assert result.status == "accepted"
    assert Trigger.objects.get().auth_method == "dkim_trusted_signer"


def test_trust_from_domain_setting_accepts_unsigned_mail(sync_agency, dns):
    EmailSyncSettings.objects.filter(agency=sync_agency).update(trust_from_domain=True)
    [result] = run(sync_agency, build(), dns)
    assert result.status == "accepted"


def test_email_sync_off_records_a_skip(sync_agency, acme_key, dns):
    EmailSyncSettings.objects.filter(agency=sync_agency).update(enabled=False)
    [result] = run(sync_agency, acme_key.sign(build()), dns)
    assert result.status == "skipped" and result.reason == "email_sync_off"
    assert TriggerRecipient.objects.get().reason == "email_sync_off"


def test_rotated_out_address_stops_after_the_grace_period(sync_agency, acme_key, dns):
    old = sync_agency.bcc
    InboundAddress.rotate(sync_agency)
    assert run(sync_agency, acme_key.sign(build()), dns, rcpts=[old])  # still in grace
    InboundAddress.objects.filter(agency=sync_agency, retired_at__isnull=False).update(
        accept_until=timezone.now() - timedelta(seconds=1)
    )
    assert run(sync_agency, acme_key.sign(build()), dns, rcpts=[old]) == []


def test_address_matching_ignores_case_and_the_cosmetic_slug(sync_agency, acme_key, dns):
    token = sync_agency.bcc.split("@")[0].rsplit("-", 1)[1]
    domain = sync_agency.bcc.split("@")[1]
    for address in (sync_agency.bcc.upper(), f"renamed.{token}@{domain}"):
        raw = acme_key.sign(build())
        assert run(sync_agency, raw, dns, rcpts=[address])[0].created


def test_unknown_sender_on_the_agency_domain_is_recorded_for_mapping(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(sender="New Hire <new.hire@acme.test>"))
    [result] = run(sync_agency, raw, dns)
    assert result.status == "accepted" and Trigger.objects.get().recruiter is None
    unmapped = UnmappedSender.objects.get()
    assert unmapped.email == "new.hire@acme.test" and unmapped.trigger_count == 1


def test_a_removed_members_own_sending_address_no_longer_speaks_for_the_agency(sync_agency):
    """A sending address off the agency's domains (a recruiter's personal mailbox) made its
    mail the agency's only while its owner was a member: after the admin removes them, their
    signed email with the BCC address is a stranger's (quarantined), not a request in their name.
    """
    admin = sync_agency.members().get(role=User.Role.ADMIN)
    sam = User.objects.get(email="sam@acme.test")
    personal = SigningKey("sam-home.test")
    SenderAddress.objects.create(agency=sync_agency, profile=sam.profile, email="sam@sam-home.test")
    raw = personal.sign(build(sender="Sam <sam@sam-home.test>"))
    [result] = run(sync_agency, raw, FakeDns(personal))
    assert result.status == "accepted" and Trigger.objects.get().recruiter == sam.profile

    sam.remove_from_agency(by=admin)
    raw = personal.sign(build(sender="Sam <sam@sam-home.test>", to=("Dan <dan@candidate.test>",)))
    [result] = run(sync_agency, raw, FakeDns(personal))
    assert result.status == "quarantined" and result.reason == "sender_not_agency"
    assert not ReviewRequest.objects.filter(email="dan@candidate.test").exists()


def test_plus_tagged_sender_is_matched_to_the_recruiter(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(sender="Sam <Sam+placements@ACME.test>"))
    run(sync_agency, raw, dns)
    assert Trigger.objects.get().recruiter.display_name == "Sam Carter"


def reasons_by_recipient(result) -> dict[str, str]:
    """Each recipient of the result's trigger with its reason code ('' when invited)."""
    rows = TriggerRecipient.objects.filter(trigger_id=result.trigger_id)
    return dict(rows.values_list("email", "reason"))


def test_suppressed_and_recent_recipients_are_skipped_with_reasons(sync_agency, acme_key, dns):
    Suppression.add("gone@candidate.test", Suppression.Reason.UNSUBSCRIBED)
    run(sync_agency, acme_key.sign(build(to=("a@candidate.test",))), dns)
    raw = acme_key.sign(build(to=("a@candidate.test", "gone@candidate.test", "b@candidate.test")))
    [result] = run(sync_agency, raw, dns)
    outcomes = reasons_by_recipient(result)
    assert outcomes == {
        "a@candidate.test": "recently_asked",
        "gone@candidate.test": "suppressed",
        "b@candidate.test": "",
    }


def test_a_plus_tag_is_the_same_person_for_unsubscribes_and_the_dedupe_window(
    sync_agency, acme_key, dns
):
    # Zoe unsubscribed as zoe@; Cara was asked as cara+cv@; Dan appears three times in one email.
    Suppression.add("zoe@candidate.test", Suppression.Reason.UNSUBSCRIBED)
    run(sync_agency, acme_key.sign(build(to=("cara+cv@candidate.test",))), dns)
    raw = acme_key.sign(
        build(
            to=("Zoe <zoe+jobs@candidate.test>", "cara@candidate.test", "dan+a@candidate.test"),
            cc=("dan@candidate.test", "Dan+B@Candidate.test"),
        )
    )
    [result] = run(sync_agency, raw, dns)
    outcomes = reasons_by_recipient(result)
    assert outcomes == {
        "zoe+jobs@candidate.test": "suppressed",
        "cara@candidate.test": "recently_asked",
        "dan+a@candidate.test": "",
    }
    assert list(ReviewRequest.objects.filter(email__startswith="dan").values_list("email")) == [
        ("dan+a@candidate.test",)
    ]
    # The ledger keeps each person once, under their mailbox.
    assert sorted(AskedRecipient.objects.values_list("email", flat=True)) == [
        "cara@candidate.test",
        "dan@candidate.test",
    ]


def test_dedupe_window_expires(sync_agency, acme_key, dns):
    then = timezone.now() - timedelta(days=91)
    run(sync_agency, acme_key.sign(build(to=("a@candidate.test",))), dns, now=then)
    [result] = run(sync_agency, acme_key.sign(build(to=("a@candidate.test",))), dns)
    assert result.requests == 1


def test_more_recipients_than_the_cap_is_a_bulk_send(sync_agency, acme_key, dns):
    many = tuple(f"person{i}@candidate.test" for i in range(11))
    [result] = run(sync_agency, acme_key.sign(build(to=many)), dns)
    assert result.status == "skipped" and result.reason == "bulk_send"
    assert not ReviewRequest.objects.exists()
    assert set(TriggerRecipient.objects.values_list("reason", flat=True)) == {"bulk_send"}


def test_a_bulk_send_keeps_each_excluded_recipients_own_reason(sync_agency, acme_key, dns):
    many = tuple(f"person{i}@candidate.test" for i in range(11))
    raw = acme_key.sign(build(to=(*many, "noreply@client.test"), cc=("priya@acme.test",)))
    [result] = run(sync_agency, raw, dns)
    assert result.status == "skipped" and result.reason == "bulk_send"
    reasons = dict(TriggerRecipient.objects.values_list("email", "reason"))
    assert reasons["noreply@client.test"] == "role_address"
    assert reasons["priya@acme.test"] == "colleague"
    assert {reasons[email] for email in many} == {"bulk_send"}


def test_when_everyone_is_excluded_each_keeps_their_own_reason(sync_agency, acme_key, dns):
    run(sync_agency, acme_key.sign(build(to=("a@candidate.test",))), dns)
    raw = acme_key.sign(build(to=("a@candidate.test", "no-reply@client.test")))
    [result] = run(sync_agency, raw, dns)
    assert result.status == "skipped" and result.reason == "no_recipients"
    reasons = dict(
        TriggerRecipient.objects.filter(trigger_id=result.trigger_id).values_list("email", "reason")
    )
    assert reasons == {"a@candidate.test": "recently_asked", "no-reply@client.test": "role_address"}


@pytest.mark.parametrize(
    "header, reason",
    [
        (("Auto-Submitted", "auto-replied"), "auto_submitted"),
        (("Precedence", "bulk"), "precedence_bulk"),
        (("List-Id", "<news.acme.test>"), "mailing_list"),
        (("Auto-Submitted", "auto-generated (from the ATS); type=placement"), "auto_submitted"),
    ],
)
def test_automatic_and_list_mail_is_ignored(sync_agency, acme_key, dns, header, reason):
    [result] = run(sync_agency, acme_key.sign(build(extra_headers=[header])), dns)
    assert result.status == "skipped" and result.reason == reason


def test_doubled_line_endings_cannot_hide_the_rest_of_the_header_block(sync_agency, acme_key, dns):
    """A To list folded with `\r\r\n` looked, to Python's parser, like the end of the header
    block after its first address: one request went out, and the recipient cap, the
    Auto-Submitted mark and the Message-ID after it were never seen. Now it is not trusted."""
    raw = build(
        to=[f"p{i}@c{i}.test" for i in range(12)],
        extra_headers=[("Auto-Submitted", "auto-replied")],
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    head = head.replace(b"To: p0@c0.test, ", b"To: p0@c0.test,\r\r\n ")
    [result] = run(sync_agency, acme_key.sign(head + b"\r\n\r\n" + body), dns)
    assert result.status == "skipped" and result.reason == "header_defects"
    assert not ReviewRequest.objects.exists()


@pytest.mark.parametrize(
    "to",
    [
        b"Bob <=?utf-8?b?/w==?=@candidate.test>, cara@candidate.test",
        b"bob@=?utf-8?b?/w==?=.test, cara@candidate.test",
    ],
)
def test_an_address_with_an_undecodable_encoded_word_is_a_header_defect_not_a_retry(
    sync_agency, acme_key, dns, to
):
    """The address parser kept the undecodable bytes as lone surrogates, which no database
    stores and hashing could not encode: the batch raised before any rule, so the sending
    server was told to retry (451) on every attempt, for ever."""
    raw = build(to=("cara@candidate.test",))
    raw = raw.replace(b"To: cara@candidate.test", b"To: " + to)
    [result] = run(sync_agency, acme_key.sign(raw), dns)
    assert result.status == "skipped" and result.reason == "header_defects"
    trigger = Trigger.objects.get()
    assert "to_invalid_utf8" in trigger.header_defects.split(",")
    assert not ReviewRequest.objects.exists()


def test_a_blocked_senders_unreadable_email_is_recorded_as_blocked_only(sync_agency, acme_key, dns):
    from emailsync.inbound.models import BlockedSender

    BlockedSender.objects.create(agency=sync_agency, email="sam@acme.test")
    raw = build(to=("cara@candidate.test",))
    raw = raw.replace(b"To: cara@candidate.test", b'To: "Cara <cara@candidate.test')
    [result] = run(sync_agency, acme_key.sign(raw), dns)
    trigger = Trigger.objects.get()
    assert (result.status, trigger.reason, trigger.header_defects) == (
        "blocked",
        "sender_blocked",
        "",
    )


def test_old_email_is_ignored(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(date="Mon, 05 Jan 2026 10:00:00 +0000"))
    [result] = run(sync_agency, raw, dns)
    assert result.reason == "too_old"


def test_an_ats_email_with_email_sync_data_is_a_trigger_even_if_auto_generated(
    sync_agency, acme_key, dns
):
    generated = ("Auto-Submitted", "auto-generated")
    data = [generated, ("X-EmailSync-Placement", "PL-2024-0099"), ("X-EmailSync-Role", "client")]
    [result] = run(sync_agency, acme_key.sign(build(extra_headers=data)), dns)
    assert result.status == "accepted"
    assert ReviewRequest.objects.get().placement_ref == "PL-2024-0099"
    invalid = [generated, ("X-EmailSync-Role", "boss")]  # no valid data: still automatic
    [skipped] = run(sync_agency, acme_key.sign(build(extra_headers=invalid)), dns)
    assert skipped.reason == "auto_submitted"


def test_an_ats_email_with_email_sync_data_is_a_trigger_even_if_marked_bulk(
    sync_agency, acme_key, dns
):
    """ATS mailers (JobAdder, Bullhorn) mark one-to-one mail Precedence: bulk too."""
    bulk = [("Precedence", "bulk"), ("List-Unsubscribe", "<mailto:unsub@ats.example>")]
    data = [*bulk, ("X-EmailSync-Placement", "PL-1001"), ("X-EmailSync-Role", "candidate")]
    [result] = run(sync_agency, acme_key.sign(build(extra_headers=data)), dns)
    assert result.status == "accepted"
    assert ReviewRequest.objects.filter(placement_ref="PL-1001").exists()
    [skipped] = run(sync_agency, acme_key.sign(build(extra_headers=bulk)), dns)
    assert skipped.reason == "precedence_bulk"  # no data: bulk mail as before
    listed = [("List-Id", "<news.acme.test>"), ("X-EmailSync-Placement", "PL-1002")]
    [skipped] = run(sync_agency, acme_key.sign(build(extra_headers=listed)), dns)
    assert skipped.reason == "mailing_list"  # a mailing list is never a trigger


def test_the_activity_record_names_the_person_as_the_request_greets_them(
    sync_agency, acme_key, dns
):
    """Structured data's name is the one the email uses, so the recipient's outcome (what the
    activity log and its CSV show) carries it too; a skipped colleague keeps the header's."""
    data = [("X-EmailSync-Name", "=?utf-8?q?S=C3=B8ren_Client?="), ("X-EmailSync-Role", "client")]
    raw = build(to=("Sol <soren@client.test>",), cc=("Pat <pat@acme.test>",), extra_headers=data)
    [result] = run(sync_agency, acme_key.sign(raw), dns)
    assert result.status == "accepted"
    assert ReviewRequest.objects.get().name == "Søren Client"
    outcomes = dict(
        TriggerRecipient.objects.filter(trigger_id=result.trigger_id).values_list("email", "name")
    )
    assert outcomes == {"soren@client.test": "Søren Client", "pat@acme.test": "Pat"}


def test_a_released_trigger_greets_by_the_structured_name_too(sync_agency, dns):
    from emailsync.review_requests.manual import release

    data = [("X-EmailSync-Name", "Zoe Candidate")]
    [held] = run(sync_agency, build(to=("Z <zoe@candidate.test>",), extra_headers=data), dns)
    assert held.status == "quarantined"
    trigger = Trigger.objects.get(pk=held.trigger_id)
    release(trigger, by=sync_agency.users.get(role="admin"))
    assert ReviewRequest.objects.get().name == "Zoe Candidate"


@pytest.mark.parametrize("value", ["no (sent by a person)", "No; reason=manual", " no "])
def test_auto_submitted_no_with_a_comment_or_parameter_is_a_person(
    sync_agency, acme_key, dns, value
):
    [result] = run(
        sync_agency, acme_key.sign(build(extra_headers=[("Auto-Submitted", value)])), dns
    )
    assert result.status == "accepted"


def test_auto_submitted_no_is_a_person(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(extra_headers=[("Auto-Submitted", "no")]))
    assert run(sync_agency, raw, dns)[0].status == "accepted"


def test_setup_test_keeps_the_subject_and_asks_only_the_admin_at_once(sync_agency, dns):
    admin = sync_agency.admins().get()
    key = SigningKey(admin.email.split("@")[1])
    sync = EmailSyncSettings.for_agency(sync_agency)
    sync.setup_test_until = timezone.now() + timedelta(minutes=30)
    sync.save()
    raw = key.sign(
        build(
            sender=f"Admin <{admin.email}>",
            to=(f"Admin <{admin.email}>", "cara@candidate.test"),
            subject="Testing our BCC",
        )
    )
    [result] = run(sync_agency, raw, FakeDns(key))
    trigger = Trigger.objects.get(pk=result.trigger_id)
    assert trigger.is_setup_test and trigger.subject == "Testing our BCC"
    assert trigger.subject_expires_at > timezone.now() + timedelta(days=6)
    request = ReviewRequest.objects.get()
    assert request.email == admin.email and request.source == Source.SETUP_TEST
    assert request.send_after <= timezone.now()
    preview = TriggerRecipient.objects.get(email="cara@candidate.test")
    assert preview.outcome == "skipped" and preview.reason == "setup_test_preview"


def test_a_setup_test_that_fails_the_sender_check_sends_nothing(sync_agency):
    """Quarantined means nothing is sent, the admin's own test request included: the page
    shows the verdict and what to fix instead."""
    admin = sync_agency.admins().get()
    sync = EmailSyncSettings.for_agency(sync_agency)
    sync.setup_test_until = timezone.now() + timedelta(minutes=30)
    sync.save()
    raw = build(sender=f"Admin <{admin.email}>", to=("cara@candidate.test",))  # unsigned
    [result] = run(sync_agency, raw, FakeDns())
    trigger = Trigger.objects.get(pk=result.trigger_id)
    assert trigger.is_setup_test and result.status == "quarantined"
    assert not ReviewRequest.objects.exists()
    outcomes = dict(trigger.recipients.values_list("email", "outcome"))
    assert outcomes == {admin.email: "held", "cara@candidate.test": "held"}


def test_a_setup_test_ends_when_its_email_arrives(sync_agency, dns):
    """The admin's next email, minutes later, is a real one: its candidate is asked and its
    subject is not kept."""
    admin = sync_agency.admins().get()
    key = SigningKey(admin.email.split("@")[1])
    sync = EmailSyncSettings.for_agency(sync_agency)
    sync.setup_test_until = timezone.now() + timedelta(minutes=30)
    sync.save()
    sender = f"Admin <{admin.email}>"
    test = key.sign(build(sender=sender, to=(sender,), subject="Testing our BCC"))
    [first] = run(sync_agency, test, FakeDns(key))
    assert Trigger.objects.get(pk=first.trigger_id).is_setup_test
    assert not EmailSyncSettings.for_agency(sync_agency).in_setup_test()
    real = key.sign(build(sender=sender, to=("Nina <nina@candidate.test>",), subject="Offer"))
    [second] = run(sync_agency, real, FakeDns(key), now=timezone.now() + timedelta(minutes=2))
    trigger = Trigger.objects.get(pk=second.trigger_id)
    assert not trigger.is_setup_test and trigger.subject == "" and second.status == "accepted"
    asked = ReviewRequest.objects.get(email="nina@candidate.test")
    assert asked.source == Source.EMAIL_SYNC


def test_another_admins_real_email_during_a_setup_test_is_not_taken_for_it(
    sync_agency, acme_key, dns
):
    """The setup test is the email of the admin who started it. A colleague admin who sends a
    real placement email meanwhile must have their candidate asked as usual, and its subject
    (the only subject ever kept is a setup test's) must not be kept or shown as the test."""
    ann = sync_agency.admins().get()
    User.objects.create_user(
        email="bob@acme.test",
        password="x" * 12,
        full_name="Bob Boss",
        agency=sync_agency,
        role=User.Role.ADMIN,
    )
    sync = EmailSyncSettings.for_agency(sync_agency)
    sync.start_setup_test(by=ann)
    real = acme_key.sign(
        build(sender="Bob <bob@acme.test>", to=("Nina <nina@candidate.test>",), subject="Offer")
    )
    [result] = run(sync_agency, real, dns)
    trigger = Trigger.objects.get(pk=result.trigger_id)
    assert not trigger.is_setup_test and trigger.subject == "" and result.status == "accepted"
    assert ReviewRequest.objects.get(email="nina@candidate.test").source == Source.EMAIL_SYNC
    assert EmailSyncSettings.for_agency(sync_agency).in_setup_test()  # Ann's test still waits
    key = SigningKey(ann.email.split("@")[1])
    test = key.sign(build(sender=f"Ann <{ann.email}>", to=(ann.email,), subject="Testing"))
    [result] = run(sync_agency, test, FakeDns(key))
    assert Trigger.objects.get(pk=result.trigger_id).subject == "Testing"


def test_envelope_without_our_addresses_records_nothing(sync_agency, acme_key, dns):
    assert run(sync_agency, acme_key.sign(build()), dns, rcpts=["someone@else.test"]) == []
    assert not Trigger.objects.exists()


def test_international_agency_domain_matches_its_unicode_from(make_agency):
    agency = make_agency(name="Bücher Jobs", domains=["bücher-jobs.test"])
    EmailSyncSettings.for_agency(agency)
    EmailSyncSettings.objects.filter(agency=agency).update(enabled=True)
    agency.bcc = InboundAddress.current_for(agency).address
    key = SigningKey("xn--bcher-jobs-9db.test")  # DKIM d= is always the A-label form
    raw = build().replace(
        b"From: Sam Carter <sam@acme.test>", "From: Anna <anna@bücher-jobs.test>".encode()
    )
    [result] = run(agency, key.sign(raw), FakeDns(key))
    assert result.status == "accepted", Trigger.objects.get().auth_detail


def prepared(agency, raw, dns):
    from emailsync.inbound.ingest import Inbound

    header, body = split_message(raw)
    return Inbound((agency.bcc,), header, body, gather_evidence(header, body, dns))


def test_a_batch_dedupes_within_itself(sync_agency, acme_key, dns):
    from emailsync.inbound.ingest import ingest_batch

    same = acme_key.sign(build(message_id="<twice@acme.test>", to=("a@candidate.test",)))
    other = acme_key.sign(build(to=("a@candidate.test", "b@candidate.test")))
    results = ingest_batch([prepared(sync_agency, m, dns) for m in (same, same, other)])
    [[first], [again], [third]] = results
    assert first.created and not again.created and again.trigger_id == first.trigger_id
    assert third.created and third.requests == 1
    outcome = dict(
        TriggerRecipient.objects.filter(trigger_id=third.trigger_id).values_list("email", "reason")
    )
    assert outcome == {"a@candidate.test": "recently_asked", "b@candidate.test": ""}
    assert ReviewRequest.objects.count() == 2


def test_one_failing_message_does_not_cost_the_others(sync_agency, acme_key, dns, monkeypatch):
    from emailsync.inbound import ingest as module
    from emailsync.inbound.smtp import commit_batch

    good = prepared(sync_agency, acme_key.sign(build(to=("a@candidate.test",))), dns)
    bad = prepared(sync_agency, acme_key.sign(build(to=("poison@candidate.test",))), dns)
    original = module.rules.decide

    def decide(candidates, **kwargs):
        if any(c.email == "poison@candidate.test" for c in candidates):
            raise RuntimeError("a bug met by one message")
        return original(candidates, **kwargs)

    monkeypatch.setattr(module.rules, "decide", decide)
    [good_result, bad_result] = commit_batch([good, bad])
    assert good_result[0].created and isinstance(bad_result, RuntimeError)
    assert list(ReviewRequest.objects.values_list("email", flat=True)) == ["a@candidate.test"]


def test_mapping_an_unknown_sender_credits_past_requests(sync_agency, acme_key, dns, add_member):
    run(
        sync_agency,
        acme_key.sign(
            build(sender="New <new.hire@acme.test>", to=("a@candidate.test", "b@candidate.test"))
        ),
        dns,
    )
    unmapped = UnmappedSender.objects.get()
    recruiter = add_member(sync_agency).profile
    assert unmapped.map_to(recruiter) == 2
    assert set(ReviewRequest.objects.values_list("recruiter", flat=True)) == {recruiter.pk}
    assert Trigger.objects.get().recruiter == recruiter
    # Later emails from that address are credited directly.
    run(
        sync_agency,
        acme_key.sign(build(sender="New <new.hire@acme.test>", to=("c@candidate.test",))),
        dns,
    )
    assert ReviewRequest.objects.get(email="c@candidate.test").recruiter == recruiter


def test_a_batch_links_every_row_to_its_own_trigger_and_request(sync_agency, acme_key, dns):
    """The batch's rows are written together (on PostgreSQL in one statement, linked by
    position): each outcome names its own trigger and request, each email its own request."""
    from emailsync.inbound.ingest import ingest_batch
    from emailsync.outbox.models import OutboundEmail

    messages = [
        build(to=("Ann <ann@candidate.test>", "Ben <ben@candidate.test>")),
        build(to=("Colleague <kim@acme.test>",), cc=("Cy <cy@client.test>",)),
        build(to=("Dee <dee@candidate.test>",)),
    ]
    batch = [prepared(sync_agency, acme_key.sign(m), dns) for m in messages]
    results = ingest_batch(batch)
    expected = [
        {"ann@candidate.test": "invited", "ben@candidate.test": "invited"},
        {"kim@acme.test": "skipped", "cy@client.test": "invited"},
        {"dee@candidate.test": "invited"},
    ]
    for [result], outcomes in zip(results, expected, strict=True):
        rows = TriggerRecipient.objects.filter(trigger_id=result.trigger_id)
        assert {r.email: r.outcome for r in rows} == outcomes
        for row in rows:
            if row.outcome == "invited":
                assert row.review_request.email == row.email
                assert row.review_request.agency_id == sync_agency.pk
            else:
                assert row.review_request is None
    assert ReviewRequest.objects.count() == 4
    # A request's email is queued when it falls due (outbox/due_requests.py), not here.
    assert not OutboundEmail.objects.exists()
    assert not ReviewRequest.objects.filter(queued_at__isnull=False).exists()
    assert len({r[0].trigger_id for r in results}) == 3


def test_another_agencys_history_does_not_count(sync_agency, acme_key, dns, make_agency):
    """Delivered messages, blocked senders and the dedupe ledger are each agency's own."""
    from emailsync.inbound.headers import message_id_hash
    from emailsync.inbound.models import BlockedSender
    from emailsync.review_requests.models import AskedRecipient

    other = make_agency(name="Other Recruitment", domains=["other.test"])
    now = timezone.now()
    Trigger.objects.create(
        agency=other, received_at=now, message_id_hash=message_id_hash("<shared@acme.test>")
    )
    BlockedSender.objects.create(agency=other, email="sam@acme.test")
    AskedRecipient.objects.create(agency=other, email="cara@candidate.test", last_asked_at=now)
    raw = acme_key.sign(build(message_id="<shared@acme.test>", to=("cara@candidate.test",)))
    [result] = run(sync_agency, raw, dns)
    assert result.created and result.status == "accepted" and result.requests == 1
    assert ReviewRequest.objects.get().agency == sync_agency


def test_an_unknown_sender_is_counted_within_and_across_batches(sync_agency, acme_key, dns):
    """One upsert per batch: the count adds up and the first sighting stays."""
    from emailsync.inbound.ingest import ingest_batch

    def from_new_hire():
        raw = acme_key.sign(build(sender="New Hire <new.hire+ats@acme.test>"))
        return prepared(sync_agency, raw, dns)

    earlier = timezone.now() - timedelta(hours=1)
    ingest_batch([from_new_hire(), from_new_hire()], now=earlier)
    first = UnmappedSender.objects.get()
    assert first.trigger_count == 2 and first.first_seen == first.last_seen == earlier
    ingest_batch([from_new_hire()])
    again = UnmappedSender.objects.get()
    assert again.trigger_count == 3 and again.first_seen == earlier < again.last_seen


def test_reading_an_agencys_facts_writes_nothing(make_agency):
    """An agency that never opened its Email Sync page has no settings row; the listener
    reads the defaults without creating one: it reads outside a transaction, and an insert
    for an agency being deleted would fail the batch instead of answering 550."""
    agency = make_agency()
    EmailSyncSettings.objects.filter(agency=agency).delete()
    from emailsync.inbound.facts import AgencyFacts

    facts = AgencyFacts.load_many([agency.pk])[agency.pk]
    assert not facts.settings.enabled and facts.settings.dedupe_days == 90
    assert not EmailSyncSettings.objects.filter(agency=agency).exists()


# --- Ed25519 signatures (RFC 8463) ----------------------------------------------------------


def test_an_ed25519_signature_by_the_agencys_domain_is_aligned(sync_agency):
    ed25519 = Ed25519SigningKey("acme.test")
    [result] = run(sync_agency, ed25519.sign(build()), FakeDns(ed25519))
    assert result.status == "accepted" and result.requests == 1
    trigger = Trigger.objects.get()
    assert trigger.auth_method == "dkim_aligned"
    assert trigger.auth_detail == "dkim=pass d=acme.test s=ed1"


def test_an_ed25519_signed_email_changed_on_the_way_is_quarantined(sync_agency):
    ed25519 = Ed25519SigningKey("acme.test")
    raw = ed25519.sign(build(body="Your first day is Monday.\r\n"))
    [result] = run(sync_agency, raw.replace(b"Monday", b"Friday"), FakeDns(ed25519))
    assert result.status == "quarantined" and result.reason == "sender_unauthenticated"
    assert "dkim=fail d=acme.test s=ed1" in Trigger.objects.get().auth_detail
    assert not ReviewRequest.objects.exists()


@pytest.mark.parametrize("published", ["rsa", "ed25519", "both"])
def test_an_email_signed_with_both_key_types_passes_on_whichever_is_published(
    sync_agency, acme_key, published
):
    # Senders that sign twice (Ed25519 for new verifiers, RSA for the rest) publish both keys,
    # but a verifier that knew only one kind, or a key lost from DNS, must still see a pass.
    ed25519 = Ed25519SigningKey("acme.test")
    raw = acme_key.sign(ed25519.sign(build()))
    keys = {"rsa": [acme_key], "ed25519": [ed25519], "both": [acme_key, ed25519]}[published]
    [result] = run(sync_agency, raw, FakeDns(*keys))
    assert result.status == "accepted"
    assert Trigger.objects.get().auth_method == "dkim_aligned"


def test_a_shared_mailbox_sent_on_behalf_of_a_recruiter_credits_the_recruiter(
    sync_agency, acme_key, dns
):
    # Outlook's "send on behalf of" (and Gmail's delegation): From is the shared mailbox,
    # Sender the person who wrote the email.
    raw = acme_key.sign(
        build(
            sender="Acme Jobs <jobs@acme.test>", extra_headers=[("Sender", "Sam <sam@acme.test>")]
        )
    )
    [result] = run(sync_agency, raw, dns)
    trigger = Trigger.objects.get(pk=result.trigger_id)
    assert result.status == "accepted" and trigger.sender == "jobs@acme.test"
    assert trigger.recruiter.display_name == "Sam Carter"
    assert ReviewRequest.objects.get().recruiter == trigger.recruiter
    # The shared address itself is still unknown: the admin sees it and may map it.
    assert UnmappedSender.objects.get().email == "jobs@acme.test"


def test_a_forged_sender_header_credits_no_one(sync_agency, acme_key, dns):
    # A stranger's email, quarantined: nothing about it is believed, Sender included.
    raw = build(sender="Eve <eve@stranger.test>", extra_headers=[("Sender", "sam@acme.test")])
    [result] = run(sync_agency, raw, dns)
    assert result.status == "quarantined"
    assert Trigger.objects.get(pk=result.trigger_id).recruiter is None


def test_the_from_address_is_credited_before_the_sender_header(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(extra_headers=[("Sender", "Sam Office <office@acme.test>")]))
    run(sync_agency, raw, dns)
    assert Trigger.objects.get().recruiter.display_name == "Sam Carter"

    stranger = acme_key.sign(
        build(
            sender="Acme Jobs <jobs@acme.test>",
            extra_headers=[("Sender", "Someone <sam@elsewhere.test>")],
        )
    )
    [result] = run(sync_agency, stranger, dns)
    assert Trigger.objects.get(pk=result.trigger_id).recruiter is None
    assert UnmappedSender.objects.get().email == "jobs@acme.test"
