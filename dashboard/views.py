from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.selectors import step_label, workflow_current
from approvals.services import DEFAULT_STEPS
from avatars.forms import PersonaFromSeedForm, PersonaSearchForm
from avatars.selectors import personas_archived_count, personas_gallery
from brands.models import CREATE_ROLES, Role
from brands.selectors import (
    api_token_get,
    api_tokens_for_brand,
    brand_access_get,
    brands_for_user,
    invitation_get,
    invitations_pending_for_brand,
    members_for_brand,
    membership_get,
)
from brands.services import (
    api_token_create,
    api_token_revoke,
    brand_identity_threshold_set,
    invitation_accept,
    invitation_create,
    invitation_from_token,
    invitation_revoke,
    membership_remove,
    membership_role_change,
)
from common.forms import service_errors_add
from generation.selectors import image_quota_usage
from publishing.selectors import channels_for_brand
from webhooks.selectors import webhook_endpoints_for_brand

from .forms import (
    ApiTokenForm,
    IdentityThresholdForm,
    InvitationForm,
    InvitationSignupForm,
    MembershipRoleForm,
    RemovalForm,
)

OWNERS = {Role.OWNER}


@login_required
def home(request):
    return render(request, "dashboard/home.html", {"accesses": brands_for_user(user=request.user)})


@login_required
def brand_dashboard(request, brand_slug):
    """The brand's page: the personas gallery (search by name or handle, archived
    ones on request; a plain GET form, which htmx narrows in place) and links."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    can_create = access.role in CREATE_ROLES
    search = PersonaSearchForm(request.GET)
    query, archived = (search.cleaned_data["q"], search.cleaned_data["archived"]) if search.is_valid() else ("", "")
    return render(
        request,
        "dashboard/brand.html",
        {
            "brand": access.brand,
            "role": access.role,
            "search": search,
            "query": query,
            "archived": archived,
            "personas": personas_gallery(brand=access.brand, query=query, archived=archived),
            "archived_count": personas_archived_count(brand=access.brand),
            "form": PersonaFromSeedForm() if can_create else None,
        },
    )


# --- brand settings ------------------------------------------------------------------


def _brand_settings_render(request, access, *, threshold_form=None, status=200):
    brand = access.brand
    workflow = workflow_current(brand=brand)
    tokens = api_tokens_for_brand(brand=brand)
    return render(
        request,
        "dashboard/brand_settings.html",
        {
            "brand": brand,
            "role": access.role,
            "members": members_for_brand(brand=brand),
            "invitations": invitations_pending_for_brand(brand=brand),
            "steps": [(step, step_label(step)) for step in (workflow.steps if workflow else DEFAULT_STEPS)],
            "tokens_active": [token for token in tokens if token.is_active],
            "tokens_count": len(tokens),
            "endpoints": webhook_endpoints_for_brand(brand=brand),
            "channels": channels_for_brand(brand=brand),
            "quota": image_quota_usage(brand=brand),
            "threshold_form": threshold_form
            or IdentityThresholdForm(initial={"identity_threshold": brand.identity_threshold}),
        },
        status=status,
    )


@login_required
@require_GET
def brand_settings(request, brand_slug):
    """Owners: every setting of the brand on one page, each with a link to where it is changed."""
    return _brand_settings_render(request, brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS))


@login_required
@require_POST
def brand_identity_threshold(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    form = IdentityThresholdForm(request.POST)
    if form.is_valid():
        try:
            brand = brand_identity_threshold_set(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Images scoring below {brand.identity_threshold:g} are now flagged.")
            return redirect(reverse("brand-settings", args=[brand.slug]) + "#identity")
    return _brand_settings_render(request, access, threshold_form=form, status=400)


# --- team ----------------------------------------------------------------------


def _role_form(membership, data=None):
    form = MembershipRoleForm(data, initial={"role": membership.role}, auto_id=f"id_member{membership.pk}_%s")
    form.fields["role"].widget.attrs["aria-label"] = f"Role of {membership.user.get_username()}"
    return form


def _member_forms(membership, bound=None):
    """The role and removal forms of one member's row; `bound` replaces one
    of them with the form that was posted, so its errors show in that row."""
    forms = {"role": _role_form(membership), "remove": RemovalForm(auto_id=f"id_member{membership.pk}_%s")}
    return {**forms, **(bound or {})}


def _team_render(request, access, *, invite_form=None, bound_member=None, bound_forms=None):
    is_owner = access.role == Role.OWNER
    members = members_for_brand(brand=access.brand)
    rows = [
        (m, _member_forms(m, bound_forms if bound_member is not None and m.pk == bound_member.pk else None))
        for m in members
    ]
    return render(
        request,
        "dashboard/team.html",
        {
            "brand": access.brand,
            "role": access.role,
            "is_owner": is_owner,
            "rows": rows,
            "invite_form": (invite_form or InvitationForm()) if is_owner else None,
            "invitations": invitations_pending_for_brand(brand=access.brand) if is_owner else [],
        },
    )


@login_required
def team(request, brand_slug):
    """Every member sees who is on the team; owners also manage it here."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    return _team_render(request, access)


