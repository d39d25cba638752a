"""Enumerate the URL patterns from the resolver, so a new URL cannot escape the access tests."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Route:
    route: str
    name: str
    kwargs: tuple[str, ...]

    def path(self, **values) -> str:
        path = "/" + self.route
        for key in self.kwargs:
            path = re.sub(r"<(?:\w+:)?" + key + r">", str(values[key]), path)
        return path


def all_routes(resolver=None, prefix="") -> list[Route]:
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(all_routes(entry, route))
        elif isinstance(entry, URLPattern):
            kwargs = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
            found.append(Route(route, entry.name or "", kwargs))
    return found


def agency_routes() -> list[Route]:
    """Every page of the signed-in agency app lives under /app/."""
    return [r for r in all_routes() if r.route.startswith("app/")]
