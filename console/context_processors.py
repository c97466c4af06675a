def shell(request):
    """What the layout needs on every page: the navigation the user may see."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    perms = user.get_all_permissions()
    nav = [("home", "Home", "/")]
    for slug, label, perm in [
        ("customers", "Customers", "payments.view_customer"),
        ("payments", "Payments", "payments.view_charge"),
        ("refunds", "Refunds", "payments.view_refund"),
        ("subscriptions", "Subscriptions", "payments.view_subscription"),
        ("invoices", "Invoices", "payments.view_invoice"),
        ("disputes", "Disputes", "payments.view_dispute"),
        ("fraud-warnings", "Fraud warnings", "payments.view_earlyfraudwarning"),
    ]:
        if perm in perms or user.is_superuser:
            nav.append((slug, label, f"/stripe/{slug}/"))
    dev = []
    if "payments.view_webhookevent" in perms or user.is_superuser:
        dev.append(("events", "Events", "/stripe/events/"))
    if "payments.view_sync_health" in perms or user.is_superuser:
        dev.append(("sync", "Sync health", "/sync/"))
    return {"shell_nav": nav, "shell_dev_nav": dev}
