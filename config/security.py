"""How refusals are answered and logged: config.urls.handler403
(permission_denied)."""

import logging

from django.views import defaults

log = logging.getLogger(__name__)


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
