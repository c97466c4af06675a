"""Macros in the console, managed by admins without Django admin: the list (languages, teams,
tags, uses), the editor (a text per language, a placeholder picker, a live preview on a real
ticket, tags chosen from existing tags, team visibility), deactivate, delete. Agents see the
list of the macros their teams may use, read-only. Writes are tickets.actions' (audited)."""
