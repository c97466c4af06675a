from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import account, customers, panel, panel_actions
from .views import shell as views

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("account/", account.account, name="account"),
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
    path("", include("tickets.channel_urls")),
    path("", include("tickets.urls")),
    path("customers/<int:contact_id>/", customers.customer, name="customer"),
    path("customers/<int:contact_id>/timeline", customers.customer_timeline, name="customer_timeline"),
    path("customers/<int:contact_id>/timeline/<int:entry_id>", customers.timeline_entry, name="timeline_entry"),
    path("customers/<int:contact_id>/panel", panel.customer_panel, name="customer_panel"),
    path("customers/<int:contact_id>/charges/<str:charge_id>/refund", panel.refund_form, name="customer_refund_form"),
    path("customers/<int:contact_id>/charges/<str:charge_id>/refund/preview", panel.refund_preview,
         name="customer_refund_preview"),
    path("customers/<int:contact_id>/charges/<str:charge_id>/refund/confirm", panel.refund_confirm,
         name="customer_refund_confirm"),
    path("customers/<int:contact_id>/charges/<str:charge_id>/refund/ask-finance", panel.refund_ask_finance,
         name="customer_refund_ask_finance"),
    path("customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel", panel_actions.cancel_form,
         name="customer_cancel_form"),
    path("customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel/preview", panel_actions.cancel_preview,
         name="customer_cancel_preview"),
    path("customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel/confirm", panel_actions.cancel_confirm,
         name="customer_cancel_confirm"),
    path("customers/<int:contact_id>/metadata", panel_actions.metadata_form, name="customer_metadata_form"),
    path("customers/<int:contact_id>/metadata/preview", panel_actions.metadata_preview, name="customer_metadata_preview"),
    path("customers/<int:contact_id>/metadata/confirm", panel_actions.metadata_confirm, name="customer_metadata_confirm"),
    path("customers/<int:contact_id>/portal-link", panel_actions.portal_form, name="customer_portal_form"),
    path("customers/<int:contact_id>/portal-link/preview", panel_actions.portal_preview, name="customer_portal_preview"),
    path("customers/<int:contact_id>/portal-link/confirm", panel_actions.portal_confirm, name="customer_portal_confirm"),
]
