"""What the logs about requests may say.

A member opening a page meant for admins gets a 403: expected, not a fault. Django logs it as
a warning with the PermissionDenied traceback, a screenful for a one-line fact; the line
stays and the traceback goes.

A path can carry a secret: a reviewer's link (/review/<token>/), an invitation, a password
reset, an unsubscribe or a privacy confirmation. Anyone who reads a log line with one could
use it, so the web server's access log and Django's request warnings keep only its first
letters (docs/PRIVACY.md: logs carry no tokens).
"""

import logging
import re

from django.core.exceptions import PermissionDenied
from gunicorn.glogging import Logger as GunicornLogger


class PermissionDeniedWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info, record.exc_text = None, None
        return True


# The routes whose next path segment is a secret, and that segment: 20 or more URL-safe
# characters (every token we issue is longer; `terms`, `done` and `set-password` are not
# tokens). A slash may be written %2F (a `next=` value). Nothing else is touched, so slugs
# and ids stay readable.
_SLASH = r"(?:/|%2[Ff])"
_TOKEN_IN_PATH = re.compile(
    rf"({_SLASH}(?:review|unsubscribe|invitations|privacy{_SLASH}confirm"
    rf"|reset{_SLASH}[A-Za-z0-9_-]+){_SLASH})([A-Za-z0-9_-]{{3}})[A-Za-z0-9_-]{{17,}}"
)


def redact_paths(text: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1\2…", text)


class TokensOutOfPaths(logging.Filter):
    """Every record with a link's token shortened: Django's request and CSRF warnings
    ("Not Found: /review/<token>/"), and anything else that names a path (on the handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_paths(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_paths(record.msg)
        return True


class RedactingLogger(GunicornLogger):
    """gunicorn's logger (`--logger-class`), whose access lines shorten tokens wherever an
    access-log format could put them: the request line, path, query string, Referer (a
    reviewer's next page names the link they came from), and any header or environ atom."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact_paths(value)
        return atoms
