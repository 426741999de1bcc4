import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from avatars.models import LibraryItem, Persona
from avatars.services import library_item_create, persona_create_from_seed, persona_render_submit
from brands.models import Brand, Membership, Role
from brands.services import brand_create, membership_add
from generation.management.commands.load_default_model import DEFAULT_SLUG
from generation.models import GenerationJob, GeneratorModel

DEMO_BRAND = ("Demo Brand", "demo")
DEMO_PERSONA = {"name": "Ava Demo", "handle": "ava", "seed": 42, "truncation_psi": 0.7}
DEMO_CLASS = "light_jacket/waveLongArm"  # the bundled model is conditional: outfit family/gesture
# A starter library on the bundled model: looks are outfits, poses gestures.
DEMO_LIBRARY = [
    ("look", "Dark jacket", "dark_jacket"),
    ("look", "Shirt and tie", "tie"),
    ("look", "Patterned top", "patterned"),
    ("pose", "Phone in hand", "handPhone"),
    ("pose", "Waving", "waveLongArms"),
    ("pose", "Pointing", "point"),
]


class Command(BaseCommand):
    help = "Create a demo brand, its owner (login printed) and a persona with a render queued. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", help="Default: a new random password, printed.")

    def handle(self, *args, username, password, **options):
        if not username.strip():
            raise CommandError("--username must not be empty")
        model = GeneratorModel.objects.filter(slug=DEFAULT_SLUG).first()
        if model is None:
            raise CommandError(
                f"Generator model {DEFAULT_SLUG!r} is not loaded; run `manage.py load_default_model` first."
            )
        password = password or secrets.token_urlsafe(12)

        User = get_user_model()
        # A reviewer beside the owner: no one approves images they made themselves.
        reviewer_name = f"{username}-reviewer"
        with transaction.atomic():
            owner, _ = User.objects.get_or_create(username=username)
            owner.set_password(password)
            owner.save()
            reviewer, _ = User.objects.get_or_create(username=reviewer_name)
            reviewer.set_password(password)
            reviewer.save()
        brand = Brand.objects.filter(slug=DEMO_BRAND[1]).first()
        try:
            if brand is None:
                brand = brand_create(actor=owner, name=DEMO_BRAND[0], slug=DEMO_BRAND[1])
            if not Membership.objects.filter(brand=brand, user=reviewer).exists():
                membership_add(actor=owner, brand=brand, user=reviewer, role=Role.REVIEWER)
            persona = Persona.objects.for_brand(brand).filter(handle=DEMO_PERSONA["handle"]).first()
            if persona is None:
                class_index = model.class_names.index(DEMO_CLASS) if model.c_dim else None
                persona = persona_create_from_seed(
                    actor=owner, brand=brand, model=model, class_index=class_index, **DEMO_PERSONA
                )
            if model.class_attributes and not LibraryItem.objects.for_brand(brand).exists():
                for kind, name, value in DEMO_LIBRARY:
                    library_item_create(actor=owner, brand=brand, model=model, kind=kind, name=name, value=value)
            if not GenerationJob.objects.for_brand(brand).filter(persona=persona).exists():
                persona_render_submit(actor=owner, brand=brand, persona=persona)
                self.stdout.write(f"Queued a render of @{persona.handle}.")
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo brand ready. Log in as {username!r} with password {password!r}"
                f" (or as {reviewer_name!r}, a reviewer, with the same password)"
            )
        )
