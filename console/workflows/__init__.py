"""Workflows: admins automate the routine on Stripe events and tickets (issue 9). Built in
pieces; so far what every later piece (engine, editor, backtest) evaluates through:

- conditions.py: conditions and their validation;
- references.py: the dynamic references available at a point, from Stripe's typed shapes.
"""
