"""The audit log: who did what to which object, below both domains.

`payments`, `tickets` and `console` import it; it imports none of them. One model
(`models.AuditEntry`), one enum of action names (`models.AuditAction`), one writer
(`log.record`, called inside each action's own transaction) and the reads the actions
need to recognise a confirmation sent twice (`selectors`).
"""
