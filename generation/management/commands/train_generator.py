import argparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from generation.services.registry import generator_model_destination_check, generator_model_import


class Command(BaseCommand):
    help = (
        "Train (or resume) a StyleGAN2 generator on an image folder or labelled dataset, write its model card "
        "and register it: train_generator --name N --licence L DATA RUN_DIR -- [training options, see "
        "python -m generation.stylegan.training train --help]."
    )

    def add_arguments(self, parser):
        parser.add_argument("data", help="image folder, labelled when it holds dataset.json")
        parser.add_argument("run_dir", help="checkpoints, sample grids and the export; re-run to resume")
        parser.add_argument("--name", required=True)
        parser.add_argument("--licence", required=True, help="What the trained weights may be used for.")
        parser.add_argument("--slug", help="Default: the name, slugified.")
        parser.add_argument("training_options", nargs=argparse.REMAINDER)

    def handle(self, *args, data, run_dir, name, licence, slug, training_options, **options):
        from generation.stylegan.training.cli import build_parser, train_options
        from generation.stylegan.training.loop import train
        from generation.stylegan.training.model_card import write_model_card

        extra = training_options[1:] if training_options[:1] == ["--"] else training_options
        slug = slug or slugify(name)
        try:
            parsed = build_parser().parse_args(["train", data, run_dir, *extra])
        except SystemExit as exit_:
            raise CommandError(
                "bad training options (see python -m generation.stylegan.training train --help)"
            ) from exit_
        try:
            generator_model_destination_check(slug=slug)  # before hours of training, not after
            summary = train(train_options(parsed), log=self.stdout.write)
            card = write_model_card(summary["export_dir"], name=name, licence_note=licence)
            model = generator_model_import(
                actor=None,
                source=summary["export_dir"],
                name=name,
                slug=slug,
                licence_note=licence,
                class_names=summary["class_names"] or (),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc).strip().splitlines()[0]) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Registered {model.slug} (sha256 {model.sha256[:12]}…); model card {card}")
        )
