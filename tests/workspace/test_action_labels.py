"""Every action the audit log records reads as words, not as its code."""

import ast
from pathlib import Path

import emailsync
from emailsync.workspace.labels import ACTIONS


def recorded_actions() -> set[str]:
    """The action codes passed to `<agency>.record(actor, action, ...)` anywhere in the code."""
    codes = set()
    for path in Path(emailsync.__file__).parent.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                codes.add(node.args[1].value)
    return codes


def test_every_recorded_action_has_words_in_the_audit_log():
    codes = recorded_actions()
    assert {"review.reply_published", "member.invited", "api.key_created"} <= codes
    assert sorted(codes - set(ACTIONS)) == []
