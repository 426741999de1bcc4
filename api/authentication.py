"""API authentication: `Authorization: Bearer ps_live_…`. A token acts as the
member who created it, so every service still checks that member's role on the
brand; the token's own brands and scopes narrow it further (api.permissions)."""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from brands.selectors import api_token_authenticate


class TokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the token as 'Authorization: Bearer ps_live_…'.", code="invalid_token")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The token is not valid.", code="invalid_token") from None
        token = api_token_authenticate(raw)
        if token is None or not token.created_by.is_active:
            raise AuthenticationFailed("The token is unknown, revoked or expired.", code="invalid_token")
        return token.created_by, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
