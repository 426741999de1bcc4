"""Signed webhooks (Standard Webhooks) for brands and agencies.

EVENTS are the event names an endpoint may subscribe to; common.events emits
them after commit and webhooks.delivery turns each into one delivery per
subscribed endpoint."""

EVENTS = (
    "campaign.completed",
    "asset.created",
    "asset.approved",
    "asset.released",
    "asset.rejected",
    "asset.changes_requested",
    "job.failed",
    "post.scheduled",
    "post.rescheduled",
    "post.cancelled",
    "post.published",
    "post.failed",
    "post.lapsed",
)
