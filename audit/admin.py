from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "actor_repr", "brand", "action", "target_type", "target_id"]
    readonly_fields = ["seq", "created_at", "prev_hash", "hash"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_repr", "target_id", "action"]
    date_hierarchy = "created_at"

    # The log is append-only: operators read it, nobody edits it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
