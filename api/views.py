"""API v1: thin adapters over the same services and selectors the dashboard uses.

Every brand-scoped view finds the brand through the caller's role (outsiders get
404) and, for a token, through the token's brands too; services check roles
again, and raise what api.problems turns into problem details."""

from datetime import timedelta

from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import AssetComment, ReviewDecision
from approvals.selectors import comments_for_asset, review_for_asset, review_history
from approvals.services import comment_add, review_decide, review_submit
from audit.context import acting_token_reset, acting_token_set
from avatars.models import LibraryItem, Persona, PersonaVersion
from avatars.selectors import (
    library_items_for_brand,
    persona_get,
    persona_version_get,
    persona_versions,
    personas_for_brand,
)
from avatars.services import (
    library_item_create,
    persona_archive,
    persona_breed,
    persona_create_from_seed,
    persona_delete,
    persona_edit,
    persona_library_apply,
    persona_rename,
    persona_render_submit,
    persona_rollback,
    persona_unarchive,
)
from brands.models import ApiToken, Brand, Role
from brands.selectors import (
    api_token_brands,
    api_token_get,
    api_tokens_for_brand,
    brand_access_get,
    brands_for_user,
)
from brands.services import api_token_create, api_token_revoke
from campaigns.models import Campaign
from campaigns.selectors import campaign_get, campaign_progress, campaigns_for_brand
from campaigns.services import campaign_cancel, campaign_estimate, campaign_submit
from campaigns.verification import asset_verify
from content.models import Asset
from content.selectors import asset_get
from content.services import FILE_KINDS, asset_download_name, asset_file_open
from generation.models import Direction, GenerationJob, GeneratorModel
from generation.selectors import directions_for_brand
from publishing.models import Channel, Post, Schedule
from publishing.selectors import (
    channel_get,
    channels_for_brand,
    post_get,
    post_log,
    posts_in_range,
    schedules_for_brand,
)
from publishing.services import post_cancel, post_create, post_reschedule
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import (
    webhook_deliveries_for_endpoint,
    webhook_delivery_get,
    webhook_endpoint_get,
    webhook_endpoints_for_brand,
)
from webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

from . import serializers as s
from .idempotency import campaign_key, idempotent
from .problems import ApiProblem


