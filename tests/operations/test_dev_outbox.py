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
