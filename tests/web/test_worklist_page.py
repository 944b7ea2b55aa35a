"""The worklist page over HTTP: filters are GET parameters (a bookmark), a bad one is
refused by name on the page itself, and the links keep the filters."""

from __future__ import annotations

from tests.web.conftest import Client, sign_in

NC1, NC2 = "NC-2026-000001", "NC-2026-000002"


async def test_filters_and_search_are_get_parameters(client: Client) -> None:
    await sign_in(client, "qa.tech")
    page = await (await client.get("/?q=pressure&severity=high")).text()
    assert f'href="/records/{NC2}"' in page and f'href="/records/{NC1}"' not in page
    assert "1 record(s) match" in page
    assert 'value="pressure"' in page  # the search box keeps what was searched
    assert "content=\"60;url=/?severity=high&amp;q=pressure&amp;auto=1\"" in page
    assert "none (quality-only)" not in page and "SEC-2026-000002" in page
    none = await (await client.get("/?state=closed")).text()
    assert "No record matches these filters." in none


async def test_a_bad_filter_is_refused_by_name_on_the_page(client: Client) -> None:
    await sign_in(client, "qa.tech")
    resp = await client.get("/?severity=huge&page=x")
    assert resp.status == 400
    page = await resp.text()
    assert "Filter refused" in page and "page" in page and 'role="alert"' in page


async def test_paging_links_keep_the_filters(client: Client) -> None:
    await sign_in(client, "qa.tech")
    page = await (await client.get("/?per_page=25&state=all&sort=oldest")).text()
    assert "page 1 of 1" in page
    assert 'href="/?state=all&amp;sort=severity"' in page  # a column's sort link
