from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import GeneratorModel
from generation.services import generator_model_register

DEFAULT_SLUG = "random-placeholder-64"
DEFAULT_NAME = "Random weights placeholder (64 px)"
LICENCE_NOTE = (
    "Random weights placeholder: seeded random weights (seed 0), not a trained model. "
    "Images are noise-like patterns, not faces. Ours, no third-party terms."
)


class Command(BaseCommand):
    help = "Write the bundled default generator under MODELS_ROOT and register it (idempotent)."

    def handle(self, *args, **options):
        # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
        from generation.rendering import ModelUnavailable, checkpoint_describe, checkpoint_write_placeholder

        directory = settings.MODELS_ROOT / DEFAULT_SLUG
        model = GeneratorModel.objects.filter(slug=DEFAULT_SLUG).first()
        if not (directory / "weights.safetensors").exists():
            directory.mkdir(parents=True, exist_ok=True)
            checkpoint_write_placeholder(directory=directory)
            self.stdout.write(f"Wrote {directory}")
        if model is None:
            try:
                model = generator_model_register(
                    actor=None, name=DEFAULT_NAME, slug=DEFAULT_SLUG, directory=DEFAULT_SLUG, licence_note=LICENCE_NOTE
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(self.style.SUCCESS(f"Registered {model.slug} (sha256 {model.sha256[:12]}…)"))
            return
        try:
            info = checkpoint_describe(directory=model.path)
        except ModelUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if info.sha256 != model.sha256:
            raise CommandError(
                f"{model.path} holds weights with sha256 {info.sha256}, but {model.slug} is registered with "
                f"{model.sha256}; move the directory away and run this command again."
            )
        self.stdout.write(f"{model.slug} already loaded (sha256 {model.sha256[:12]}…)")
