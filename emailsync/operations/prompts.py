"""The operator commands' one question: "are you sure?" before something that cannot be undone."""

from django.core.management.base import CommandError


def confirmed(question: str) -> bool:
    """Ask on the terminal; True only for y or yes. Without a terminal (a script, a pipe,
    cron) there is no one to answer: a one-line error that names --yes, not a traceback."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        raise CommandError("No terminal to confirm on: pass --yes to go ahead.") from None
    return answer.strip().lower() in ("y", "yes")
