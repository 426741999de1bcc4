"""Brand-scoped reads for the approval workflow."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Min, Prefetch

from brands.models import AgencyAccess, Membership
from brands.selectors import brand_role
from campaigns.models import CampaignItem
from content.models import Asset

from .models import Action, AssetComment, AssetReview, ReviewDecision, ReviewerGroup, ReviewState, Workflow


def workflow_current(*, brand):
    """The brand's newest workflow revision, or None before its first review."""
    return Workflow.objects.for_brand(brand).order_by("-revision").first()


def reviewer_groups_for_brand(*, brand):
    return list(ReviewerGroup.objects.for_brand(brand).prefetch_related("members"))


def brand_member_ids(*, brand):
    """Every user with a role on the brand, directly or through an agency."""
    direct = Membership.objects.filter(brand=brand).values_list("user_id", flat=True)
    through_agencies = AgencyAccess.objects.filter(brand=brand).values_list("agency__members", flat=True)
    return {pk for pk in [*direct, *through_agencies] if pk is not None}


def brand_members(*, brand):
    return list(get_user_model().objects.filter(pk__in=brand_member_ids(brand=brand)).order_by("username"))


def step_label(step):
    """Who decides a step, in words: "reviewers or owners", "the Legal group"."""
    names = [f"{role}s" for role in step["roles"]]
    if step.get("group"):
        names.append(f"the {step['group_name']} group")
    who = " or ".join(names)
    return f"all {who}" if step["mode"] == "all" else who


def user_may_decide_step(*, user, brand, step, role=None):
    """Whether `user` decides `step`; `role`, when the caller knows it, saves the lookup."""
    role = role or brand_role(user=user, brand=brand)
    if role is None:
        return False
    if role in step["roles"]:
        return True
    group_id = step.get("group")
    if not group_id:
        return False
    if "members" in step:  # the group as it was when the revision was written
        return user.pk in step["members"]
    return ReviewerGroup.objects.for_brand(brand).filter(pk=group_id, members=user).exists()


def step_decider_ids(*, brand, step):
    """The users who may decide a step now (roles and group as they are today)."""
    members = get_user_model().objects.filter(pk__in=brand_member_ids(brand=brand))
    return {user.pk for user in members if user_may_decide_step(user=user, brand=brand, step=step)}


def asset_makers(*, asset):
    """{user id: why they may not approve it}: who rendered the asset and who
    submitted the campaign it belongs to."""
    makers = {}
    job = asset.job
    if job is not None and job.requested_by_id:
        makers[job.requested_by_id] = "You made this image, so someone else must approve it."
    # The reverse relation (selected with the asset on list pages) rather than a query per asset.
    try:
        item = job.campaign_item if job is not None else None
    except CampaignItem.DoesNotExist:
        item = None
    if item is not None and item.campaign.created_by_id:
        makers.setdefault(
            item.campaign.created_by_id, "You submitted this image's campaign, so someone else must approve it."
        )
    return makers


def review_approvers(*, review, step_index):
    return set(
        ReviewDecision.objects.for_brand(review.brand)
        .filter(review=review, step_index=step_index, action=Action.APPROVE)
        .values_list("actor_id", flat=True)
    )


def review_for_asset(*, brand, asset):
    return (
        AssetReview.objects.for_brand(brand)
        .select_related("workflow", "decided_by", "submitted_by")
        .filter(asset=asset)
        .first()
    )


def review_history(*, brand, review):
    return list(ReviewDecision.objects.for_brand(brand).filter(review=review).select_related("actor"))


def comments_for_asset(*, brand, asset):
    """Top-level comments with their replies (any depth) attached as `.thread`."""
    comments = list(
        AssetComment.objects.for_brand(brand)
        .filter(asset=asset)
        .select_related("author")
        .prefetch_related(Prefetch("mentions"))
    )
    children = {}
    for comment in comments:
        children.setdefault(comment.parent_id, []).append(comment)
    for comment in comments:
        comment.thread = children.get(comment.pk, [])
    return children.get(None, [])


def queue_assets(*, brand, state=ReviewState.IN_REVIEW, campaign_id=None, persona_id=None, step=None):
    """Assets by review state (draft: never submitted), oldest submission first, with
    their review, persona and campaign; filters by campaign, persona and step index."""
    assets = Asset.objects.for_brand(brand).select_related(
        "persona", "version", "review", "review__workflow", "review__decided_by", "job__campaign_item__campaign"
    )
    if state == ReviewState.DRAFT:
        assets = assets.filter(review__isnull=True).order_by("-created_at", "-id")
    else:
        assets = assets.filter(review__state=state).order_by("review__submitted_at", "id")
    if campaign_id:
        assets = assets.filter(job__campaign_item__campaign_id=campaign_id)
    if persona_id:
        assets = assets.filter(persona_id=persona_id)
    if step is not None and state == ReviewState.IN_REVIEW:
        assets = assets.filter(review__step_index=step)
    return assets


def persona_reference_assets(*, brand, persona_ids):
    """{persona id: the asset that shows the persona as it was first made}: the
    earliest image of its first version (what identity scores compare against),
    else its earliest image."""
    mine = Asset.objects.for_brand(brand).filter(persona_id__in=set(persona_ids))
    first_of_version_one = dict(
        mine.filter(version__number=1).values("persona_id").annotate(first=Min("id")).values_list("persona_id", "first")
    )
    first_at_all = dict(mine.values("persona_id").annotate(first=Min("id")).values_list("persona_id", "first"))
    chosen = {persona: first_of_version_one.get(persona, first) for persona, first in first_at_all.items()}
    by_id = Asset.objects.for_brand(brand).in_bulk(list(chosen.values()))
    return {persona: by_id[asset_id] for persona, asset_id in chosen.items()}


def queue_counts(*, brand):
    """{state: number of assets} for the queue's state tabs."""
    counts = dict.fromkeys(ReviewState.values, 0)
    for row in AssetReview.objects.for_brand(brand).values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    counts[ReviewState.DRAFT] = Asset.objects.for_brand(brand).filter(review__isnull=True).count()
    return counts
