"""Domain events: one internal function emits them, after the transaction that
caused them commits; subscribers (email notifications now, the API's webhooks
and publishing later) register a handler for an event name or for every event.

A handler's failure is logged and never reaches the emitter: the change it
reports has already committed.
"""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

ALL_EVENTS = "*"

_handlers = defaultdict(list)


@dataclass(frozen=True)
class Event:
    name: str
    brand_id: int | None
    payload: dict
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: timezone.now().isoformat())


def event_subscribe(name, handler):
    """Call `handler(event)` for each event called `name` (or every event, ALL_EVENTS)."""
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def event_emit(*, name, brand, payload):
    """Emit an event once the current transaction commits (at once outside one).
    `payload` must be JSON-serialisable: webhooks send it as it is."""
    event = Event(name=name, brand_id=brand.pk if brand is not None else None, payload=payload)
    transaction.on_commit(lambda: _deliver(event))
    return event


def _deliver(event):
    for handler in [*_handlers[event.name], *_handlers[ALL_EVENTS]]:
        try:
            handler(event)
        except Exception:
            log.exception("Event %s (%s): handler %s failed", event.name, event.id, handler.__qualname__)
