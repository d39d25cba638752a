"""Filters for the log records Django writes about requests.

A member opening a page meant for admins gets a 403: expected, not a fault. Django logs it as
a warning with the PermissionDenied traceback, a screenful for a one-line fact; the line
stays and the traceback goes.
"""

import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info, record.exc_text = None, None
        return True
