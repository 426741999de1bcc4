from django.contrib import admin

from brands.admin import BrandOwnedAdmin

from .models import LibraryItem, Persona, PersonaVersion


@admin.register(Persona)
class PersonaAdmin(BrandOwnedAdmin):
    list_display = ["name", "handle", "brand", "model", "seed", "current_version", "created_at"]
    list_filter = ["brand", "model"]
    list_select_related = ["brand", "model", "current_version"]
    search_fields = ["name", "handle"]


@admin.register(PersonaVersion)
class PersonaVersionAdmin(BrandOwnedAdmin):
    list_display = ["persona", "number", "operation", "sha256", "created_by", "created_at"]
    list_filter = ["operation", "brand"]
    list_select_related = ["persona"]
    exclude = ["latent"]
    search_fields = ["persona__handle", "sha256"]


@admin.register(LibraryItem)
class LibraryItemAdmin(BrandOwnedAdmin):
    list_display = ["name", "kind", "brand", "model", "layer_group", "created_at"]
    list_filter = ["kind", "brand", "model"]
    list_select_related = ["brand", "model"]
    exclude = ["source_latent"]
