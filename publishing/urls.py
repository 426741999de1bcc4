from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/calendar/", views.calendar_view, name="publishing-calendar"),
    path("brands/<slug:brand_slug>/posts/new", views.post_new, name="post-create"),
    path("brands/<slug:brand_slug>/posts/<int:post_id>/", views.post_detail, name="post-detail"),
    path("brands/<slug:brand_slug>/posts/<int:post_id>/reschedule", views.post_move, name="post-reschedule"),
    path("brands/<slug:brand_slug>/posts/<int:post_id>/cancel", views.post_cancel_view, name="post-cancel"),
    path("brands/<slug:brand_slug>/channels/", views.channel_list, name="channel-list"),
    path("brands/<slug:brand_slug>/channels/<int:channel_id>/", views.channel_edit, name="channel-edit"),
    path("brands/<slug:brand_slug>/schedules/", views.schedule_list, name="schedule-list"),
    path("brands/<slug:brand_slug>/schedules/<int:schedule_id>/", views.schedule_detail, name="schedule-detail"),
    path(
        "brands/<slug:brand_slug>/schedules/<int:schedule_id>/delete",
        views.schedule_delete_view,
        name="schedule-delete",
    ),
]
