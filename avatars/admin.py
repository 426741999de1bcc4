from django.contrib import admin

from brands.admin import BrandOwnedAdmin

from .models import Persona


@admin.register(Persona)
class PersonaAdmin(BrandOwnedAdmin):
    list_display = ["name", "handle", "brand", "model", "seed", "created_at"]
    list_filter = ["brand", "model"]
    list_select_related = ["brand", "model"]
    search_fields = ["name", "handle"]
    exclude = ["latent"]
    readonly_fields = ["latent_shape"]

    @admin.display(description="latent shape")
    def latent_shape(self, obj):
        return f"[{obj.latent_num_ws}, {obj.latent_w_dim}] float32, sha256 {obj.latent_sha256}"
