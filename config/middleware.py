"""A readable page for a refused HTTP method. Registered in MIDDLEWARE."""

from django.template.loader import render_to_string
from django.urls import Resolver404, resolve


class MethodNotAllowedPageMiddleware:
    """Django's require_POST (and a class-based view's refusal) answers 405
    with an empty body, which a browser shows as a blank page: typically when
    a form's target is opened as a link, or reached again after signing in
    (login_required's `next`). Such an answer gets our 405.html, saying what
    the address accepts and linking to the page above it; its headers,
    Allow included, are kept. A 405 that already has a body is left alone.

    After MessageMiddleware, so that messages the page shows count as seen."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or response.streaming or response.content:
            return response
        allowed = [method.strip() for method in response.get("Allow", "").split(",") if method.strip()]
        context = {
            "method": request.method,
            "allowed": allowed,
            "form_only": set(allowed) - {"OPTIONS"} == {"POST"},
            "back": _page_above(request),
        }
        response.content = render_to_string("405.html", context, request)
        response["Content-Type"] = "text/html; charset=utf-8"
        return response


def _page_above(request):
    """The nearest address above the request's that our URLs answer, e.g. the
    persona page (…/personas/3/) for its Render button's target
    (…/personas/3/render); at worst the home page."""
    prefix = request.path.removesuffix(request.path_info)
    parts = request.path_info.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        candidate = "/".join(parts) + "/"
        try:
            resolve(candidate)
        except Resolver404:
            continue
        return prefix + candidate
    return prefix + "/"
