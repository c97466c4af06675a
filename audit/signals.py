"""What the audit log announces. Sent after the recording transaction commits (never inside
it), so a listener's failure can't undo the action it hears about.

kwargs: entry_id (int), action (str, an AuditAction value), actor_id (int or None: Paydesk itself).
"""

from django.dispatch import Signal

audit_recorded = Signal()
