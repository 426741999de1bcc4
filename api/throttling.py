from rest_framework.throttling import SimpleRateThrottle

from brands.models import ApiToken


class CallerRateThrottle(SimpleRateThrottle):
    """Requests per token (or per signed-in member), counted in the shared cache
    (Redis in production), so every web process sees the same count. A refused
    request gets 429 with Retry-After."""

    scope = "caller"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
