"""Helpers every app may import; it imports none of them (tests/test_layers.py).

`parsing`: the one way to read an integer, a time or a keyset cursor from a request, so a
malformed one is refused the same way everywhere instead of raising deep inside a view.
"""
