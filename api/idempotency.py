"""Idempotency-Key on POSTs that create work (IETF draft "The Idempotency-Key HTTP
Header Field"): the first request's response is stored and a replay gets it back;
the same key with another payload is refused with 422, a replay while the first
is still in flight with 409. A request that raised stores nothing, so its key can
be tried again. Keys expire after API_IDEMPOTENCY_TTL."""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from brands.models import ApiToken

from .models import IdempotencyRecord
from .problems import ApiProblem

KEY_MAX = 255
# An in-flight record this old belongs to a request that died: the key is free again.
IN_FLIGHT_ABANDONED = timedelta(minutes=5)


def idempotent(handler):
    """Wrap a view's POST handler (a method of an APIView)."""

    @wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key or len(key) > KEY_MAX:
            raise ApiProblem(
                f"Idempotency-Key must be 1 to {KEY_MAX} characters.", status=400, code="invalid_idempotency_key"
            )
        # Who may act here is checked before anything is replayed.
        getattr(view, "brand", None)
        record = _begin(caller=_caller(request), key=key, fingerprint=_fingerprint(request))
        if record.status_code is not None:
            headers = {"Idempotent-Replayed": "true"}
            if record.location:
                headers["Location"] = record.location
            return Response(record.response_body, status=record.status_code, headers=headers)
        try:
            response = handler(view, request, *args, **kwargs)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code >= 500:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status_code=response.status_code,
                response_body=response.data,
                location=response.get("Location", ""),
            )
        return response

    return wrapper


def _caller(request):
    if isinstance(request.auth, ApiToken):
        return f"token:{request.auth.pk}"
    return f"user:{request.user.pk}"


def _fingerprint(request):
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _begin(*, caller, key, fingerprint):
    """The record for this key: a new in-flight one, or the finished one to replay."""
    now = timezone.now()
    IdempotencyRecord.objects.filter(
        caller=caller, key=key, created_at__lt=now - timedelta(seconds=settings.API_IDEMPOTENCY_TTL)
    ).delete()
    IdempotencyRecord.objects.filter(
        caller=caller, key=key, status_code__isnull=True, created_at__lt=now - IN_FLIGHT_ABANDONED
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(caller=caller, key=key, fingerprint=fingerprint)
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
    if existing is None:  # finished and expired between the two statements: start again
        return _begin(caller=caller, key=key, fingerprint=fingerprint)
    if existing.fingerprint != fingerprint:
        raise ApiProblem(
            "This Idempotency-Key was used for a different request; use a new key for a new request.",
            status=422,
            code="idempotency_key_reused",
        )
    if existing.status_code is None:
        raise ApiProblem(
            "A request with this Idempotency-Key is still in progress; retry once it has finished.",
            status=409,
            code="idempotency_in_flight",
        )
    return existing


def idempotency_records_expire():
    """Remove records past their TTL (beat)."""
    cutoff = timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_TTL)
    return IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()[0]


def campaign_key(request):
    """The campaign's own idempotency key for a request's Idempotency-Key: per caller,
    so two callers' keys never meet, and fixed in length."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return ""
    return "api:" + hashlib.sha256(f"{_caller(request)}\n{key}".encode()).hexdigest()
