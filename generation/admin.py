from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from brands.admin import BrandOwnedAdmin
from common.forms import service_errors_add

from .layer_groups import layer_groups_validate
from .models import Direction, GenerationJob, GeneratorModel
from .services.registry import generator_model_configure, generator_model_import


class GeneratorModelImportForm(forms.Form):
    source = forms.CharField(
        max_length=500, help_text="Path on the server: a StyleGAN2-ADA .pkl or one of our checkpoint directories."
    )
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60)
    licence_note = forms.CharField(
        widget=forms.Textarea, help_text="Where the weights come from and what they may be used for."
    )
    class_names = forms.CharField(required=False, help_text="Comma-separated, for conditional models.")

    def clean_class_names(self):
        text = self.cleaned_data["class_names"]
        return [n.strip() for n in text.split(",")] if text.strip() else []


class GeneratorModelForm(forms.ModelForm):
    class Meta:
        model = GeneratorModel
        fields = ["licence_note", "class_names", "layer_groups", "identity_group", "identity_min_distance"]

    def clean(self):
        cleaned = super().clean()
        if "layer_groups" in cleaned and "identity_group" in cleaned:
            layer_groups_validate(
                cleaned["layer_groups"], num_ws=self.instance.num_ws, identity_group=cleaned["identity_group"]
            )
        return cleaned


@admin.register(GeneratorModel)
class GeneratorModelAdmin(admin.ModelAdmin):
    form = GeneratorModelForm
    list_display = ["name", "slug", "num_ws", "w_dim", "identity_group", "truncation_centre", "sha256", "created_at"]
    search_fields = ["name", "slug", "sha256"]
    readonly_fields = ["slug", "directory", "sha256", "truncation_centre", "config", "num_ws", "w_dim"]
    change_list_template = "admin/generation/generatormodel/change_list.html"

    # Registering reads and verifies the checkpoint, so models arrive through
    # the import view below (or `manage.py import_generator`), not a blank form.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        # The form already wrote its values onto obj; the service audits the change from the stored row.
        obj.refresh_from_db(
            fields=["layer_groups", "identity_group", "class_names", "licence_note", "identity_min_distance"]
        )
        generator_model_configure(
            actor=request.user,
            model=obj,
            layer_groups=data["layer_groups"],
            identity_group=data["identity_group"],
            class_names=data["class_names"],
            licence_note=data["licence_note"],
            identity_min_distance=data["identity_min_distance"],
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="generation_generatormodel_import"), *super().get_urls()]

    def import_view(self, request):
        if not self.has_view_permission(request) or not request.user.is_staff:
            return redirect("admin:index")
        form = GeneratorModelImportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                model = generator_model_import(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                service_errors_add(form, exc)
            else:
                messages.success(request, f"Imported {model.slug}.")
                return redirect(reverse("admin:generation_generatormodel_change", args=[model.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import a generator",
        }
        return TemplateResponse(request, "admin/generation/generatormodel/import.html", context)


@admin.register(GenerationJob)
class GenerationJobAdmin(BrandOwnedAdmin):
    list_display = ["id", "brand", "persona", "status", "attempts", "max_attempts", "queued_at", "finished_at"]
    list_filter = ["status", "brand"]
    list_select_related = ["brand", "persona"]
    search_fields = ["persona__handle", "error"]


@admin.register(Direction)
class DirectionAdmin(BrandOwnedAdmin):
    """Read-only: directions come from directions_compute or a brand's teaching;
    library items and persona versions refer to them."""

    list_display = ["name", "model", "brand", "kind", "layer_group", "strength_min", "strength_max"]
    list_filter = ["model", "kind", "layer_group"]
    exclude = ["vector"]
