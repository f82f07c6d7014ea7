"""Unit tests of how the client reads answers that are not what the API describes: a
proxy's error page, a body that is not JSON, a page without its count."""

from __future__ import annotations

import httpx
import pytest

from buddycloud.client import ApiError, Client, ServerError, UnexpectedAnswer


def client_answering(answer: httpx.Response) -> Client:
    return Client("http://server.test", transport=httpx.MockTransport(lambda request: answer))


async def test_a_proxys_error_page_is_a_server_error_with_its_status() -> None:
    page = httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Retry-After": "5"})
    async with client_answering(page) as client:
        with pytest.raises(ServerError) as failed:
            await client.posts("juliet@capulet.lit")
    assert (failed.value.status, failed.value.error, failed.value.retry_after) == (
        502,
        "unknown",
        5.0,
    )


async def test_an_unusual_error_status_is_still_an_api_error() -> None:
    async with client_answering(httpx.Response(418, json={"error": "teapot"})) as client:
        with pytest.raises(ApiError) as failed:
            await client.check()
    assert (type(failed.value), failed.value.status, failed.value.error) == (
        ApiError,
        418,
        "teapot",
    )


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (httpx.Response(200, text="<html>a login page</html>"), "without JSON"),
        (httpx.Response(200, json=[{"id": "1"}], headers={"X-Count": "1"}), "author"),
        (httpx.Response(200, json=[]), "X-Count"),
        (httpx.Response(200, json={"not": "a list"}, headers={"X-Count": "0"}), "JSON array"),
    ],
)
async def test_answers_outside_the_api_are_unexpected_and_say_what_was_wrong(
    answer: httpx.Response, named: str
) -> None:
    async with client_answering(answer) as client:
        with pytest.raises(UnexpectedAnswer, match=named):
            await client.posts("juliet@capulet.lit")


async def test_an_unknown_role_is_unexpected_rather_than_passed_on() -> None:
    answer = httpx.Response(200, json={"romeo@capulet.lit": "king"}, headers={"X-Count": "1"})
    async with client_answering(answer) as client:
        with pytest.raises(UnexpectedAnswer, match="king"):
            await client.followers("juliet@capulet.lit")
