"""Every recipient rule and reason code, as one table (no database)."""

import pytest

from emailsync.inbound import recipients as rules
from emailsync.inbound.recipients import Recipient, decide

BASE = dict(
    sender="sam@acme.test",
    inbound_domain="in.emailsync.test",
    agency_domains={"acme.test", "acme-careers.test"},
    member_emails={"sam@acme.test", "priya.personal@gmail.test"},
    suppressed={"gone@candidate.test"},
    recently_asked={"again@candidate.test"},
    cap=10,
)

TABLE = [
    ("cara@candidate.test", ""),
    ("acme-k7q2m9x4t1abcdef@in.emailsync.test", rules.INBOUND_ADDRESS),
    ("sam@acme.test", rules.SENDER),
    ("sam+crm@acme.test", rules.SENDER),
    ("boss@acme.test", rules.COLLEAGUE),
    ("jobs@acme-careers.test", rules.COLLEAGUE),
    ("priya.personal@gmail.test", rules.COLLEAGUE),
    ("noreply@client.test", rules.ROLE_ADDRESS),
    ("no-reply@client.test", rules.ROLE_ADDRESS),
    ("donotreply@client.test", rules.ROLE_ADDRESS),
    ("mailer-daemon@client.test", rules.ROLE_ADDRESS),
    ("postmaster@client.test", rules.ROLE_ADDRESS),
    ("bounces+123@client.test", rules.ROLE_ADDRESS),
    ("zoe@localhost", rules.UNDELIVERABLE),
    ("zoe@[192.0.2.1]", rules.UNDELIVERABLE),
    ("'boss@client.example'", rules.UNDELIVERABLE),  # Outlook's quotes read as the address
    ("boss@client..example", rules.UNDELIVERABLE),
    ("imceaex-_o=exchangelabs_cn=recipients_cn=abc-priya@eu.prod.outlook.com", rules.UNDELIVERABLE),
    ("zoe@exämple.org", ""),  # an IDN is an internet domain
    ("zoë@example.org", rules.UNSENDABLE),  # asked, it would fail at sending, days later
    ("李明@例え.jp", rules.UNSENDABLE),
    ("zoe@example.org.", ""),  # the root's dot
    ("zoe@example.org\u3002", ""),  # the same, typed with a full-width input method
    ("o'brien@client.example", ""),  # an apostrophe belongs in a local part
    ("gone@candidate.test", rules.SUPPRESSED),
    ("gone+jobs@candidate.test", rules.SUPPRESSED),  # one mailbox: the unsubscribe holds
    ("again@candidate.test", rules.RECENTLY_ASKED),
    ("Again+CV@candidate.test", rules.RECENTLY_ASKED),
]


@pytest.mark.parametrize("email, reason", TABLE)
def test_each_rule(email, reason):
    [decision] = decide([Recipient(email)], **BASE)
    assert decision.reason == reason
    assert decision.invite is (reason == "")


def test_every_reason_code_is_covered_and_described():
    covered = {reason for _, reason in TABLE if reason} | {rules.BULK_SEND}
    pipeline_only = {rules.SETUP_TEST_PREVIEW, rules.QUARANTINED}  # set by ingest, tested there
    assert covered | pipeline_only == set(rules.RECIPIENT_REASONS)


def test_duplicates_and_case_collapse_to_one_recipient():
    decisions = decide(
        [Recipient("Cara@Candidate.test", "Cara"), Recipient("cara@candidate.test")], **BASE
    )
    assert [(d.email, d.name) for d in decisions] == [("cara@candidate.test", "Cara")]


def test_outlooks_single_quotes_around_a_name_are_not_part_of_it():
    decisions = decide(
        [Recipient("zoe@candidate.test", "'Zoe Candidate'"), Recipient("o@x.test", "O'Brien")],
        **BASE,
    )
    assert [d.name for d in decisions] == ["Zoe Candidate", "O'Brien"]


def test_an_address_given_as_the_name_is_no_name():
    """Outlook names a recipient not in the address book by the address ('zoe@x' <zoe@x>), and
    ATS templates fall back to it: the request would greet nobody by it, but the review form
    offered it as the reviewer's public name, so a reviewer's address could end up published."""
    decisions = decide(
        [
            Recipient("zoe@candidate.test", "'zoe@candidate.test'"),
            Recipient("bob@client.test", "bob@client.test"),
            Recipient("ann@client.test", "Ann Client (ann@client.test)"),
            Recipient("al@client.test", "Al @ Client Ltd"),
            Recipient("jane@client.test", "Jane Doe - jane@client.test"),
            Recipient("zed@client.test", "zed@client.test via LinkedIn"),
            Recipient("two@client.test", "one@client.test;two@client.test"),
            Recipient("ivy@client.test", "Ivy <ivy@client.test>"),
        ],
        **BASE,
    )
    assert [d.name for d in decisions] == [
        "",
        "",
        "Ann Client",
        "Al @ Client Ltd",
        "Jane Doe",
        "",
        "",
        "Ivy",
    ]


def test_plus_tags_of_one_mailbox_are_one_recipient():
    decisions = decide(
        [
            Recipient("zoe+jobs@candidate.test", "Zoe"),
            Recipient("zoe@candidate.test"),
            Recipient("Zoe+Other@Candidate.test"),
        ],
        **BASE,
    )
    assert [(d.email, d.name, d.invite) for d in decisions] == [
        ("zoe+jobs@candidate.test", "Zoe", True)
    ]


def test_when_one_form_of_a_mailbox_bounced_another_form_listed_is_asked():
    rules_now = {**BASE, "suppressed": {"dan+old@candidate.test"}}
    [decision] = decide(
        [Recipient("dan+old@candidate.test", "Dan"), Recipient("dan@candidate.test")], **rules_now
    )
    assert (decision.email, decision.name, decision.invite) == ("dan@candidate.test", "Dan", True)


def test_a_tagged_address_suppressed_on_its_own_does_not_suppress_its_mailbox():
    # A bounce suppresses the address that bounced only (its system may refuse tags).
    rules_now = {**BASE, "suppressed": {"zoe+old@candidate.test"}}
    [tagged] = decide([Recipient("zoe+old@candidate.test")], **rules_now)
    [plain] = decide([Recipient("zoe@candidate.test")], **rules_now)
    assert tagged.reason == rules.SUPPRESSED and plain.invite


def test_cap_counts_only_people_who_would_be_asked():
    colleagues = [Recipient(f"c{i}@acme.test") for i in range(20)]
    ten = [Recipient(f"p{i}@candidate.test") for i in range(10)]
    assert sum(d.invite for d in decide(colleagues + ten, **BASE)) == 10


def test_over_the_cap_nobody_is_asked_and_exclusions_keep_their_reason():
    people = [Recipient(f"p{i}@candidate.test") for i in range(11)] + [Recipient("boss@acme.test")]
    decisions = decide(people, **BASE)
    assert not any(d.invite for d in decisions)
    assert {d.reason for d in decisions} == {rules.BULK_SEND, rules.COLLEAGUE}
