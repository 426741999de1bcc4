"""Email about reviews and comments, sent through Django's email backend (the
console by default, SMTP when EMAIL_HOST is set), subscribed to the events the
approval services emit after commit."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.urls import reverse

from brands.models import Brand
from common.events import event_subscribe

from .models import AssetReview
from .selectors import asset_makers, step_decider_ids, step_label

DECIDED = {
    "asset.approved": "approved",
    "asset.rejected": "rejected",
    "asset.changes_requested": "sent back with changes requested",
}


def subscribe():
    event_subscribe("review.submitted", review_waiting_notify)
    event_subscribe("review.step_passed", review_waiting_notify)
    for name in DECIDED:
        event_subscribe(name, review_decided_notify)
    event_subscribe("comment.created", comment_mentions_notify)


def _asset_url(brand, asset_id):
    path = reverse("asset-detail", kwargs={"brand_slug": brand.slug, "asset_id": asset_id})
    return settings.SITE_URL.rstrip("/") + path


def _send(recipients, subject, body):
    """One message per recipient (no one sees the others' addresses); users without
    an email address are skipped."""
    messages = [(subject, body, None, [user.email]) for user in recipients if user.email]
    send_mass_mail(messages, fail_silently=False)


def review_waiting_notify(event):
    """Tell the deciders of the step the image now waits on."""
    review = (
        AssetReview.objects.unscoped()
        .select_related("brand", "asset__persona", "workflow")
        .get(pk=event.payload["review_id"])
    )
    step = review.current_step
    if step is None:
        return
    makers = set(asset_makers(asset=review.asset))
    deciders = get_user_model().objects.filter(pk__in=step_decider_ids(brand=review.brand, step=step) - makers)
    persona = review.asset.persona
    _send(
        deciders,
        f"[{review.brand.name}] An image of @{persona.handle} waits for your review",
        f"An image of {persona.name} (@{persona.handle}) waits at step “{step['name']}”, "
        f"decided by {step_label(step)}.\n\nReview it: {_asset_url(review.brand, review.asset_id)}\n",
    )


def review_decided_notify(event):
    """Tell the people who made the image (and submitted it) what was decided."""
    review = (
        AssetReview.objects.unscoped()
        .select_related("brand", "asset__persona", "submitted_by")
        .get(pk=event.payload["review_id"])
    )
    people = set(asset_makers(asset=review.asset))
    if review.submitted_by_id:
        people.add(review.submitted_by_id)
    recipients = get_user_model().objects.filter(pk__in=people).exclude(username=event.payload["actor"])
    reason = ""
    if event.payload["reason_code"]:
        reason = f"\nReason: {event.payload['reason_code']}. {event.payload['reason_text']}".rstrip() + "\n"
    persona = review.asset.persona
    _send(
        recipients,
        f"[{review.brand.name}] Image of @{persona.handle} {DECIDED[event.name]}",
        f"{event.payload['actor']} {DECIDED[event.name]} an image of {persona.name} (@{persona.handle}).\n"
        f"{reason}\nSee it: {_asset_url(review.brand, review.asset_id)}\n",
    )


def comment_mentions_notify(event):
    brand = Brand.objects.get(pk=event.brand_id)
    mentioned = get_user_model().objects.filter(pk__in=event.payload["mentioned_user_ids"])
    _send(
        mentioned,
        f"[{brand.name}] {event.payload['author']} mentioned you in a comment",
        f"{event.payload['author']} mentioned you in a comment on an image.\n\n"
        f"Read it: {_asset_url(brand, event.payload['asset_id'])}\n",
    )
