"""Rendering: shaded units that keep user text verbatim, a self-contained HTML page, heatmaps."""

from __future__ import annotations

import base64
import re

import numpy as np

from support_models import FAMILIES, build_classifier

from encoderkit.interpret.render import background, html_page, shares, strongest, terminal_text


def test_shares_scale_by_the_largest_magnitude_and_colors_follow_the_sign():
    np.testing.assert_allclose(shares(np.array([0.5, -1.0, 0.0])), [0.5, -1.0, 0.0])
    np.testing.assert_allclose(shares(np.zeros(3)), np.zeros(3))
    assert background(0.0) == (255, 255, 255)
    green, red = background(1.0), background(-1.0)
    assert green[1] > green[0] and red[0] > red[1]
    assert strongest(["a", "b", "c"], np.array([0.2, -0.1, 0.0])) == "for: a +0.200; against: b -0.100"


def test_terminal_text_keeps_brackets_and_markup_verbatim():
    model = build_classifier(FAMILIES["cnn"])
    text = "Who wrote [bold]Hamlet[/bold] ?"
    block = terminal_text(model.explain(text, method="occlusion"), number=2)
    assert text in block.plain and block.plain.startswith("#2 prediction: ")


def test_html_is_self_contained_and_escapes_user_text():
    model = build_classifier(FAMILIES["transformer"])
    hostile = 'What is <script>alert("x")</script> & "$5" ?'
    page = html_page(model.explain([hostile, "Who wrote Hamlet ?"], method="attention"), title="t <b>",
                     facts={"model": "m<1>"})
    assert "<script" not in page and "alert" in page and ">&lt;</span>" in page  # "<" is a unit of its own
    assert "t &lt;b&gt;" in page and "m&lt;1&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", page)  # no external asset
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert page.count("<section>") == 2 and "<style>" in page
