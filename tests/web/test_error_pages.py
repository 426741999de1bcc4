"""Our own 404, 405 and 500 pages instead of Django's blank or technical ones."""

import pytest
from django.http import HttpResponseNotAllowed
from django.test import RequestFactory
from django.urls import include, path, reverse
from django.views import defaults

from config.middleware import MethodNotAllowedPageMiddleware
from tests.web.test_pages import login


def boom(request):
    raise RuntimeError("a bug")


def allows_only_put(request):
    return HttpResponseNotAllowed(["PUT"])


def refuses_with_a_body(request):
    return HttpResponseNotAllowed(["POST"], content=b"already explained")


# Used through pytest.mark.urls: the project's URLs plus views that fail on purpose.
urlpatterns = [
    path("test/boom", boom),
    path("test/put-only", allows_only_put),
    path("test/explained", refuses_with_a_body),
    path("", include("config.urls")),
]


def test_a_post_only_address_opened_in_the_browser_answers_405_with_a_page(client, member, brand, persona):
    login(client, member)
    response = client.get(reverse("persona-render", args=[brand.slug, persona.pk]))
    page = response.content.decode()
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "only accepts form submissions" in page
    # The link back is the persona page the Render button is on.
    assert f'href="{reverse("persona-detail", args=[brand.slug, persona.pk])}"' in page
    assert "Persona Studio" in page and "member" in page


def test_a_405_links_back_to_the_nearest_page_above_it(client, member, brand, persona):
    login(client, member)
    rollback = reverse("persona-rollback", args=[brand.slug, persona.pk, persona.current_version.pk])
    assert f'href="{reverse("persona-detail", args=[brand.slug, persona.pk])}"' in client.get(rollback).content.decode()
    library = client.get(reverse("library-item-create", args=[brand.slug])).content.decode()
    assert f'href="{reverse("library", args=[brand.slug])}"' in library
    # Logging out is POST-only too (and allows OPTIONS); nothing above it is a page but home.
    logout = client.get(reverse("logout"))
    assert logout.status_code == 405 and "only accepts form submissions" in logout.content.decode()
    assert 'href="/">your brands</a>' in logout.content.decode()


@pytest.mark.urls(__name__)
def test_a_405_for_another_method_names_what_the_address_accepts(client):
    response = client.get("/test/put-only")
    assert response.status_code == 405 and response["Allow"] == "PUT"
    assert "does not answer a GET request; it accepts PUT" in response.content.decode()


@pytest.mark.urls(__name__)
def test_a_405_that_already_has_a_body_keeps_it(client):
    response = client.get("/test/explained")
    assert response.status_code == 405 and response.content == b"already explained"


def test_the_middleware_keeps_the_refusals_headers(rf):
    def view(request):
        response = HttpResponseNotAllowed(["POST"])
        response["Cache-Control"] = "no-store"
        return response

    request = rf.get("/brands/acme/personas/1/render")
    request.user = None
    response = MethodNotAllowedPageMiddleware(view)(request)
    assert response["Allow"] == "POST" and response["Cache-Control"] == "no-store"
    assert b"only accepts form submissions" in response.content


def test_an_outsider_gets_our_404_page_for_another_brands_persona(client, outsider, brand, persona):
    login(client, outsider)
    response = client.get(reverse("persona-detail", args=[brand.slug, persona.pk]))
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and "belongs to a brand your account is not a member of" in page
    assert "Ava" not in page and "URLconf" not in page


def test_a_post_only_address_of_another_brand_answers_outsiders_as_one_that_does_not_exist(
    client, outsider, brand, persona
):
    login(client, outsider)
    existing = client.get(reverse("persona-render", args=[brand.slug, persona.pk]))
    missing = client.get(reverse("persona-render", args=["no-such-brand", persona.pk + 1000]))
    assert existing.status_code == missing.status_code == 405
    assert "Ava" not in existing.content.decode()


def test_an_unknown_address_gets_our_404_page_without_the_url_list(client, db):
    response = client.get("/no/such/page")
    page = response.content.decode()
    assert response.status_code == 404 and "Page not found" in page
    assert "URLconf" not in page and "admin/" not in page
    assert f'href="{reverse("home")}"' in page


def test_the_500_page_renders_without_a_request_or_a_database():
    # No `db` fixture: any query here would fail the test.
    response = defaults.server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500 and "Something went wrong" in page
    assert "{%" not in page and "<style>" in page


@pytest.mark.urls(__name__)
def test_an_error_in_a_view_answers_500_with_our_page(client, db):
    client.raise_request_exception = False
    response = client.get("/test/boom")
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
