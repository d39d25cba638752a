"""Role and no-reply addresses."""

import pytest

from emailsync.inbound.roles import is_role_address


@pytest.mark.parametrize(
    "address",
    [
        "noreply@acme.com",
        "no-reply@acme.com",
        "No_Reply@acme.com",
        "NOREPLY@ACME.COM",
        "donotreply@acme.com",
        "do-not-reply@acme.com",
        "do_not_reply@acme.com",
        "noreply-invoices@billing.example",
        "no-reply.hr@acme.com",
        "noreply+tag@acme.com",
        "mailer-daemon@mx.example",
        "MAILER-DAEMON@mx.example",
        "postmaster@acme.com",
        "abuse@acme.com",
        "hostmaster@acme.com",
        "webmaster@acme.com",
        "bounce@lists.example",
        "bounces@lists.example",
        "bounces+srs=abc=example.org@lists.example",
        "bounce-12345@mail.example",
        "bounces-abc_def@mail.example",
        "bounce_xyz@mail.example",
        "bounces=example.com@mail.example",
        "listserv@lists.example",
        "majordomo@lists.example",
        "unsubscribe@lists.example",
        "notifications@github.example",
        "notification@bank.example",
        "alerts@bank.example",
        "alert@bank.example",
        "auto-reply@acme.com",
        "autoreply@acme.com",
        '"noreply"@acme.com',
        "noreply",
        # Finance mailboxes an invoice is copied to.
        "accounts@client.example",
        "Accounts-Payable@client.example",
        "accounts_payable@client.example",
        "invoices@client.example",
        "invoice@client.example",
        "billing@client.example",
        "payroll@client.example",
        "remittances@client.example",
        "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@client.example",
        # CRM and ATS mail drops, copied so the email is logged against the contact.
        "4412345@bcc.hubspot.com",
        "4412345@forward.hubspot.com",
        "acme@pipedrivemail.com",
        "emailtosalesforce@3xk2m9q0.na123.le.salesforce.com",
        "support@1a2b3c.5d6e.case.salesforce.com",
        "logger@a1b2.apex.salesforce.com",
        "dropbox-9f8e@mailbox.insight.ly",
        "x@BCC.HubSpot.com",
    ],
)
def test_role_addresses(address):
    assert is_role_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "info@smallclient.example",  # small businesses are run from info@
        "finance@client.example",  # the finance manager who hired may read it
        "hr@client.example",
        "ap@client.example",  # also initials
        "accountant@client.example",  # a person's job title, not the accounts mailbox
        "admin@client.example",
        "hello@client.example",
        "contact@client.example",
        "jane@acme.com",
        "bouncer@club.example",  # a word that merely starts with "bounce"
        "jane@salesforce.com",  # a person at the company, not its mail drop
        "sam@hubspot.com",
        "amy@bccgroup.example",  # a company whose name starts with "bcc"
        "tom@mail.bcc.example",
        "amy@bcc.co.uk",  # real organisations' domains that happen to start with bcc.
        "dean@bcc.cuny.edu",
        "hr@bcc.org.au",
        "bounceback.jones@x.example",
        "alerta@x.example",
        "reply@acme.com",
        "jane+noreply@acme.com",  # the tag is not the mailbox
        "",
        "@acme.com",
    ],
)
def test_person_addresses(address):
    assert not is_role_address(address)


def test_bare_local_part_is_accepted():
    assert is_role_address("noreply.person")
    assert not is_role_address("jane")
