from django import template

from emailsync.workspace import labels

register = template.Library()


@register.filter
def recipient_reason(code):
    return labels.recipient_reason(code)


@register.filter
def trigger_reason(code):
    return labels.trigger_reason(code)


@register.filter
def structured_problems(stored):
    return labels.structured_problems(stored)


@register.filter
def header_defects(stored):
    return labels.header_defects(stored)


@register.filter
def audit_subject(entry):
    return labels.audit_subject(entry.action, entry.subject)


@register.filter
def audit_details(entry):
    return labels.audit_details(entry.action, entry.detail)


@register.filter
def action_label(code):
    return labels.action_label(code)


@register.filter
def stars(rating):
    try:
        n = int(rating)
    except (TypeError, ValueError):
        return ""
    return "★" * n + "☆" * (5 - n)


@register.filter
def fix_for(reason, detail=""):
    return labels.fix_for(reason, detail)


@register.filter
def auth_verdict(method):
    return labels.AUTH_METHOD.get(method, "")
