"""Sign-in throttling (django-axes) and how refusals are answered and logged.

Settings point here: AUTHENTICATION_BACKENDS (LoginThrottleBackend),
AXES_LOCKOUT_CALLABLE (login_locked_out) and config.urls.handler403
(permission_denied).
"""

import logging

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.views import defaults

log = logging.getLogger(__name__)


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, first in AUTHENTICATION_BACKENDS.

    Every sign-in over HTTP (our login page, the admin's) passes the request,
    and is counted and refused per username and client address. A call without
    a request has no address to count against: Django's test client's
    `login()` and scripts calling `authenticate()` directly. Axes would raise
    for those; they go on to the next backend instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request):
    """The client's address: REMOTE_ADDR, or behind PROXY_COUNT trusted proxies
    the entry the outermost one appended to X-Forwarded-For (the client can
    forge only entries left of it). A header too short for the proxies
    configured falls back to REMOTE_ADDR."""
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if settings.PROXY_COUNT and len(hops) >= settings.PROXY_COUNT:
        return hops[-settings.PROXY_COUNT]
    return request.META.get("REMOTE_ADDR")


def lockout_message():
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many failed sign-ins for this account from your address; try again in {minutes} minutes."


def login_locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the login form again, saying why, as 429."""
    form = AuthenticationForm(request, initial={"username": get_client_username(request, credentials) or ""})
    context = {"form": form, "lockout_message": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


def _one_line(text):
    # Escapes newlines and other control characters (a path can carry %0A).
    return repr(str(text))[1:-1]


def permission_denied(request, exception, template_name="403.html"):
    """handler403: logs the refusal as one WARNING line (user, brand, path,
    reason) instead of django.request's line with a full traceback."""
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    log.warning(
        "Forbidden: user=%s brand=%s %s %s reason=%s",
        user.get_username() if user is not None and user.is_authenticated else "anonymous",
        (match.kwargs.get("brand_slug") if match else None) or "-",
        request.method,
        _one_line(request.path),
        _one_line(exception) or "-",
    )
    response = defaults.permission_denied(request, exception, template_name)
    # Django's own marker (django.utils.log.log_response): already logged, so
    # django.request does not log it again with the traceback.
    response._has_been_logged = True
    return response