class ApiView(APIView):
    """Base of every API view: a change made with a token is audited with its id."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiToken):
            self._audit_token = acting_token_set(request.auth.pk)

    def finalize_response(self, request, response, *args, **kwargs):
        if response.get("Location", "").startswith("/"):
            response["Location"] = request.build_absolute_uri(response["Location"])
        reset = getattr(self, "_audit_token", None)
        if reset is not None:
            acting_token_reset(reset)
            self._audit_token = None
        return super().finalize_response(request, response, *args, **kwargs)


class BrandView(ApiView, generics.GenericAPIView):
    """A view under /brands/{brand_slug}/; `roles`, when set, are the only roles it serves."""

    roles = None

    @property
    def brand(self):
        if not hasattr(self, "_brand"):
            access = brand_access_get(user=self.request.user, brand_slug=self.kwargs["brand_slug"])
            token = self.request.auth
            if isinstance(token, ApiToken) and not api_token_brands(token=token).filter(pk=access.brand.pk).exists():
                raise ApiProblem("Not found.", status=404, code="not_found")
            self._brand, self.role = access.brand, access.role
            if self.roles is not None and access.role not in self.roles:
                raise ApiProblem("Your role on this brand does not allow this.", status=403, code="permission_denied")
        return self._brand

    def get_serializer_context(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_serializer_context()
        return {**super().get_serializer_context(), "brand": self.brand}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema is made with no brand and no rows
            return self.model.objects.none()
        return self.brand_queryset()

    def persona(self, persona_id):
        return persona_get(brand=self.brand, persona_id=persona_id)

    def asset(self):
        return asset_get(brand=self.brand, asset_id=self.kwargs["asset_id"])


def created(data, *, url, code=status.HTTP_201_CREATED, etag=None):
    headers = {"Location": url}
    if etag:
        headers["ETag"] = etag
    return Response(data, status=code, headers=headers)


def if_match(request):
    return request.headers.get("If-Match")


# --------------------------------------------------------------------------- brands and models


class BrandList(ApiView, generics.ListAPIView):
    """The brands the caller may act for (for a token: its brands the member still reaches)."""

    serializer_class = s.BrandSerializer
    scopes = {"read": "brands:read"}
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Brand.objects.none()
        accesses = brands_for_user(user=self.request.user)
        if isinstance(self.request.auth, ApiToken):
            allowed = set(api_token_brands(token=self.request.auth).values_list("pk", flat=True))
            accesses = [a for a in accesses if a.brand.pk in allowed]
        self.roles = {a.brand.pk: a.role for a in accesses}
        return [a.brand for a in accesses]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "roles": getattr(self, "roles", {})}


class ModelList(ApiView, generics.ListAPIView):
    """Generator models in the registry, with their licence notes."""

    serializer_class = s.GeneratorModelSerializer
    scopes = {"read": "models:read"}
    queryset = GeneratorModel.objects.order_by("-id")


class DirectionList(BrandView, generics.ListAPIView):
    model = Direction
    """Directions personas can be edited along (the model's own and the brand's taught ones)."""

    serializer_class = s.DirectionSerializer
    scopes = {"read": "personas:read"}
    pagination_class = None

    def brand_queryset(self):
        return directions_for_brand(brand=self.brand)


# --------------------------------------------------------------------------- personas


class PersonaList(BrandView, generics.ListAPIView):
    model = Persona
    serializer_class = s.PersonaSerializer
    scopes = {"read": "personas:read", "write": "personas:write"}

    def brand_queryset(self):
        return personas_for_brand(brand=self.brand).select_related("model", "current_version__created_by")

    @extend_schema(request=s.PersonaCreateSerializer, responses={201: s.PersonaSerializer})
    @idempotent
    def post(self, request, brand_slug):
        """A new persona from a seed of a model (its first version)."""
        data = _valid(s.PersonaCreateSerializer, request)
        model = get_object_or_404(GeneratorModel, slug=data.pop("model"))
        persona = persona_create_from_seed(actor=request.user, brand=self.brand, model=model, **data)
        return self.persona_created(persona)

    def persona_created(self, persona):
        persona = self.persona(persona.pk)
        return created(
            s.PersonaSerializer(persona).data,
            url=reverse("api-persona", kwargs={"brand_slug": self.brand.slug, "persona_id": persona.pk}),
            etag=s.persona_etag(persona),
        )


class PersonaDetail(BrandView):
    scopes = {"read": "personas:read", "write": "personas:write"}
    serializer_class = s.PersonaSerializer

    def get(self, request, brand_slug, persona_id):
        """A persona with its current version; ETag names that version (send it as If-Match)."""
        persona = self.persona(persona_id)
        return Response(s.PersonaSerializer(persona).data, headers={"ETag": s.persona_etag(persona)})

    @extend_schema(request=s.PersonaUpdateSerializer, responses={200: s.PersonaSerializer})
    def patch(self, request, brand_slug, persona_id):
        """Rename, archive or unarchive the persona (creators and owners); both at once, or neither."""
        data = _valid(s.PersonaUpdateSerializer, request)
        persona = self.persona(persona_id)
        with transaction.atomic():
            if "name" in data:
                persona = persona_rename(actor=request.user, brand=self.brand, persona=persona, name=data["name"])
            if "archived" in data:
                change = persona_archive if data["archived"] else persona_unarchive
                persona = change(actor=request.user, brand=self.brand, persona=persona)
        persona = self.persona(persona_id)
        return Response(s.PersonaSerializer(persona).data, headers={"ETag": s.persona_etag(persona)})

    @extend_schema(responses={204: None})
    def delete(self, request, brand_slug, persona_id):
        """Delete the persona with its versions and images (owners). Refused with 409
        `persona_in_use` while images are in review or out, or a campaign or schedule
        uses it: archive it instead."""
        persona_delete(actor=request.user, brand=self.brand, persona=self.persona(persona_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonaVersionList(BrandView, generics.ListAPIView):
    model = PersonaVersion
    serializer_class = s.PersonaVersionSerializer
    scopes = {"read": "personas:read"}
    pagination_class = None

    def brand_queryset(self):
        return persona_versions(brand=self.brand, persona=self.persona(self.kwargs["persona_id"]))


class PersonaChange(BrandView):
    """A change that makes a new version; If-Match (the persona's ETag) guards against
    changing a version other than the one the caller saw."""

    scopes = {"write": "personas:write"}
    input_serializer = None

    def expected_version(self, persona):
        tag = if_match(self.request)
        if tag is None:
            return None
        number = tag.strip().removeprefix("W/").strip('"').removeprefix("version-")
        try:
            return persona_version_get(brand=self.brand, persona=persona, version_id=int(number))
        except (ValueError, Http404):
            raise ApiProblem(
                "If-Match does not name a version of this persona.",
                status=412,
                code="precondition_failed",
                headers={"ETag": s.persona_etag(persona)},
            ) from None

    def post(self, request, brand_slug, persona_id):
        persona = self.persona(persona_id)
        data = _valid(self.input_serializer, request)
        self.change(persona=persona, expected_version=self.expected_version(persona), **data)
        persona = self.persona(persona_id)
        return created(
            s.PersonaSerializer(persona).data,
            url=reverse("api-persona", kwargs={"brand_slug": self.brand.slug, "persona_id": persona.pk}),
            etag=s.persona_etag(persona),
        )


IF_MATCH = OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description="The ETag you saw")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Replays return the first response"
)


class PersonaEdit(PersonaChange):
    input_serializer = s.PersonaEditSerializer

    @extend_schema(request=s.PersonaEditSerializer, responses={201: s.PersonaSerializer}, parameters=[IF_MATCH])
    def post(self, request, brand_slug, persona_id):
        """Move the persona along a direction (a new version)."""
        return super().post(request, brand_slug, persona_id)

    def change(self, *, persona, expected_version, direction, strength):
        direction = get_object_or_404(directions_for_brand(brand=self.brand), pk=direction)
        persona_edit(
            actor=self.request.user,
            brand=self.brand,
            persona=persona,
            direction=direction,
            strength=strength,
            expected_version=expected_version,
        )


class PersonaLibraryApply(PersonaChange):
    input_serializer = s.LibraryApplySerializer

    @extend_schema(request=s.LibraryApplySerializer, responses={201: s.PersonaSerializer}, parameters=[IF_MATCH])
    def post(self, request, brand_slug, persona_id):
        """Apply a look or a pose from the library (a new version; identity rows untouched)."""
        return super().post(request, brand_slug, persona_id)

    def change(self, *, persona, expected_version, item):
        item = get_object_or_404(library_items_for_brand(brand=self.brand), pk=item)
        persona_library_apply(
            actor=self.request.user, brand=self.brand, persona=persona, item=item, expected_version=expected_version
        )


class PersonaRollback(PersonaChange):
    input_serializer = s.RollbackSerializer

    @extend_schema(request=s.RollbackSerializer, responses={201: s.PersonaSerializer}, parameters=[IF_MATCH])
    def post(self, request, brand_slug, persona_id):
        """Go back to an earlier version (as a new version)."""
        return super().post(request, brand_slug, persona_id)

    def change(self, *, persona, expected_version, version):
        target = persona_version_get(brand=self.brand, persona=persona, version_id=version)
        persona_rollback(
            actor=self.request.user,
            brand=self.brand,
            persona=persona,
            version=target,
            expected_version=expected_version,
        )


class PersonaBreed(BrandView):
    scopes = {"write": "personas:write"}

    @extend_schema(request=s.BreedSerializer, responses={201: s.PersonaSerializer}, parameters=[IDEMPOTENCY_KEY])
    @idempotent
    def post(self, request, brand_slug):
        """A new persona from two: the base with the donor's chosen layer groups."""
        data = _valid(s.BreedSerializer, request)
        persona = persona_breed(
            actor=request.user,
            brand=self.brand,
            base=self.persona(data["base"]),
            donor=self.persona(data["donor"]),
            layer_groups=data["layer_groups"],
            name=data["name"],
            handle=data["handle"],
        )
        persona = self.persona(persona.pk)
        return created(
            s.PersonaSerializer(persona).data,
            url=reverse("api-persona", kwargs={"brand_slug": self.brand.slug, "persona_id": persona.pk}),
            etag=s.persona_etag(persona),
        )


class PersonaRender(BrandView):
    scopes = {"write": "personas:write"}

    @extend_schema(request=None, responses={202: s.JobSerializer}, parameters=[IDEMPOTENCY_KEY])
    @idempotent
    def post(self, request, brand_slug, persona_id):
        """Queue a render of the persona's current version; poll the job's URL."""
        job = persona_render_submit(actor=request.user, brand=self.brand, persona=self.persona(persona_id))
        return created(
            s.JobSerializer(job).data,
            url=reverse("api-job", kwargs={"brand_slug": self.brand.slug, "job_id": job.pk}),
            code=status.HTTP_202_ACCEPTED,
        )


# --------------------------------------------------------------------------- library


class LibraryList(BrandView, generics.ListAPIView):
    model = LibraryItem
    serializer_class = s.LibraryItemSerializer
    scopes = {"read": "library:read", "write": "library:write"}

    def brand_queryset(self):
        return library_items_for_brand(brand=self.brand).select_related("model")

    @extend_schema(request=s.LibraryItemCreateSerializer, responses={201: s.LibraryItemSerializer})
    @idempotent
    def post(self, request, brand_slug):
        """A look or pose: an outfit or a gesture (`value`) on a model with such labels; else a seed (with
        class) or a persona version, on one layer group."""
        data = _valid(s.LibraryItemCreateSerializer, request)
        model = get_object_or_404(GeneratorModel, slug=data.pop("model"))
        source = data.pop("source_version", None)
        if source is not None:
            source = get_object_or_404(_brand_versions(self.brand), pk=source)
        item = library_item_create(actor=request.user, brand=self.brand, model=model, source_version=source, **data)
        return created(
            s.LibraryItemSerializer(item).data,
            url=reverse("api-library", kwargs={"brand_slug": self.brand.slug}) + f"#{item.pk}",
        )


def _brand_versions(brand):
    return PersonaVersion.objects.for_brand(brand)


# --------------------------------------------------------------------------- campaigns and jobs


class CampaignMixin:
    def campaign_context(self):
        return {"brand": self.brand, "progress": lambda c: campaign_progress(brand=self.brand, campaign=c)}

    def matrix(self, data):
        personas = [self.persona(pk) for pk in data["personas"]]
        items = library_items_for_brand(brand=self.brand)
        return {
            "versions": [p.current_version for p in personas],
            "looks": [get_object_or_404(items, pk=pk) for pk in data["looks"]],
            "poses": [get_object_or_404(items, pk=pk) for pk in data["poses"]],
            "formats": data["formats"],
            "variants": data["variants"],
        }


class CampaignList(CampaignMixin, BrandView, generics.ListAPIView):
    model = Campaign
    scopes = {"read": "campaigns:read", "write": "campaigns:write"}
    serializer_class = s.CampaignSerializer

    def brand_queryset(self):
        return campaigns_for_brand(brand=self.brand).select_related("created_by")

    def get_serializer_context(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_serializer_context()
        return {**super().get_serializer_context(), **self.campaign_context()}

    @extend_schema(
        request=s.CampaignCreateSerializer, responses={202: s.CampaignSerializer}, parameters=[IDEMPOTENCY_KEY]
    )
    @idempotent
    def post(self, request, brand_slug):
        """Queue a campaign: the personas' current versions × looks × poses × formats ×
        variants. Answers 202 with its URL; poll it, or subscribe to campaign.completed."""
        data = _valid(s.CampaignCreateSerializer, request)
        campaign = campaign_submit(
            actor=request.user,
            brand=self.brand,
            name=data["name"],
            brief=data["brief"],
            idempotency_key=campaign_key(request),
            **self.matrix(data),
        )
        return created(
            s.CampaignSerializer(campaign, context=self.campaign_context()).data,
            url=reverse("api-campaign", kwargs={"brand_slug": self.brand.slug, "campaign_id": campaign.pk}),
            code=status.HTTP_202_ACCEPTED,
        )


class CampaignEstimate(CampaignMixin, BrandView):
    scopes = {"write": "campaigns:read"}

    @extend_schema(request=s.CampaignCreateSerializer, responses={200: s.EstimateSerializer})
    def post(self, request, brand_slug):
        """What a campaign would cost (images, forward passes, worker seconds); queues nothing."""
        data = _valid(s.CampaignCreateSerializer, request)
        estimate = campaign_estimate(actor=request.user, brand=self.brand, **self.matrix(data))
        return Response(estimate.as_dict())


class CampaignDetail(CampaignMixin, BrandView):
    scopes = {"read": "campaigns:read"}

    @extend_schema(responses={200: s.CampaignSerializer})
    def get(self, request, brand_slug, campaign_id):
        campaign = campaign_get(brand=self.brand, campaign_id=campaign_id)
        return Response(s.CampaignSerializer(campaign, context=self.campaign_context()).data)


class CampaignCancel(CampaignMixin, BrandView):
    scopes = {"write": "campaigns:write"}

    @extend_schema(request=None, responses={200: s.CampaignSerializer})
    def post(self, request, brand_slug, campaign_id):
        """Cancel the campaign's unfinished items; finished images are kept."""
        campaign = campaign_get(brand=self.brand, campaign_id=campaign_id)
        campaign_cancel(actor=request.user, brand=self.brand, campaign=campaign)
        campaign = campaign_get(brand=self.brand, campaign_id=campaign_id)
        return Response(s.CampaignSerializer(campaign, context=self.campaign_context()).data)


class JobDetail(BrandView):
    scopes = {"read": "jobs:read"}

    @extend_schema(responses={200: s.JobSerializer})
    def get(self, request, brand_slug, job_id):
        job = get_object_or_404(GenerationJob.objects.for_brand(self.brand).select_related("asset"), pk=job_id)
        return Response(s.JobSerializer(job).data)


# --------------------------------------------------------------------------- assets


class AssetList(BrandView, generics.ListAPIView):
    model = Asset
    scopes = {"read": "assets:read"}
    serializer_class = s.AssetSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("persona", int, description="Only this persona's"),
            OpenApiParameter("campaign", int, description="Only this campaign's"),
            OpenApiParameter("state", str, description="Review state (draft: not submitted)"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def brand_queryset(self):
        assets = Asset.objects.for_brand(self.brand).select_related("review", "persona__model")
        params = self.request.query_params
        for name, lookup in (("persona", "persona_id"), ("campaign", "job__campaign_item__campaign_id")):
            if params.get(name):
                if not params[name].isdigit():
                    raise ApiProblem(f"{name} must be an id.", status=400, code="validation_error")
                assets = assets.filter(**{lookup: int(params[name])})
        state = params.get("state")
        if state == "draft":
            assets = assets.filter(review__isnull=True)
        elif state:
            assets = assets.filter(review__state=state)
        return assets


class AssetDetail(BrandView):
    scopes = {"read": "assets:read"}

    @extend_schema(responses={200: s.AssetSerializer})
    def get(self, request, brand_slug, asset_id):
        """An asset's metadata: provenance, disclosure, review state and file URLs."""
        return Response(s.AssetSerializer(self.asset(), context=self.get_serializer_context()).data)


class AssetFile(BrandView):
    scopes = {"read": "assets:read"}

    @extend_schema(
        responses={
            (200, media): OpenApiResponse(OpenApiTypes.BINARY, description=f"the {kind} file")
            for kind, (_draft, _released, media, _extension) in FILE_KINDS.items()
        }
    )
    def get(self, request, brand_slug, asset_id, kind):
        """A file of the asset, its disclosure embedded: the approved file once released,
        else the draft with the DRAFT mark."""
        asset = self.asset()
        if kind not in FILE_KINDS:
            raise ApiProblem("Files are master, web or thumbnail.", status=404, code="not_found")
        try:
            opened, _released = asset_file_open(asset=asset, kind=kind)
        except FileNotFoundError:
            raise ApiProblem("This asset has no such file.", status=404, code="not_found") from None
        name = asset_download_name(brand=self.brand, asset=asset, kind=kind)
        content_type = FILE_KINDS[kind][2]
        if isinstance(opened, bytes):
            response = HttpResponse(opened, content_type=content_type)
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return FileResponse(opened, content_type=content_type, as_attachment=True, filename=name)


class AssetVerify(BrandView):
    scopes = {"write": "assets:write"}

    @extend_schema(request=None, responses={200: s.VerificationSerializer})
    def post(self, request, brand_slug, asset_id):
        """Re-render the asset from its provenance alone and compare every pixel."""
        verification = asset_verify(actor=request.user, brand=self.brand, asset=self.asset())
        return Response(s.VerificationSerializer(verification).data)


# --------------------------------------------------------------------------- review


class AssetReviewView(BrandView):
    scopes = {"read": "approvals:read"}

    @extend_schema(responses={200: s.ReviewSerializer})
    def get(self, request, brand_slug, asset_id):
        """The asset's review (404 while it is a draft); ETag for decisions' If-Match."""
        review = review_for_asset(brand=self.brand, asset=self.asset())
        if review is None:
            raise ApiProblem("This image has not been submitted for review.", status=404, code="not_in_review")
        return Response(s.ReviewSerializer(review).data, headers={"ETag": review.etag})


class AssetReviewSubmit(BrandView):
    scopes = {"write": "assets:write"}

    @extend_schema(request=None, responses={201: s.ReviewSerializer})
    def post(self, request, brand_slug, asset_id):
        """Send the asset into review on the brand's current workflow."""
        review = review_submit(actor=request.user, brand=self.brand, asset=self.asset())
        review = review_for_asset(brand=self.brand, asset=review.asset)
        return created(
            s.ReviewSerializer(review).data,
            url=reverse("api-asset-review", kwargs={"brand_slug": self.brand.slug, "asset_id": review.asset_id}),
            etag=review.etag,
        )


class AssetDecisions(BrandView):
    model = ReviewDecision
    scopes = {"read": "approvals:read", "write": "approvals:decide"}
    pagination_class = None

    @extend_schema(responses={200: s.DecisionSerializer(many=True)})
    def get(self, request, brand_slug, asset_id):
        """The review's history: submission and decisions, oldest first."""
        review = review_for_asset(brand=self.brand, asset=self.asset())
        history = review_history(brand=self.brand, review=review) if review else []
        return Response(s.DecisionSerializer(history, many=True).data)

    @extend_schema(request=s.DecisionCreateSerializer, responses={201: s.ReviewSerializer}, parameters=[IF_MATCH])
    def post(self, request, brand_slug, asset_id):
        """Approve, request changes or reject (a reason code is needed for the last two).
        If-Match: the review's ETag; stale → 412 with the current one."""
        data = _valid(s.DecisionCreateSerializer, request)
        asset = self.asset()
        review_decide(actor=request.user, brand=self.brand, asset_id=asset.pk, if_match=if_match(request), **data)
        review = review_for_asset(brand=self.brand, asset=asset)
        return created(
            s.ReviewSerializer(review).data,
            url=reverse("api-asset-review", kwargs={"brand_slug": self.brand.slug, "asset_id": asset.pk}),
            etag=review.etag,
        )


class AssetComments(BrandView):
    model = AssetComment
    scopes = {"read": "approvals:read", "write": "comments:write"}
    pagination_class = None

    @extend_schema(responses={200: s.CommentSerializer(many=True)})
    def get(self, request, brand_slug, asset_id):
        """Comments, oldest first; a reply names its parent."""
        threads = comments_for_asset(brand=self.brand, asset=self.asset())
        flat = []

        def walk(comments):
            for comment in comments:
                flat.append(comment)
                walk(comment.thread)

        walk(threads)
        return Response(s.CommentSerializer(sorted(flat, key=lambda c: c.pk), many=True).data)

    @extend_schema(
        request=s.CommentCreateSerializer, responses={201: s.CommentSerializer}, parameters=[IDEMPOTENCY_KEY]
    )
    @idempotent
    def post(self, request, brand_slug, asset_id):
        """Comment (or reply); @username notifies that member."""
        data = _valid(s.CommentCreateSerializer, request)
        comment = comment_add(
            actor=request.user, brand=self.brand, asset=self.asset(), body=data["body"], parent_id=data.get("parent")
        )
        return created(
            s.CommentSerializer(comment).data,
            url=reverse("api-asset-comments", kwargs={"brand_slug": self.brand.slug, "asset_id": comment.asset_id}),
        )


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --------------------------------------------------------------------------- webhooks


class WebhookEndpointList(BrandView, generics.ListAPIView):
    model = WebhookEndpoint
    serializer_class = s.WebhookEndpointSerializer
    scopes = {"read": "webhooks:read", "write": "webhooks:write"}
    pagination_class = None

    def brand_queryset(self):
        return webhook_endpoints_for_brand(brand=self.brand)

    # Not @idempotent: a replay would have to keep the endpoint's secret.
    @extend_schema(request=s.WebhookEndpointCreateSerializer, responses={201: s.WebhookSecretSerializer})
    def post(self, request, brand_slug):
        """Subscribe an endpoint to events; the signing secret is in this response only."""
        data = _valid(s.WebhookEndpointCreateSerializer, request)
        endpoint, secret = webhook_endpoint_create(actor=request.user, brand=self.brand, **data)
        return created(
            {"endpoint": s.WebhookEndpointSerializer(endpoint).data, "secret": secret},
            url=reverse("api-webhook", kwargs={"brand_slug": self.brand.slug, "endpoint_id": endpoint.pk}),
        )


class EndpointLookup:
    def endpoint(self):
        return webhook_endpoint_get(brand=self.brand, endpoint_id=self.kwargs["endpoint_id"])


class WebhookEndpointDetail(EndpointLookup, BrandView):
    scopes = {"read": "webhooks:read", "write": "webhooks:write"}

    @extend_schema(responses={200: s.WebhookEndpointSerializer})
    def get(self, request, brand_slug, endpoint_id):
        return Response(s.WebhookEndpointSerializer(self.endpoint()).data)

    @extend_schema(request=s.WebhookEndpointUpdateSerializer, responses={200: s.WebhookEndpointSerializer})
    def patch(self, request, brand_slug, endpoint_id):
        """Change the URL, events, description, or enable it again."""
        data = _valid(s.WebhookEndpointUpdateSerializer, request)
        endpoint = webhook_endpoint_update(actor=request.user, endpoint=self.endpoint(), **data)
        return Response(s.WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, brand_slug, endpoint_id):
        webhook_endpoint_delete(actor=request.user, endpoint=self.endpoint())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretRotation(EndpointLookup, BrandView):
    scopes = {"write": "webhooks:write"}

    @extend_schema(request=None, responses={201: s.WebhookSecretSerializer})
    def post(self, request, brand_slug, endpoint_id):
        """A new signing secret (shown once); the old one keeps signing for 24 h as well."""
        endpoint = self.endpoint()
        secret = webhook_endpoint_rotate_secret(actor=request.user, endpoint=endpoint)
        endpoint.refresh_from_db()
        return created(
            {"endpoint": s.WebhookEndpointSerializer(endpoint).data, "secret": secret},
            url=reverse("api-webhook", kwargs={"brand_slug": self.brand.slug, "endpoint_id": endpoint.pk}),
        )


class WebhookDeliveryList(EndpointLookup, BrandView, generics.ListAPIView):
    model = WebhookDelivery
    serializer_class = s.WebhookDeliverySerializer
    scopes = {"read": "webhooks:read"}

    def brand_queryset(self):
        return webhook_deliveries_for_endpoint(endpoint=self.endpoint())

    def get(self, request, *args, **kwargs):
        """The endpoint's delivery log, newest first."""
        return super().get(request, *args, **kwargs)


class WebhookDeliveryReplay(EndpointLookup, BrandView):
    scopes = {"write": "webhooks:write"}

    @extend_schema(request=None, responses={202: s.WebhookDeliverySerializer})
    def post(self, request, brand_slug, endpoint_id, delivery_id):
        """Send a delivery's message again (same webhook-id, so receivers can de-duplicate)."""
        delivery = webhook_delivery_get(endpoint=self.endpoint(), delivery_id=delivery_id)
        replay = webhook_delivery_replay(actor=request.user, delivery=delivery)
        return created(
            s.WebhookDeliverySerializer(replay).data,
            url=reverse("api-webhook-deliveries", kwargs={"brand_slug": self.brand.slug, "endpoint_id": endpoint_id}),
            code=status.HTTP_202_ACCEPTED,
        )


# --------------------------------------------------------------------------- tokens


class ApiTokenList(BrandView, generics.ListAPIView):
    model = ApiToken
    serializer_class = s.ApiTokenSerializer
    scopes = {"read": "tokens:read", "write": "tokens:write"}
    roles = {Role.OWNER}
    pagination_class = None

    def brand_queryset(self):
        return api_tokens_for_brand(brand=self.brand)

    # Not @idempotent: a replay would have to keep the new token's secret.
    @extend_schema(request=s.ApiTokenCreateSerializer, responses={201: s.ApiTokenCreatedSerializer})
    def post(self, request, brand_slug):
        """A brand token (owners): the whole token is in this response only. Made with a
        token, it gets at most that token's scopes and lives no longer than it."""
        data = _valid(s.ApiTokenCreateSerializer, request)
        scopes, expires_at = data["scopes"], data.get("expires_at")
        caller = request.auth if isinstance(request.auth, ApiToken) else None
        if caller is not None:
            beyond = sorted(set(scopes) - set(caller.scopes))
            if beyond:
                raise ApiProblem(
                    f"A token cannot give more than it has; this one lacks {', '.join(beyond)}.",
                    status=403,
                    code="insufficient_scope",
                )
            expires_at = min(expires_at or caller.expires_at, caller.expires_at)
        brand = self.brand
        token, raw = api_token_create(
            actor=request.user, name=data["name"], scopes=scopes, expires_at=expires_at, brand=brand, brands=[brand]
        )
        return created(
            {"token": s.ApiTokenSerializer(token, context={"brand": brand}).data, "secret": raw},
            url=reverse("api-brand-token", kwargs={"brand_slug": self.brand.slug, "token_id": token.pk}),
        )


class ApiTokenDetail(BrandView):
    scopes = {"read": "tokens:read", "write": "tokens:write"}
    roles = {Role.OWNER}

    @extend_schema(responses={200: s.ApiTokenSerializer})
    def get(self, request, brand_slug, token_id):
        token = api_token_get(brand=self.brand, token_id=token_id)
        return Response(s.ApiTokenSerializer(token, context={"brand": self.brand}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, brand_slug, token_id):
        """Revoke the token: it stops working at once."""
        api_token_revoke(actor=request.user, token=api_token_get(brand=self.brand, token_id=token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- publishing


class ChannelList(BrandView, generics.ListAPIView):
    model = Channel
    serializer_class = s.ChannelSerializer
    scopes = {"read": "publishing:read"}
    pagination_class = None

    def brand_queryset(self):
        return channels_for_brand(brand=self.brand)


class ScheduleList(BrandView, generics.ListAPIView):
    model = Schedule
    serializer_class = s.ScheduleSerializer
    scopes = {"read": "publishing:read"}
    pagination_class = None

    def brand_queryset(self):
        return schedules_for_brand(brand=self.brand)


CALENDAR_DAYS_MAX = 62


class PostList(BrandView, generics.ListAPIView):
    """The calendar: posts whose publish time is in [start, end)."""

    model = Post
    serializer_class = s.PostSerializer
    scopes = {"read": "publishing:read", "write": "publishing:write"}
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, required=True, description="From (inclusive)"),
            OpenApiParameter("end", OpenApiTypes.DATETIME, required=True, description="To (exclusive), ≤ 62 days on"),
            OpenApiParameter("state", str, description="Only posts in this state"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def brand_queryset(self):
        brand, params = self.brand, self.request.query_params
        start, end = _instant(params.get("start"), "start"), _instant(params.get("end"), "end")
        if not start < end <= start + timedelta(days=CALENDAR_DAYS_MAX):
            raise ApiProblem(
                f"end must come after start, at most {CALENDAR_DAYS_MAX} days later.",
                status=400,
                code="validation_error",
            )
        states = [params["state"]] if params.get("state") else None
        return posts_in_range(brand=brand, start=start, end=end, states=states)

    @extend_schema(request=s.PostCreateSerializer, responses={201: s.PostSerializer}, parameters=[IDEMPOTENCY_KEY])
    @idempotent
    def post(self, request, brand_slug):
        """Schedule an approved asset on a channel; refused (400, by field) when it is not
        approved, the channel's disclosure policy is not met, or the time has passed."""
        data = _valid(s.PostCreateSerializer, request)
        channel = channel_get(brand=self.brand, channel_id=data["channel"])
        if channel is None:
            raise ApiProblem("No such channel.", status=404, code="not_found")
        post = post_create(
            actor=request.user,
            brand=self.brand,
            asset=asset_get(brand=self.brand, asset_id=data["asset"]),
            channel=channel,
            publish_at=data["publish_at"],
            caption=data.get("caption"),
        )
        return created(
            s.PostSerializer(post).data,
            url=reverse("api-post", kwargs={"brand_slug": self.brand.slug, "post_id": post.pk}),
        )


def _instant(value, name):
    moment = parse_datetime(value or "")
    if moment is None or moment.tzinfo is None:
        raise ApiProblem(
            f"{name} must be an ISO 8601 date and time with its offset, e.g. 2026-12-01T00:00:00Z.",
            status=400,
            code="validation_error",
        )
    return moment


class PostLookup:
    def post_of_brand(self):
        post = post_get(brand=self.brand, post_id=self.kwargs["post_id"])
        if post is None:
            raise ApiProblem("Not found.", status=404, code="not_found")
        return post

    def detail(self, post):
        log = post_log(brand=self.brand, post=post)
        return Response(s.PostDetailSerializer(post, context={"log": log}).data)


class PostDetail(PostLookup, BrandView):
    scopes = {"read": "publishing:read"}

    @extend_schema(responses={200: s.PostDetailSerializer})
    def get(self, request, brand_slug, post_id):
        """A post with its publish log (each attempt and the channel's answer)."""
        return self.detail(self.post_of_brand())


class PostReschedule(PostLookup, BrandView):
    scopes = {"write": "publishing:write"}

    @extend_schema(request=s.PostRescheduleSerializer, responses={200: s.PostDetailSerializer})
    def post(self, request, brand_slug, post_id):
        """Move a scheduled or failed post to another time (re-checks that its approval holds)."""
        data = _valid(s.PostRescheduleSerializer, request)
        post = post_reschedule(
            actor=request.user,
            brand=self.brand,
            post=self.post_of_brand(),
            publish_at=data["publish_at"],
            caption=data.get("caption"),
        )
        return self.detail(post)


class PostCancel(PostLookup, BrandView):
    scopes = {"write": "publishing:write"}

    @extend_schema(request=None, responses={200: s.PostDetailSerializer})
    def post(self, request, brand_slug, post_id):
        post = post_cancel(actor=request.user, brand=self.brand, post=self.post_of_brand())
        return self.detail(post)
