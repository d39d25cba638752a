from django import template
from django.template.loader import get_template

from emailsync.profiles import presenting
from emailsync.profiles.models import rating_of

register = template.Library()


@register.simple_tag
def stars(value):
    """Five stars, the given (possibly fractional) number filled, with a spoken label."""
    if value is None:
        return ""
    filled = int(float(value) + 0.5)
    return _stars_template().render({"value": value, "on": "★" * filled, "off": "★" * (5 - filled)})


_cache = {}


def _stars_template():
    if "t" not in _cache:
        _cache["t"] = get_template("profiles/_stars.html")
    return _cache["t"]


@register.simple_tag
def public_name(review):
    return presenting.public_name(review)


@register.filter
def rating(obj):
    return rating_of(obj)
