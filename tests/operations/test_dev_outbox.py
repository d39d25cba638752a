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


@pytest.mark.django_db
def test_the_operators_admin_lists_the_outbox_only_while_it_is_in_use(client, settings):
    """In production mail goes to a real server and the development outbox stays empty: the
    admin listed it anyway, beside the real tables, as though sent mail could be read there."""
    from emailsync.agencies.models import User

    operator = User.objects.create_superuser(
        email="ops@platform.test", password="x" * 16, full_name="Ops"
    )
    client.force_login(operator)
    settings.DEBUG, settings.DEVELOPMENT_OUTBOX = False, False
    index = client.get("/admin/").content.decode()
    assert "Development messages" not in index and "Webhook deliveries" in index
    assert client.get("/admin/operations/developmentmessage/").status_code == 403
    settings.DEBUG, settings.DEVELOPMENT_OUTBOX = True, True
    assert "Development messages" in client.get("/admin/").content.decode()
