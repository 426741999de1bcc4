"""What the API shows and accepts. Output serializers read model rows; input
serializers only shape and type-check, the services decide what is allowed."""

from django.urls import reverse
from rest_framework import serializers

from approvals.models import Action, AssetComment, AssetReview, ReasonCode, ReviewDecision
from avatars.models import LibraryItem, Persona, PersonaVersion
from brands.models import API_SCOPES, ApiToken, Brand
from campaigns.models import Campaign
from content.formats import FORMATS
from generation.models import Direction, GenerationJob, GeneratorModel
from publishing.models import Channel, Post, PublishAttempt, Schedule
from publishing.selectors import schedule_next_runs
from webhooks import EVENTS
from webhooks.models import WebhookDelivery, WebhookEndpoint


class BrandSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Brand
        fields = ["slug", "name", "role", "monthly_image_quota", "identity_threshold"]

    def get_role(self, brand) -> str:
        return self.context["roles"].get(brand.pk, "")


class GeneratorModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = GeneratorModel
        fields = [
            "slug", "name", "sha256", "licence_note", "class_names", "class_attributes", "layer_groups", "num_ws",
            "w_dim", "identity_measure",
        ]  # fmt: skip


class DirectionSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Direction
        fields = ["id", "name", "kind", "model", "layer_group", "strength_min", "strength_max"]


class PersonaVersionSerializer(serializers.ModelSerializer):
    description = serializers.CharField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = PersonaVersion
        fields = ["id", "number", "operation", "params", "description", "sha256", "created_by", "created_at"]


class PersonaSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    current_version = PersonaVersionSerializer(read_only=True)
    etag = serializers.SerializerMethodField()

    class Meta:
        model = Persona
        fields = [
            "id",
            "name",
            "handle",
            "bio",
            "model",
            "seed",
            "truncation_psi",
            "current_version",
            "etag",
            "archived",
            "archived_at",
            "created_at",
        ]

    def get_etag(self, persona) -> str:
        return persona_etag(persona)


def persona_etag(persona):
    return f'"version-{persona.current_version_id}"'


class PersonaCreateSerializer(serializers.Serializer):
    model = serializers.SlugField()
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1)
    name = serializers.CharField(max_length=120)
    handle = serializers.SlugField(max_length=60)
    truncation_psi = serializers.FloatField(default=0.7, min_value=0.0, max_value=1.0)
    class_index = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    bio = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class PersonaUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, help_text="A new display name (the handle stays).")
    archived = serializers.BooleanField(
        required=False, help_text="true archives (never rendered nor put into new campaigns), false brings it back."
    )


class PersonaEditSerializer(serializers.Serializer):
    direction = serializers.IntegerField(min_value=1, help_text="A direction id (GET …/directions/).")
    strength = serializers.FloatField(min_value=-100, max_value=100)


class LibraryApplySerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1, help_text="A look or pose id (GET …/library/).")


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The id of the version to go back to.")


class BreedSerializer(serializers.Serializer):
    base = serializers.IntegerField(min_value=1)
    donor = serializers.IntegerField(min_value=1)
    layer_groups = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=32)
    name = serializers.CharField(max_length=120)
    handle = serializers.SlugField(max_length=60)


class LibraryItemSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = LibraryItem
        fields = ["id", "kind", "name", "layer_group", "attribute", "value", "model", "created_at"]


class LibraryItemCreateSerializer(serializers.Serializer):
    model = serializers.SlugField()
    kind = serializers.ChoiceField(choices=LibraryItem.Kind.choices)
    name = serializers.CharField(max_length=120)
    value = serializers.CharField(
        max_length=80, required=False, allow_null=True,
        help_text="On a model with outfit × gesture classes: the outfit (look) or gesture (pose) it gives.",
    )  # fmt: skip
    layer_group = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**32 - 1)
    truncation_psi = serializers.FloatField(default=0.7, min_value=0.0, max_value=1.0)
    class_index = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    source_version = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class JobSerializer(serializers.ModelSerializer):
    persona = serializers.PrimaryKeyRelatedField(read_only=True)
    version = serializers.PrimaryKeyRelatedField(read_only=True)
    asset = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "persona",
            "version",
            "status",
            "attempts",
            "error",
            "output_format",
            "queued_at",
            "started_at",
            "finished_at",
            "asset",
        ]

    def get_asset(self, job) -> int | None:
        asset = getattr(job, "asset", None)
        return asset.pk if asset is not None else None


class CampaignSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "brief",
            "matrix",
            "formats",
            "variants",
            "estimate",
            "progress",
            "created_by",
            "created_at",
            "cancelled_at",
        ]

    def get_progress(self, campaign) -> dict:
        progress = self.context["progress"](campaign)
        return {
            "state": progress.state,
            "total": progress.total,
            "done": progress.done,
            "queued": progress.queued,
            "running": progress.running,
            "succeeded": progress.succeeded,
            "failed": progress.failed,
            "cancelled": progress.cancelled,
        }


class CampaignCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    brief = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    personas = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=50, help_text="Persona ids."
    )
    looks = serializers.ListField(child=serializers.IntegerField(min_value=1), default=list, max_length=50)
    poses = serializers.ListField(child=serializers.IntegerField(min_value=1), default=list, max_length=50)
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(FORMATS)), min_length=1, max_length=len(FORMATS)
    )
    variants = serializers.IntegerField(default=1, min_value=1, max_value=16)


class EstimateSerializer(serializers.Serializer):
    images = serializers.IntegerField()
    renders = serializers.IntegerField()
    seconds = serializers.FloatField(allow_null=True)
    basis = serializers.ListField(child=serializers.DictField())


class ReviewSerializer(serializers.ModelSerializer):
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    step = serializers.SerializerMethodField()
    etag = serializers.CharField(read_only=True)
    workflow_revision = serializers.IntegerField(source="workflow.revision", read_only=True)

    class Meta:
        model = AssetReview
        fields = [
            "id",
            "state",
            "step",
            "workflow_revision",
            "content_sha256",
            "persona_version",
            "revision",
            "etag",
            "submitted_by",
            "submitted_at",
            "decided_by",
            "decided_at",
        ]

    def get_step(self, review) -> dict | None:
        step = review.current_step
        return {"index": review.step_index, "name": step["name"], "mode": step["mode"]} if step else None


class DecisionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ReviewDecision
        fields = [
            "id",
            "actor",
            "action",
            "step_index",
            "step_name",
            "from_state",
            "to_state",
            "reason_code",
            "reason_text",
            "content_sha256",
            "created_at",
        ]


class DecisionCreateSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[(a.value, a.label) for a in Action if a != Action.SUBMIT])
    reason_code = serializers.ChoiceField(choices=ReasonCode.choices, required=False, allow_blank=True, default="")
    reason_text = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AssetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    persona = serializers.IntegerField(source="persona_id")
    version = serializers.IntegerField(source="version_id")
    job = serializers.IntegerField(source="job_id", allow_null=True)
    output_format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    sha256 = serializers.CharField()
    identity_consistency = serializers.FloatField(
        allow_null=True, help_text="Identity similarity to the persona's reference render (the model's measure)."
    )
    identity_meaning = serializers.CharField(
        allow_null=True, read_only=True, help_text="The similarity in words, e.g. 'same person: 0.97, threshold 0.95'."
    )
    released = serializers.BooleanField()
    review_state = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField()
    disclosure = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_review_state(self, asset) -> str:
        review = getattr(asset, "review", None)
        return review.state if review is not None else "draft"

    def get_provenance(self, asset) -> dict:
        return asset.metadata.get("provenance", {})

    def get_disclosure(self, asset) -> dict:
        return asset.metadata.get("disclosure", {})

    def get_files(self, asset) -> dict:
        """Absolute download URLs, by kind."""
        brand_slug, request = self.context["brand"].slug, self.context.get("request")
        urls = {
            kind: reverse("api-asset-file", kwargs={"brand_slug": brand_slug, "asset_id": asset.pk, "kind": kind})
            for kind in ("master", "web", "thumbnail")
            if getattr(asset, "image" if kind == "master" else kind)
        }
        return {kind: request.build_absolute_uri(path) if request else path for kind, path in urls.items()}


