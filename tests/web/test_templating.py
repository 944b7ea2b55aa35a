"""The Jinja2 environment every page goes through: stored text is escaped, a misspelt name
fails loudly, and the filters format what pages show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from jinja2 import UndefinedError

from detectors.web.templating import ENVIRONMENT, badge, render, value, when


def test_stored_text_is_escaped_in_every_template() -> None:
    page = ENVIRONMENT.from_string("<p>{{ text }}</p>").render(text='<script>x("1")</script>')
    assert page == "<p>&lt;script&gt;x(&#34;1&#34;)&lt;/script&gt;</p>"


def test_a_misspelt_name_is_an_error_not_an_empty_cell() -> None:
    with pytest.raises(UndefinedError, match="ownr"):
        ENVIRONMENT.from_string("{{ ownr }}").render(owner="qa.lee")


def test_the_base_page_shows_who_is_signed_in_with_a_sign_out_form() -> None:
    from detectors.web._pages import Viewer

    page = render("base.html", viewer=Viewer("qa.lee", "Lee <QA>", ("quality",), "tok"))
    assert "Lee &lt;QA&gt; (qa.lee; quality)" in page
    assert 'name="csrf_token" value="tok"' in page
    assert "Sign out" not in render("base.html")


def test_the_nav_offers_the_hand_made_report_only_to_who_may_file_one() -> None:
    from detectors.web._pages import Viewer

    quality = render("base.html", viewer=Viewer("qa.lee", "Lee", ("quality",), "t"))
    viewer = render("base.html", viewer=Viewer("view.vic", "Vic", ("viewer",), "t"))
    assert 'href="/report"' in quality and 'href="/report"' not in viewer
    assert 'href="/kpis"' in viewer


def test_filters() -> None:
    cet = timezone(timedelta(hours=1))
    assert when(datetime(2026, 11, 30, 17, 0, 1, tzinfo=cet)) == "2026-11-30 16:00:01 UTC"
    assert when("2026-11-30T16:00:01") == "2026-11-30 16:00:01 UTC"
    assert when(None) == ""
    assert str(value({"a": "<b>"})) == '<code>{&#34;a&#34;:&#34;&lt;b&gt;&#34;}</code>'
    assert str(value("x" * 200)).startswith("<details>")
    assert str(badge("quality_only")) == '<span class="badge quality_only">quality only</span>'
    assert when(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01 00:00:00 UTC"
