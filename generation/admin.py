from django.contrib import admin

from brands.admin import BrandOwnedAdmin

from .models import GenerationJob, GeneratorModel


@admin.register(GeneratorModel)
class GeneratorModelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "num_ws", "w_dim", "sha256", "created_at"]
    search_fields = ["name", "slug", "sha256"]
    readonly_fields = ["directory", "sha256", "config", "num_ws", "w_dim"]

    # Registering reads and verifies the checkpoint (load_default_model, later
    # an import command); the admin only edits the descriptive fields.
    def has_add_permission(self, request):
        return False


@admin.register(GenerationJob)
class GenerationJobAdmin(BrandOwnedAdmin):
    list_display = ["id", "brand", "persona", "status", "attempts", "max_attempts", "queued_at", "finished_at"]
    list_filter = ["status", "brand"]
    list_select_related = ["brand", "persona"]
    search_fields = ["persona__handle", "error"]
