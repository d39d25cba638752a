"""The dashboard's SVG charts keep every label inside the drawing."""

from emailsync.workspace.dashboard import bars


def test_the_tallest_bars_value_is_drawn_inside_the_chart():
    chart = bars([6, 3, 0, 1], ["Aug", "Sep", "Oct", "Nov"])
    tallest = chart["items"][0]
    assert tallest["ty"] >= 12  # its text's baseline leaves room for the digits above it
    assert all(0 <= item["y"] <= chart["base"] for item in chart["items"])
    assert chart["items"][2]["h"] == 0
