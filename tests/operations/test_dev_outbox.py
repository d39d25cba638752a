import pytest
from django.core.mail import EmailMultiAlternatives

from emailsync.operations.models import DevelopmentMessage
from emailsync.operations.outbox import DevelopmentOutboxBackend, parts


@pytest.mark.django_db
def test_kept_mail_reads_back_with_its_unicode_intact():
    message = EmailMultiAlternatives("Rate us ★", "1 ★ Zoë", "a@example.test", ["b@example.test"])
    message.attach_alternative("<p>★ Zoë</p>", "text/html")
    DevelopmentOutboxBackend().send_messages([message])
    kept = parts(DevelopmentMessage.objects.get())
    assert kept["text/plain"].strip() == "1 ★ Zoë"
    assert kept["text/html"].strip() == "<p>★ Zoë</p>"


@pytest.mark.django_db
def test_the_list_shows_names_and_subjects_decoded():
    message = EmailMultiAlternatives(
        "Would you review José at Zoë's Agency?", "hi", "José García <jose@example.test>",
        ["=?utf-8?b?Sm9zw6kgw4FsdmFyZXo=?= <b@example.test>"],
    )  # fmt: skip
    DevelopmentOutboxBackend().send_messages([message])
    kept = DevelopmentMessage.objects.get()
    assert kept.sender == "José García <jose@example.test>"
    assert kept.recipients == "José Álvarez <b@example.test>"  # as the worker encodes names
    assert kept.subject == "Would you review José at Zoë's Agency?"
