"""The agent inbox and the ticket page (the channels' own endpoints are in channel_urls)."""

from django.urls import path

from . import merge_views, views

urlpatterns = [
    path("contacts/", views.contact_list, name="contact_list"),
    path("tickets/", views.inbox_home, name="inbox_home"),
    path("tickets/bulk/", views.inbox_bulk, name="inbox_bulk"),
    path("tickets/<int:number>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:number>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:number>/update/", views.ticket_update, name="ticket_update"),
    path("tickets/<int:number>/tags/", views.ticket_tags, name="ticket_tags"),
    path("tickets/<int:number>/macro/", views.ticket_macro, name="ticket_macro"),
    path("tickets/<int:number>/drafts/<int:pk>/use/", views.ticket_draft_use, name="ticket_draft_use"),
    path("tickets/<int:number>/drafts/<int:pk>/discard/", views.ticket_draft_discard, name="ticket_draft_discard"),
    path("tickets/<int:number>/presence/", views.ticket_presence, name="ticket_presence"),
    path("tickets/<int:number>/attachments/<int:pk>/", views.ticket_attachment, name="ticket_attachment"),
    path("tickets/messages/<int:pk>/retry/", views.message_retry, name="message_retry"),
    path("tickets/contacts/<int:pk>/link/", views.contact_link, name="contact_link"),
    path("tickets/contacts/<int:pk>/language/", views.contact_language, name="contact_language"),
    path("tickets/identities/<int:pk>/unlink/", views.identity_unlink, name="identity_unlink"),
    path("tickets/merges/<int:pk>/undo/", views.merge_undo, name="merge_undo"),
    path("tickets/<int:number>/merge/", merge_views.ticket_merge, name="ticket_merge"),
    path("tickets/ticket-merges/<int:pk>/undo/", merge_views.ticket_merge_undo, name="ticket_merge_undo"),
    # Last: mine, unassigned, all, team-<slug>.
    path("tickets/<slug:view>/", views.inbox, name="inbox"),
]
