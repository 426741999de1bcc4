from django.contrib import admin

from brands.admin import BrandOwnedAdmin

from .models import Campaign


@admin.register(Campaign)
class CampaignAdmin(BrandOwnedAdmin):
    list_display = ["name", "brand", "variants", "created_by", "created_at", "cancelled_at"]
    list_filter = ["brand"]
    list_select_related = ["brand", "created_by"]
