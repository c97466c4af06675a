from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .assist import views as assist_views
from .macros import views as macro_views
from .people import views as people_views
from .disputes import dashboard as dispute_dashboard
from .disputes import page as dispute_page
from .views import account, approvals, customers, notifications, panel, panel_actions, payment
from .workflows import run_views
from .views import shell as views
from . import sso

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Sign-in with the company's identity provider: /oidc/… only when configured (console/sso.py).
    *sso.urls(),
    path("healthz", views.healthz, name="healthz"),
    path("account/", account.account, name="account"),
    path("notifications/", notifications.notifications, name="notifications"),
    path("notifications/read/", notifications.notifications_read, name="notifications_read"),
    path("admin/", admin.site.urls),
    # The payment page composes the customer's contact and tickets: console's, before payments' mirror page.
    path("stripe/payments/<str:charge_id>/", payment.payment, name="payment"),
    path("disputes/insight/", dispute_dashboard.dashboard, name="dispute_insight"),
    path("", include("payments.urls")),
    path("", include("tickets.channel_urls")),
    path("assist/tickets/<int:number>/", assist_views.ticket_assist, name="ticket_assist"),
    path("people/", people_views.people_list, name="people"),
    path("people/new", people_views.person_new, name="person_new"),
    path("people/<int:pk>/", people_views.person_detail, name="person"),
    path("people/<int:pk>/deactivate", people_views.person_deactivate, name="person_deactivate"),
    path("people/<int:pk>/reactivate", people_views.person_reactivate, name="person_reactivate"),
    path("people/<int:pk>/password-link", people_views.person_password_link, name="person_password_link"),
    path("macros/", macro_views.macro_list, name="macros"),
    path("macros/new", macro_views.macro_new, name="macro_new"),
    path("macros/<int:pk>/", macro_views.macro_edit, name="macro"),
    path("macros/<int:pk>/deactivate", macro_views.macro_deactivate, name="macro_deactivate"),
    path("macros/<int:pk>/activate", macro_views.macro_activate, name="macro_activate"),
    path("macros/<int:pk>/delete", macro_views.macro_delete, name="macro_delete"),
    path("account/password/<uidb64>/<token>/", people_views.password_set, name="password_set"),
    path("account/password/done/", people_views.password_set_done, name="password_set_done"),
    path("", include("tickets.urls")),
    path("workflows/runs/", run_views.run_list, name="workflow_runs"),
    path("workflows/runs/<int:run_id>/", run_views.run_detail, name="workflow_run"),
    path("workflows/runs/<int:run_id>/retry", run_views.run_retry, name="workflow_run_retry"),
    path("workflows/", include("console.workflows.urls")),
    path("disputes/", include("console.disputes.urls")),
    # One dispute (after the queue's own pages: fraud-warnings/ is not a dispute id).
    path("disputes/<str:dispute_id>/", dispute_page.dispute_page, name="dispute"),
    path("disputes/<str:dispute_id>/ticket", dispute_page.dispute_ticket, name="dispute_ticket"),
    *dispute_page.evidence_flow.urls("disputes/<str:dispute_id>/evidence", "dispute_evidence"),
    *dispute_page.accept_flow.urls("disputes/<str:dispute_id>/accept", "dispute_accept"),
    path("customers/<int:contact_id>/", customers.customer, name="customer"),
    path("customers/<int:contact_id>/timeline", customers.customer_timeline, name="customer_timeline"),
    path("customers/<int:contact_id>/timeline/<int:entry_id>", customers.timeline_entry, name="timeline_entry"),
    path("customers/<int:contact_id>/panel", panel.customer_panel, name="customer_panel"),
    *panel.refund_flow.urls("customers/<int:contact_id>/charges/<str:charge_id>/refund", "customer_refund"),
    path("customers/<int:contact_id>/charges/<str:charge_id>/refund/ask-finance", panel.refund_ask_finance,
         name="customer_refund_ask_finance"),
    # Finance's refund approvals: the queue, approve (the refund flow, pre-filled) and decline.
    path("approvals/", approvals.approvals, name="approvals"),
    *approvals.approval_refund_flow.urls("approvals/<int:approval_id>/refund", "approval_refund"),
    path("approvals/<int:approval_id>/decline", approvals.approval_decline, name="approval_decline"),
    *panel_actions.cancel_flow.urls("customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel",
                                    "customer_cancel"),
    *panel_actions.metadata_flow.urls("customers/<int:contact_id>/metadata", "customer_metadata"),
    *panel_actions.portal_flow.urls("customers/<int:contact_id>/portal-link", "customer_portal"),
]
