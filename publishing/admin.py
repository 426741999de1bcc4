from django.contrib import admin

from .models import Channel, Post, PublishAttempt, Schedule, ScheduleRun


class ScopedAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        return self.model.objects.unscoped()


@admin.register(Channel)
class ChannelAdmin(ScopedAdmin):
    list_display = ("name", "brand", "kind", "enabled")
    list_filter = ("kind", "enabled")


@admin.register(Schedule)
class ScheduleAdmin(ScopedAdmin):
    list_display = (
        "name",
        "brand",
        "persona",
        "kind",
        "cron",
        "interval_seconds",
        "timezone",
        "enabled",
        "next_run_at",
    )
    list_filter = ("enabled", "kind")


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ScopedAdmin):
    list_display = ("schedule", "due_at", "status", "campaign", "missed")
    list_filter = ("status",)
    readonly_fields = [field.name for field in ScheduleRun._meta.fields]


class PublishAttemptInline(admin.TabularInline):
    model = PublishAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "finished_at", "ok", "retryable", "status_code", "response", "error")

    def get_queryset(self, request):
        return PublishAttempt.objects.unscoped()


@admin.register(Post)
class PostAdmin(ScopedAdmin):
    list_display = ("pk", "brand", "asset", "channel", "publish_at", "state", "attempts")
    list_filter = ("state",)
    readonly_fields = ("idempotency_key", "attempts", "failures", "published_at", "external_id", "blocked_reason")
    inlines = [PublishAttemptInline]
