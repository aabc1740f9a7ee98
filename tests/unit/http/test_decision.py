"""Unit tests for writebehind.http.decision: 304 or 200, with the same headers."""

from __future__ import annotations

from writebehind.http import CachePolicy, EntityTag, decide, response_headers


def test_decide_gives_304_and_200_the_same_headers() -> None:
    tag = EntityTag("abc")
    policy = CachePolicy(max_age=0, vary=("Authorization",))
    hit = decide('W/"abc"', tag, policy)
    miss = decide('"other"', tag, policy)
    assert hit.status == 304 and hit.not_modified
    assert miss.status == 200 and not miss.not_modified
    assert (
        hit.headers
        == miss.headers
        == {
            "ETag": '"abc"',
            "Cache-Control": "private, max-age=0",
            "Vary": "Authorization",
        }
    )
    assert decide('"abc"', tag, policy, method="PUT").status == 200
    assert response_headers(None, CachePolicy()) == {"Cache-Control": "private"}


def test_without_an_etag_the_answer_is_200_even_for_a_star() -> None:
    policy = CachePolicy(max_age=60)
    decision = decide("*", None, policy)
    assert decision.status == 200 and not decision.not_modified
    assert "ETag" not in decision.headers
    assert decision.headers == response_headers(None, policy)
