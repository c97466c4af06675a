"""One error base for the app: every exception class tickets defines derives from
tickets.actions.errors.TicketsError; only those refusing a person's input are ValidationErrors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from django.core.exceptions import ValidationError

import tickets
from tickets.actions import errors


def exception_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(tickets.__path__, "tickets."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_tickets_defines_derives_from_one_base():
    classes = exception_classes()

    assert "tickets.actions.errors.DeliveryFailed" in classes and "tickets.line.Transient" in classes
    assert {name for name, cls in classes.items() if not issubclass(cls, errors.TicketsError)} == set()


def test_only_refusals_of_a_persons_input_are_validation_errors():
    for cls in (errors.ActionError, errors.TicketClosed, errors.StaleTicket, errors.UndoRefused, errors.NoRecipient):
        assert issubclass(cls, ValidationError)
    assert not issubclass(errors.DeliveryFailed, ValidationError)
    # A refusal still carries its message and code as Django's forms expect.
    refusal = errors.TicketClosed("Ticket #7 is closed.", code="closed")
    assert refusal.messages == ["Ticket #7 is closed."] and refusal.code == "closed"
