from django.urls import path

from . import views, webhooks

urlpatterns = [
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
    path("stripe/events/", views.event_log, name="event_log"),
    path("stripe/events/<str:event_id>/", views.event_detail, name="event_detail"),
    path("sync/", views.sync_health, name="sync_health"),
    path("sync/replay/", views.replay_failed, name="replay_failed"),
    path("sync/retry-follow-up/", views.retry_follow_up, name="retry_follow_up"),
    path("stripe/<slug:slug>/", views.mirror_list, name="mirror_list"),
    path("stripe/<slug:slug>/<str:object_id>/", views.mirror_object, name="mirror_object"),
]
