"""Every option of the operator's commands says what it is in --help: an operator at 3 a.m.
reads `emailsync agency rotate-address --help`, not the source."""

import argparse

import pytest
from django.core.management import load_command_class

# Django's own options (--verbosity, --settings, …) are documented by Django.
DJANGO_OWN = {
    "help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color",
    "force_color", "skip_checks",
}  # fmt: skip

COMMANDS = [
    ("emailsync.agencies", "agency"),
    ("emailsync.inbound", "triggers"),
    ("emailsync.inbound", "smtpd"),
    ("emailsync.review_requests", "requests"),
]


def parsers(app: str, name: str):
    parser = load_command_class(app, name).create_parser("emailsync", name)
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", sub


@pytest.mark.parametrize(("app", "name"), COMMANDS)
def test_every_operator_option_has_help(app, name):
    undocumented = [
        f"{command}: {action.dest}"
        for command, parser in parsers(app, name)
        for action in parser._actions
        if action.dest not in DJANGO_OWN
        and not isinstance(action, argparse._SubParsersAction)
        and not action.help
    ]
    assert undocumented == []
