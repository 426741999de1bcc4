from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from avatars.models import LibraryItem, Persona
from brands.models import Brand
from campaigns.services import campaign_estimate, campaign_submit


def _names(value):
    return [name.strip() for name in value.split(",") if name.strip()] if value else []


class Command(BaseCommand):
    help = "Queue a campaign: personas (current versions) × looks × poses × formats × variants, as a brand member."

    def add_arguments(self, parser):
        parser.add_argument("--brand", required=True, help="Brand slug.")
        parser.add_argument("--user", required=True, help="The member it is done as (creator or owner).")
        parser.add_argument("--name", required=True)
        parser.add_argument("--personas", required=True, help="Comma-separated handles.")
        parser.add_argument("--looks", default="", help="Comma-separated look names from the brand's library.")
        parser.add_argument("--poses", default="", help="Comma-separated pose names from the brand's library.")
        parser.add_argument("--formats", default="1:1", help="Comma-separated: 1:1, 4:5, 9:16.")
        parser.add_argument("--variants", type=int, default=1)
        parser.add_argument("--brief", default="")
        parser.add_argument("--idempotency-key", default="", help="The same key again returns the same campaign.")
        parser.add_argument("--estimate", action="store_true", help="Only print the image count and cost.")

    def handle(self, *args, **options):
        brand = Brand.objects.filter(slug=options["brand"]).first()
        user = get_user_model().objects.filter(username=options["user"]).first()
        if brand is None or user is None:
            raise CommandError(f"No brand {options['brand']!r} with a user {options['user']!r}.")
        matrix = {
            "versions": [self._persona(brand, handle).current_version for handle in _names(options["personas"])],
            "looks": [self._item(brand, LibraryItem.Kind.LOOK, name) for name in _names(options["looks"])],
            "poses": [self._item(brand, LibraryItem.Kind.POSE, name) for name in _names(options["poses"])],
            "formats": _names(options["formats"]),
            "variants": options["variants"],
        }
        try:
            if options["estimate"]:
                estimate = campaign_estimate(actor=user, brand=brand, **matrix)
                seconds = (
                    "unknown (no worker has measured this model yet)"
                    if estimate.seconds is None
                    else (f"about {estimate.seconds} s")
                )
                self.stdout.write(f"{estimate.images} images, {estimate.renders} forward passes, worker time {seconds}")
                return
            campaign = campaign_submit(
                actor=user, brand=brand, name=options["name"], brief=options["brief"],
                idempotency_key=options["idempotency_key"], **matrix,
            )  # fmt: skip
        except PermissionDenied as exc:
            raise CommandError(f"{user.username} may not queue campaigns for {brand.slug}.") from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Campaign {campaign.pk} {campaign.name!r}: {campaign.estimate['images']} images queued."
            )
        )

    def _persona(self, brand, handle):
        persona = Persona.objects.for_brand(brand).filter(handle=handle.lstrip("@")).first()
        if persona is None:
            raise CommandError(f"Brand {brand.slug} has no persona @{handle.lstrip('@')}.")
        return persona

    def _item(self, brand, kind, name):
        item = LibraryItem.objects.for_brand(brand).filter(kind=kind, name=name).first()
        if item is None:
            raise CommandError(f"Brand {brand.slug}'s library has no {kind} named {name!r}.")
        return item
