"""The dispute pages, under disputes/ (console/urls.py includes them there)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dispute_queue, name="dispute_queue"),
    path("assign", views.dispute_assign, name="dispute_assign"),
    path("fraud-warnings/", views.dispute_fraud_warnings, name="dispute_fraud_warnings"),
]
