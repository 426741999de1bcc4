from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from generation.services.registry import generator_model_import


class Command(BaseCommand):
    help = "Import a StyleGAN2-ADA .pkl or one of our checkpoint directories into MODELS_ROOT and register it."

    def add_arguments(self, parser):
        parser.add_argument(
            "source", help="NVIDIA StyleGAN2-ADA/StyleGAN3 .pkl, or a config.json + weights.safetensors directory"
        )
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--licence", required=True, help="Where the weights come from and what they may be used for."
        )
        parser.add_argument("--slug", help="Default: the name, slugified.")
        parser.add_argument("--class-names", default="", help="Comma-separated, for conditional models.")

    def handle(self, *args, source, name, licence, slug, class_names, **options):
        slug = slug or slugify(name)
        names = [n.strip() for n in class_names.split(",")] if class_names else []
        try:
            model = generator_model_import(
                actor=None, source=source, name=name, slug=slug, licence_note=licence, class_names=names
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        groups = ", ".join(f"{g['name']} {g['start']}-{g['end']}" for g in model.layer_groups)
        self.stdout.write(
            self.style.SUCCESS(f"Imported {model.slug} (sha256 {model.sha256[:12]}…; layer groups {groups})")
        )
