import base64

from django.contrib import admin
from django.utils.html import format_html

from brands.admin import BrandOwnedAdmin

from .models import Asset


@admin.register(Asset)
class AssetAdmin(BrandOwnedAdmin):
    list_display = ["id", "brand", "persona", "width", "height", "ai_generated", "created_at"]
    list_filter = ["brand"]
    list_select_related = ["brand", "persona"]
    readonly_fields = ["preview"]

    @admin.display(description="preview")
    def preview(self, obj):
        # Media has no public URL (assets are brand-private), so the admin
        # inlines the image rather than linking to it.
        with obj.image.open("rb") as image:
            data = base64.b64encode(image.read()).decode()
        return format_html(
            '<img src="data:image/png;base64,{}" style="max-width:512px;image-rendering:pixelated">', data
        )

    @admin.display(boolean=True, description="AI-generated")
    def ai_generated(self, obj):
        return obj.ai_generated
