"""ui/state.py's key rule without a page: session keys are <page>.<name>, URL names the bare name."""

from __future__ import annotations

import pytest

from ui.state import page_keys, url_name, url_value


def test_a_page_names_its_keys_and_the_url_keeps_the_bare_name():
    key = page_keys("text")
    assert key("t") == "text.t" and key("tokens-export") == "text.tokens-export"
    assert url_name(key("t")) == "t" and url_name(page_keys("images")("free_side_128")) == "free_side_128"
    assert page_keys("images")("t") != key("t")  # the same name on two pages is two keys
    assert url_name("t") == "t"  # a key without a prefix is its own URL name


@pytest.mark.parametrize("page", ["", "a.b"])
def test_a_page_prefix_is_a_plain_name(page):
    with pytest.raises(ValueError):
        page_keys(page)


def test_a_shared_choice_needs_choices():
    with pytest.raises(ValueError, match="shared"):
        url_value("text.model", "tefviz-lm", shared="lm")
