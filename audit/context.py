"""Who acts, beyond the user: a change made through an API token is recorded
with the token's id (`acting_through_token`), set by the API's authentication
for the length of one request."""

from contextlib import contextmanager
from contextvars import ContextVar

_api_token_id = ContextVar("audit_api_token_id", default=None)


def acting_token_set(token_id):
    """Mark what follows (in this thread or task) as done through the token; returns
    what acting_token_reset needs."""
    return _api_token_id.set(token_id)


def acting_token_reset(reset):
    _api_token_id.reset(reset)


@contextmanager
def acting_through_token(token_id):
    reset = acting_token_set(token_id)
    try:
        yield
    finally:
        acting_token_reset(reset)


def acting_token_id():
    return _api_token_id.get()
