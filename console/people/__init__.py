"""People in the console, managed by admins without Django admin: add one (they get a link to
set their password), change their role, teams and details, deactivate (their sessions end, their
open tickets go back to their teams' queues) or reactivate, send a password link. Every change
is audited. actions.py writes, selectors.py reads, views.py serves /people/."""
