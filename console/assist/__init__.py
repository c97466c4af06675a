"""Assist: understand each customer message, tie it to the Stripe facts, draft the reply.

Offline by default: the built-in classifier (classifier.py: character n-grams and a linear
model, trained at first use from the labelled set shipped in data/messages.jsonl) needs no key
and downloads nothing. It reads through selectors, runs in Celery (tasks.py), and writes triage
and drafts only through tickets' actions; it never sends anything itself.
"""
