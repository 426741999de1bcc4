"""One error format for every API error: RFC 9457 problem details
(application/problem+json) with a machine-readable `code` and, for validation
errors, the fields:

    {"type": "https://personastudio.dev/problems/validation_error", "title": "Bad Request",
     "status": 400, "detail": "...", "code": "validation_error",
     "errors": [{"field": "name", "message": "...", "code": "required"}]}

Services raise Django's and the domains' own exceptions; they are translated here,
so no view catches them one by one."""

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from approvals.services import DecisionRefused, PreconditionFailed, ReviewConflict
from avatars.services import PersonaInUse, VersionConflict
from generation.services.jobs import QuotaExceeded

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://personastudio.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# Rules that forbid the caller, as opposed to the state of the thing.
FORBIDDEN_DECISIONS = {"own_work", "not_a_decider"}
INVALID_DECISIONS = {"reason_required", "reason_too_long", "unknown_action"}


class ApiProblem(exceptions.APIException):
    """An error with its status and code, raised by the API's own adapters."""

    def __init__(self, detail, *, status, code, headers=None):
        super().__init__(detail, code)
        self.status_code = status
        self.code = code
        self.headers = headers or {}


def problem(*, status, code, detail, errors=None, headers=None):
    body = {
        "type": PROBLEM_TYPE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc, context):
    translated = _translate(exc)
    if isinstance(translated, Response):
        return translated
    response = exception_handler(translated, context)
    if response is None:
        log.exception("API error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return problem(status=500, code="server_error", detail="Something went wrong on our side; it was logged.")
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow", "ETag")}
    headers.update(getattr(translated, "headers", {}) or {})
    if isinstance(translated, exceptions.ValidationError):
        errors = list(_field_errors(translated.detail))
        detail = errors[0]["message"] if len(errors) == 1 else "Some fields are not valid; see errors."
        return problem(status=400, code="validation_error", detail=detail, errors=errors, headers=headers)
    code = getattr(translated, "code", None) or _code_of(translated)
    return problem(status=response.status_code, code=code, detail=_text(translated.detail), headers=headers)


def _translate(exc):
    """Domain and Django exceptions as DRF exceptions (or a finished response)."""
    if isinstance(exc, VersionConflict):
        etag = f'"version-{exc.current.pk}"' if exc.current is not None else None
        return problem(
            status=412, code="precondition_failed", detail=exc.messages[0], headers={"ETag": etag} if etag else None
        )
    if isinstance(exc, PersonaInUse):
        return problem(status=409, code="persona_in_use", detail=" ".join(exc.messages))
    if isinstance(exc, QuotaExceeded):
        return problem(status=422, code="quota_exceeded", detail=" ".join(exc.messages))
    if isinstance(exc, PreconditionFailed):
        return problem(status=412, code="precondition_failed", detail=exc.message, headers={"ETag": exc.current_etag})
    if isinstance(exc, ReviewConflict):
        return problem(status=409, code="conflict", detail=exc.message)
    if isinstance(exc, DecisionRefused):
        if exc.code in FORBIDDEN_DECISIONS:
            return problem(status=403, code=exc.code, detail=exc.message)
        if exc.code in INVALID_DECISIONS:
            field = "reason_code" if exc.code == "reason_required" else "action"
            return problem(
                status=400,
                code="validation_error",
                detail=exc.message,
                errors=[{"field": field, "message": exc.message, "code": exc.code}],
            )
        return problem(status=409, code=exc.code, detail=exc.message)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError({field: [str(m) for m in e.messages] for field, e in _dict(exc)})
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or "You may not do this here.")
    if isinstance(exc, Http404):
        return exceptions.NotFound("Not found.")
    return exc


def _dict(exc):
    return [(field, DjangoValidationError(errors)) for field, errors in exc.error_dict.items()]


def _field_errors(detail, prefix=""):
    if isinstance(detail, dict):
        for field, value in detail.items():
            name = f"{prefix}.{field}" if prefix else str(field)
            yield from _field_errors(value, "" if name == "non_field_errors" else name)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                yield from _field_errors(value, f"{prefix}[{index}]")
            else:
                yield {"field": prefix or None, "message": str(value), "code": getattr(value, "code", "invalid")}
    else:
        yield {"field": prefix or None, "message": str(detail), "code": getattr(detail, "code", "invalid")}


def _code_of(exc):
    codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    return codes if isinstance(codes, str) else getattr(exc, "default_code", "error")


def _text(detail):
    if isinstance(detail, list):
        return " ".join(str(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    return str(detail)


def page_not_found(request, exception):
    """config.urls.handler404: problem details under /api/, our page elsewhere."""
    if request.path.startswith("/api/"):
        return _problem_json(status=404, code="not_found", detail="There is no such API endpoint.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    """config.urls.handler500: problem details under /api/, our page elsewhere."""
    if request.path.startswith("/api/"):
        return _problem_json(status=500, code="server_error", detail="Something went wrong on our side; it was logged.")
    return defaults.server_error(request)


def _problem_json(*, status, code, detail):
    body = {"type": PROBLEM_TYPE + code, "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return JsonResponse({**body, "code": code}, status=status, content_type=PROBLEM_CONTENT_TYPE)