class VerificationSerializer(serializers.Serializer):
    result = serializers.CharField(help_text='"bit-exact", "within tolerance" or "mismatch"')
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    max_difference = serializers.IntegerField(allow_null=True)
    mean_difference = serializers.FloatField(allow_null=True)
    device = serializers.CharField()
    dtype = serializers.CharField()


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    mentions = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = AssetComment
        fields = ["id", "parent", "author", "body", "mentions", "created_at"]


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=4000)
    parent = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "disabled_reason",
            "consecutive_failures",
            "previous_secret_expires_at",
            "created_at",
        ]


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), min_length=1)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), min_length=1, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    enabled = serializers.BooleanField(required=False)


class WebhookSecretSerializer(serializers.Serializer):
    endpoint = WebhookEndpointSerializer()
    secret = serializers.CharField(help_text="whsec_…: shown once; verify signatures with it.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_response",
            "last_error",
            "replay_of",
            "created_at",
            "delivered_at",
        ]


class ApiTokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display", read_only=True)
    brands = serializers.SerializerMethodField(
        help_text="Of the brands it acts for, this one (an agency's others stay private)"
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "brands",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_brands(self, token) -> list[str]:
        brand = self.context["brand"]
        return [brand.slug] if token.brands.filter(pk=brand.pk).exists() else []


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=API_SCOPES), min_length=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiTokenCreatedSerializer(serializers.Serializer):
    token = ApiTokenSerializer()
    secret = serializers.CharField(help_text="The whole token (ps_live_…): shown once, never again.")


class ChannelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "caption_labels",
            "require_c2pa",
            "require_digital_source_type",
            "enabled",
            "created_at",
        ]


class ScheduleSerializer(serializers.ModelSerializer):
    persona = serializers.PrimaryKeyRelatedField(read_only=True)
    next_runs = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "persona",
            "kind",
            "cron",
            "interval_seconds",
            "timezone",
            "images_per_run",
            "looks",
            "poses",
            "formats",
            "caption_templates",
            "missed_policy",
            "enabled",
            "next_run_at",
            "next_runs",
        ]

    def get_next_runs(self, schedule) -> list[str]:
        return [run.isoformat() for run in schedule_next_runs(schedule=schedule, count=5)]


class PublishAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PublishAttempt
        fields = ["number", "started_at", "finished_at", "ok", "retryable", "status_code", "response", "error"]


class PostSerializer(serializers.ModelSerializer):
    asset = serializers.PrimaryKeyRelatedField(read_only=True)
    channel = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Post
        fields = [
            "id",
            "asset",
            "channel",
            "caption",
            "publish_at",
            "state",
            "attempts",
            "next_attempt_at",
            "published_at",
            "external_id",
            "external_url",
            "blocked_reason",
            "last_error",
            "created_at",
        ]


class PostDetailSerializer(PostSerializer):
    log = serializers.SerializerMethodField()

    class Meta(PostSerializer.Meta):
        fields = [*PostSerializer.Meta.fields, "log"]

    def get_log(self, post) -> list[dict]:
        return PublishAttemptSerializer(self.context["log"], many=True).data


class PostCreateSerializer(serializers.Serializer):
    asset = serializers.IntegerField(min_value=1, help_text="An approved asset.")
    channel = serializers.IntegerField(min_value=1)
    publish_at = serializers.DateTimeField()
    caption = serializers.CharField(required=False, allow_null=True, max_length=5000, help_text="Default: its draft")


class PostRescheduleSerializer(serializers.Serializer):
    publish_at = serializers.DateTimeField()
    caption = serializers.CharField(required=False, allow_null=True, max_length=5000)
