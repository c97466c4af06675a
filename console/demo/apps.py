from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Its own app so its `manage.py demo` command lives beside what it runs."""

    name = "console.demo"
    label = "demo"
    verbose_name = "Demo"
