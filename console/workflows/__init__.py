"""Workflows: admins automate the routine on Stripe events and tickets (issue 9). Built in
pieces; so far the conditions (conditions.py), which every later piece evaluates through."""
