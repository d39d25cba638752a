from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "emailsync.inbound"
    verbose_name = "Email Sync inbound"

    def ready(self):
        from emailsync.agencies.management.commands.agency import AGENCY_DESCRIBERS
        from emailsync.operations.management.commands.seed_demo import DEMO_EXTENSIONS

        from .operator import describe_inbound, seed_demo_inbound

        AGENCY_DESCRIBERS.append(describe_inbound)
        DEMO_EXTENSIONS.append(seed_demo_inbound)
