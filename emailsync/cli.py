"""The `emailsync` console command: Django's manage.py under the product's name."""

import os
import sys

# Commands that only act as a client of a running server (they keep no secrets and sign nothing):
# they run in development mode unless DEBUG says otherwise, so the line `serve` prints to copy
# works in a fresh terminal without SECRET_KEY.
CLIENT_COMMANDS = {"sendtest"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsync.settings")
    if len(sys.argv) > 1 and sys.argv[1] in CLIENT_COMMANDS:
        os.environ.setdefault("DEBUG", "1")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # the environment, not the command: say what to set
        sys.stderr.write(f"emailsync: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
