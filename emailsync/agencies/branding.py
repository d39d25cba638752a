"""An agency's brand colour, kept readable: its emails' buttons and its public pages' links use
it, and an agency may pick any colour, a pale yellow included (WCAG 2.1 contrast, 4.5:1 for
text of normal size)."""

import re

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")  # what a stored brand colour must be to be used
READABLE = 4.5
PAGE_BACKGROUND = "#f6f8fa"  # the public pages' background, the darkest their links sit on


def luminance(colour: str) -> float:
    """WCAG relative luminance of a `#rrggbb` colour."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ink_on(colour: str) -> str:
    """Near-black or white text, whichever reads better on `colour` (a button in the brand
    colour; a mid grey reaches 4.5:1 with neither, and gets the closer)."""
    return "#ffffff" if contrast("#ffffff", colour) >= contrast("#111111", colour) else "#111111"


def link_colour(colour: str, background: str = PAGE_BACKGROUND) -> str:
    """`colour`, darkened as little as it takes to read as text on `background`: the agency's
    hue stays, its links stay legible."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(21):
        keep = 1 - step / 20
        shade = "#{:02x}{:02x}{:02x}".format(*(round(c * keep) for c in (r, g, b)))
        if contrast(shade, background) >= READABLE:
            return shade
    return "#000000"
