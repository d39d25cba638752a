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


# A path segment or query value of 20 or more URL-safe characters with a digit, a capital or
# an underscore: every token we issue (`secrets.token_urlsafe`, Django's reset tokens). A slug
# (lower-case words and hyphens) is left readable.
_SEGMENT = re.compile(r"(?<=[/=])[A-Za-z0-9_-]{20,}(?=[/?&#;\s\"']|$)")
_SECRET_SIGN = re.compile(r"[0-9A-Z_]")


def redact_paths(text: str) -> str:
    def shorten(match: re.Match) -> str:
        segment = match.group(0)
        return segment[:3] + "…" if _SECRET_SIGN.search(segment) else segment

    return _SEGMENT.sub(shorten, text)


class TokensOutOfPaths(logging.Filter):
    """Django's request warnings ("Not Found: /review/<token>/") with the token shortened."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_paths(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_paths(record.msg)
        return True


class RedactingLogger(GunicornLogger):
    """gunicorn's logger (`--logger-class`), whose access lines shorten tokens in the request
    line, the path, the query string and the Referer (a reviewer's next page names the link
    they came from)."""

    REDACTED_ATOMS = ("r", "U", "q", "f")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in self.REDACTED_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_paths(atoms[key])
        return atoms
