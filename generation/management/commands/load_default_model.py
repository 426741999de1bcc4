import json
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import GeneratorModel
from generation.services.registry import generator_model_identity_refresh, generator_model_register

# Trained here (see its MODEL_CARD.md); copied under MODELS_ROOT so that the repository's
# copy is never written to.
BUNDLED_DIRECTORY = Path(__file__).resolve().parents[2] / "default_model"
DEFAULT_SLUG = "notionists-64"
DEFAULT_NAME = "Notionists 64 (bundled default)"
LICENCE_NOTE = (
    "Ours: trained by Persona Studio on its own renders of DiceBear's 'notionists' avatars "
    "(art by Zoish, CC0 1.0); usable commercially. 64 px line-art busts, conditioned on "
    "outfit family and gesture."
)


class Command(BaseCommand):
    help = "Copy the bundled default generator under MODELS_ROOT and register it (idempotent)."

    def handle(self, *args, **options):
        # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
        from generation.rendering import ModelUnavailable, checkpoint_describe

        directory = settings.MODELS_ROOT / DEFAULT_SLUG
        if not (directory / "weights.safetensors").exists():
            bundled_copy(destination=directory)
            self.stdout.write(f"Wrote {directory}")
        model = GeneratorModel.objects.filter(slug=DEFAULT_SLUG).first()
        if model is None:
            training = json.loads((directory / "training.json").read_text())
            try:
                model = generator_model_register(
                    actor=None,
                    name=DEFAULT_NAME,
                    slug=DEFAULT_SLUG,
                    directory=DEFAULT_SLUG,
                    licence_note=LICENCE_NOTE,
                    class_names=training["class_names"],
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
        if identity_top_up(directory=model.path) or not model.identity_measure:
            generator_model_identity_refresh(actor=None, model=model)
            self.stdout.write(f"{model.slug} scores identity with: {model.identity_measure['name']}")
        self.stdout.write(f"{model.slug} already loaded (sha256 {model.sha256[:12]}…)")


def identity_top_up(*, directory):
    """Give a copy made before the bundled model shipped its identity embedding
    (same weights) that embedding. True when it did."""
    from generation.stylegan import file_sha256
    from generation.stylegan.identity import IDENTITY_DIR

    bundled, copied = BUNDLED_DIRECTORY / IDENTITY_DIR, Path(directory) / IDENTITY_DIR
    if copied.exists() or not bundled.is_dir():
        return False
    if file_sha256(Path(directory) / "weights.safetensors") != file_sha256(BUNDLED_DIRECTORY / "weights.safetensors"):
        return False
    staging = Path(tempfile.mkdtemp(prefix=".identity-", dir=directory))
    shutil.copytree(bundled, staging, dirs_exist_ok=True)
    staging.rename(copied)
    return True


def bundled_copy(*, destination):
    """Copy the bundled model to `destination` whole or not at all: a copy interrupted
    half-way must not look like a checkpoint."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        # The classifier measured the card's metrics; rendering never needs it.
        shutil.copytree(BUNDLED_DIRECTORY, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("classifier"))
        shutil.rmtree(destination, ignore_errors=True)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