@login_required
@require_POST
def team_invite(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = invitation_create(
                actor=request.user,
                brand=access.brand,
                **form.cleaned_data,
                accept_url_builder=lambda token: request.build_absolute_uri(reverse("invitation-accept", args=[token])),
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(
                request, f"Invited {invitation.email} as {invitation.get_role_display().lower()}; the link is emailed."
            )
            return redirect("team", brand_slug=access.brand.slug)
    return _team_render(request, access, invite_form=form)


@login_required
@require_POST
def team_invitation_revoke(request, brand_slug, invitation_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    invitation = invitation_get(brand=access.brand, invitation_id=invitation_id)
    try:
        invitation_revoke(actor=request.user, brand=access.brand, invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Withdrew the invitation to {invitation.email}; its link no longer works.")
    return redirect("team", brand_slug=access.brand.slug)


@login_required
@require_POST
def team_member_role(request, brand_slug, membership_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    membership = membership_get(brand=access.brand, membership_id=membership_id)
    form = _role_form(membership, request.POST)
    if form.is_valid():
        try:
            changed = membership_role_change(
                actor=request.user, brand=access.brand, membership=membership, role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            # The row shows the role the member still has, with why it stays.
            form = _role_form(membership, {"role": membership.role})
            form.is_valid()
            service_errors_add(form, exc)
        else:
            messages.success(request, f"{changed.user.get_username()} is now {changed.get_role_display().lower()}.")
            return redirect("team", brand_slug=access.brand.slug)
    return _team_render(request, access, bound_member=membership, bound_forms={"role": form})


@login_required
@require_POST
def team_member_remove(request, brand_slug, membership_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    membership = membership_get(brand=access.brand, membership_id=membership_id)
    form = RemovalForm(request.POST, auto_id=f"id_member{membership.pk}_%s")
    try:
        membership_remove(actor=request.user, brand=access.brand, membership=membership)
    except ValidationError as exc:
        form.is_valid()  # a bound form takes errors only once cleaned
        service_errors_add(form, exc)
        return _team_render(request, access, bound_member=membership, bound_forms={"remove": form})
    username = membership.user.get_username()
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {access.brand.name}.")
        return redirect("home")
    messages.success(request, f"Removed {username} from {access.brand.name}.")
    return redirect("team", brand_slug=access.brand.slug)


# --- API tokens ------------------------------------------------------------------


def _api_tokens_render(request, access, *, form=None, new_token=None, raw=None):
    return render(
        request,
        "dashboard/api_tokens.html",
        {
            "brand": access.brand,
            "role": access.role,
            "tokens": api_tokens_for_brand(brand=access.brand),
            "form": form or ApiTokenForm(),
            "new_token": new_token,
            "raw": raw,
        },
    )


# never_cache: the page that shows a raw token must not stay in any cache,
# and the list beside it changes with every create and revoke.
@never_cache
@login_required
@require_GET
def tokens(request, brand_slug):
    """Owners list, make and revoke the brand's API tokens."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    return _api_tokens_render(request, access)


@never_cache
@login_required
@require_POST
@sensitive_variables("raw")
def token_create(request, brand_slug):
    """Makes a token and answers with the page showing it, once: it is never
    redirected through the session or a message, and never shown again."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            token, raw = api_token_create(
                actor=request.user,
                name=data["name"],
                scopes=data["scopes"],
                brands=[access.brand],
                brand=access.brand,
                expires_at=timezone.now() + timedelta(days=data["expires_in_days"]),
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            return _api_tokens_render(request, access, new_token=token, raw=raw)
    return _api_tokens_render(request, access, form=form)


@login_required
@require_POST
def token_revoke(request, brand_slug, token_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    token = api_token_get(brand=access.brand, token_id=token_id)
    api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Revoked the token “{token.name}” ({token.display}); it no longer works.")
    return redirect("api-tokens", brand_slug=access.brand.slug)


# --- accepting an invitation -----------------------------------------------------

# How each refusal answers: an unusable link is a bad request; a link that
# worked once and no longer does is gone.
INVITATION_REFUSAL_STATUS = {"invalid": 400, "used": 410, "withdrawn": 410, "expired": 410}


def _invitation_refused(request, exc):
    status = INVITATION_REFUSAL_STATUS.get(exc.error_list[0].code, 400)
    return render(request, "dashboard/invitation_invalid.html", {"reasons": exc.messages}, status=status)


@require_http_methods(["GET", "POST"])
def invitation_accept_page(request, token):
    """Open to anyone holding the link: a signed-in user accepts with one
    POST; anyone else logs in (and comes back here) or creates an account,
    which accepts in the same step."""
    try:
        invitation = invitation_from_token(token=token)
    except ValidationError as exc:
        return _invitation_refused(request, exc)
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationSignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST":
        try:
            if signed_in:
                user = request.user
                membership, joined = invitation_accept(user=user, token=token)
            elif form.is_valid():
                # The account exists only if the invitation is accepted with it.
                with transaction.atomic():
                    user = form.save()
                    membership, joined = invitation_accept(user=user, token=token)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                membership = None
        except ValidationError as exc:
            return _invitation_refused(request, exc)
        if membership is not None:
            brand = membership.brand
            if joined:
                messages.success(request, f"Welcome to {brand.name}: you are {membership.get_role_display().lower()}.")
            else:
                messages.info(
                    request,
                    f"You already are {membership.get_role_display().lower()} of {brand.name}; your role stays.",
                )
            return redirect("brand-dashboard", brand_slug=brand.slug)
    return render(
        request,
        "dashboard/invitation_accept.html",
        {
            "invitation": invitation,
            "form": form,
            "login_url": reverse("login") + "?" + urlencode({"next": request.path}),
        },
    )
