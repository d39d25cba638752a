"""One error shape for every API error: {"error": {"code", "message", "fields"}}."""

import json
import logging

from django.http import Http404, JsonResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

log = logging.getLogger("emailsync.api")


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorOut(Schema):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.headers = headers or {}


def not_found(what: str = "object") -> ApiError:
    return ApiError(404, "not_found", f"No such {what} in your agency.")


def error_response(status: int, code: str, message: str, fields=None, headers=None):
    response = JsonResponse(
        {"error": {"code": code, "message": message, "fields": fields or {}}}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


DEFAULT_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthenticated", "Send a valid API key: Authorization: Bearer esk_…"),
    403: ("forbidden", "This key may not do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send JSON (Content-Type: application/json)."),
    422: ("validation_error", "Some fields are not valid."),
    429: ("rate_limited", "Too many requests; retry after the time in Retry-After."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
}


def default_error(status: int, headers=None):
    code, message = DEFAULT_CODES.get(status, ("error", "The request failed."))
    return error_response(status, code, message, headers=headers)


def field_path(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        location = parts.pop(0)
        if location == "body" and parts and parts[0] == "payload":
            parts.pop(0)
    return ".".join(parts) or "body"


def validation_fields(errors) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        message = str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")
        fields.setdefault(field_path(error.get("loc", ())), []).append(message)
    return fields


def install(api) -> None:
    @api.exception_handler(ApiError)
    def api_error(request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return default_error(401, headers={"WWW-Authenticate": 'Bearer realm="emailsync"'})

    @api.exception_handler(ValidationError)
    def invalid(request, exc: ValidationError):
        fields = validation_fields(exc.errors)
        return error_response(422, "validation_error", "Some fields are not valid.", fields)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        code, _message = DEFAULT_CODES.get(exc.status_code, ("error", ""))
        return error_response(exc.status_code, code, str(exc) or _message)

    @api.exception_handler(Http404)
    def missing(request, exc):
        return default_error(404)

    @api.exception_handler(Exception)
    def crashed(request, exc):
        log.exception("API error on %s %s", request.method, request.path)
        return default_error(500)


def shape(response):
    """Give a non-JSON error response from outside ninja (404, 405, 500…) our shape."""
    if response.status_code < 400:
        return response
    content_type = response.get("Content-Type", "")
    if content_type.startswith("application/json"):
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            return response
    shaped = default_error(response.status_code)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in response:
            shaped[name] = response[name]
    return shaped
