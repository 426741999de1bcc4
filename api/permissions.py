"""Token scopes: each view names the scope a token needs, per action (read for
safe methods, write otherwise, or its own for an action such as deciding).
Session requests (the dashboard's own calls) are limited by the member's role only."""

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from brands.models import ApiToken


def required_scope(request, view):
    scopes = getattr(view, "scopes", {})
    action = getattr(view, "action", None)
    if action in scopes:
        return scopes[action]
    return scopes.get("read" if request.method in SAFE_METHODS else "write")


class TokenScope(BasePermission):
    """Fails closed: a token may use a method only where the view names its scope."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True
        if not hasattr(view, request.method.lower()):
            return True  # answered 405 by the view
        scope = required_scope(request, view)
        if scope is None:
            raise PermissionDenied("No token scope allows this.", code="insufficient_scope")
        if scope not in request.auth.scopes:
            raise PermissionDenied(f"This token lacks the scope {scope!r}.", code="insufficient_scope")
        return True
