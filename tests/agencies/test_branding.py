"""Any brand colour an agency picks stays readable: links darkened to 4.5:1 on the public
pages' background, text on the colour black or white."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emailsync.agencies.branding import PAGE_BACKGROUND, contrast, ink_on, link_colour


def test_the_default_blue_is_darkened_just_enough():
    """#1f6feb on #f6f8fa is 4.35:1 (axe-core flagged the public pages' links)."""
    assert contrast("#1f6feb", PAGE_BACKGROUND) < 4.5
    darker = link_colour("#1f6feb")
    assert darker != "#1f6feb" and contrast(darker, PAGE_BACKGROUND) >= 4.5
    assert contrast(darker, "#ffffff") >= 4.5  # cards are white: lighter still


@pytest.mark.parametrize("colour", ["#aa3300", "#1f5fbf", "#000000"])
def test_a_dark_enough_colour_is_kept(colour):
    assert link_colour(colour) == colour


@given(st.integers(0, 0xFFFFFF))
def test_every_colour_reads(value):
    colour = f"#{value:06x}"
    assert contrast(link_colour(colour), PAGE_BACKGROUND) >= 4.5
    other = "#111111" if ink_on(colour) == "#ffffff" else "#ffffff"
    assert contrast(ink_on(colour), colour) >= contrast(other, colour)


def test_text_on_a_pale_brand_colour_is_dark():
    assert ink_on("#ffdd00") == "#111111" and ink_on("#1f5fbf") == "#ffffff"
