"""The API reference page (docs/api-reference.md) is the app's OpenAPI document as it is: every operation,
what it does and who may call it. `python -m tools.api_reference` rewrites it."""

from __future__ import annotations

from tools.api_reference import BEGIN, END, PAGE, current_reference, first_sentence, who_may_call


def test_the_api_reference_page_lists_every_operation_as_it_is() -> None:
    page = PAGE.read_text()
    generated = page[page.index(BEGIN) : page.index(END) + len(END)]
    assert generated == current_reference(), (
        "docs/api-reference.md is stale: run `python -m tools.api_reference`"
    )


def test_a_row_says_what_the_handler_does_and_whose_permission_it_needs() -> None:
    operation = {"summary": "Post Trigger", "description": "Deliver an event, e.g. a booking. Then more."}
    assert first_sentence(operation) == "Deliver an event, e.g. a booking."
    assert first_sentence({"summary": "Healthz"}) == "Healthz"
    assert who_may_call("post", "/v1/triggers") == "`triggers:write`"
    assert who_may_call("get", "/healthz") == "anyone"
