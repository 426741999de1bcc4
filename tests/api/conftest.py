import pytest
from rest_framework.test import APIClient

from brands.models import API_SCOPES
from brands.services import api_token_create


def token_for(user, brand, scopes=None):
    """A brand token made by `user` (an owner of `brand`) and its raw form."""
    return api_token_create(actor=user, name="test", scopes=scopes or list(API_SCOPES), brands=[brand], brand=brand)


def client_with(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def token(owner, brand):
    return token_for(owner, brand)


@pytest.fixture
def api(token):
    return client_with(token[1])


@pytest.fixture
def outsider_api(outsider, other_brand):
    return client_with(token_for(outsider, other_brand)[1])
