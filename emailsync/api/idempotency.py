"""`Idempotency-Key` on POST: the first response is stored per API key and replayed for a retry
with the same key and the same request; the same key with a different request is refused.

Done around the API's views (before ninja runs), so a replay costs no work and creates nothing.
A record is reserved first (a unique row), so two concurrent retries cannot both run: the second
one gets 409 and retries later. Server errors free the key so that a retry runs again.
"""

import hashlib
from functools import wraps

from django.db import IntegrityError, transaction
from django.http import HttpResponse

from .auth import admit
from .errors import ApiError, error_response
from .models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
# Answers about the key or the moment, not the request: a retry should run again.
NOT_STORED = {401, 403, 409, 429}


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def bearer_key(request) -> ApiKey | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return ApiKey.lookup(token.strip())


def idempotent(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        value = request.headers.get(HEADER)
        if request.method != "POST" or value is None:
            return view(request, *args, **kwargs)
        key = bearer_key(request)
        if key is None:  # the view answers 401 in the usual way
            return view(request, *args, **kwargs)
        if not (1 <= len(value) <= 255) or not value.isprintable():
            return error_response(
                422,
                "validation_error",
                "Idempotency-Key must be 1–255 printable characters.",
                {HEADER: ["Use 1–255 printable characters, e.g. a UUID."]},
            )
        print_ = fingerprint(request)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key=key, key=value, fingerprint=print_
                )
        except IntegrityError:
            # Whatever the stored call says (a replay, a reused key, one still running), this is
            # a call like any other: rate-limited, refused with the API off.
            try:
                admit(key)
            except ApiError as refused:
                return error_response(
                    refused.status, refused.code, refused.message, refused.fields, refused.headers
                )
            existing = IdempotencyRecord.objects.filter(api_key=key, key=value).first()
            if existing is None:  # freed in between: the caller may simply retry
                return _in_progress()
            if existing.fingerprint != print_:
                return error_response(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request; use a new key.",
                    {HEADER: ["Already used with a different request."]},
                )
            if existing.status_code == 0:
                return _in_progress()
            response = HttpResponse(
                existing.response_body,
                status=existing.status_code,
                content_type="application/json",
            )
            response[REPLAY_HEADER] = "true"
            return response
        response = view(request, *args, **kwargs)
        if response.status_code >= 500 or response.status_code in NOT_STORED:
            record.delete()
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status_code=response.status_code,
                response_body=response.content.decode("utf-8", "replace"),
            )
        return response

    return wrapper


def _in_progress():
    return error_response(
        409,
        "idempotency_key_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )
