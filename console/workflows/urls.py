"""The workflow pages, under workflows/ (console/urls.py includes them there)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.workflow_list, name="workflow_list"),
    path("new", views.workflow_new, name="workflow_new"),
    path("import", views.workflow_import, name="workflow_import"),
    path("install", views.workflow_install, name="workflow_install"),
    path("editor", views.workflow_editor, name="workflow_editor"),
    path("test", views.workflow_test, name="workflow_test"),
    path("backtest", views.workflow_backtest, name="workflow_backtest"),
    path("<int:pk>/", views.workflow_edit, name="workflow_edit"),
    path("<int:pk>/activate", views.workflow_activate, name="workflow_activate"),
    path("<int:pk>/deactivate", views.workflow_deactivate, name="workflow_deactivate"),
    path("<int:pk>/duplicate", views.workflow_duplicate, name="workflow_duplicate"),
    path("<int:pk>/export", views.workflow_export, name="workflow_export"),
]
