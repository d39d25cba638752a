from django import template
from django.template.loader import get_template
from django.utils.translation import get_language

from emailsync.profiles import presenting
from emailsync.profiles.models import rating_of

register = template.Library()


@register.simple_tag
def stars(value):
    """Five stars, the given (possibly fractional) number filled, with a spoken label.

    The markup depends only on the value and the language, and a page shows few distinct values
    (whole stars, averages to one decimal), so each is rendered once per process."""
    if value is None:
        return ""
    key = (type(value), value, get_language())
    html = _rendered.get(key)
    if html is None:
        filled = int(float(value) + 0.5)
        context = {"value": value, "on": "★" * filled, "off": "★" * (5 - filled)}
        html = _stars_template().render(context)
        if len(_rendered) < 10_000:
            _rendered[key] = html
    return html


_cache = {}
_rendered = {}


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
