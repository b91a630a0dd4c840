"""COM-1: forbidden phrases from the source list stop a customer-facing text."""

from __future__ import annotations

import pytest

from models.service_language import (
    FORBIDDEN_PHRASES,
    ForbiddenPhrase,
    check_service_language,
    require_service_language,
)


def test_the_source_list_is_complete() -> None:
    assert len(FORBIDDEN_PHRASES) >= 23  # the source lists 23 entries, some with several phrases


@pytest.mark.parametrize("phrase", ["我不知道", "不可能", "我没空", "这事你不懂"])
def test_forbidden_phrase_is_named_with_a_suggestion(phrase: str) -> None:
    with pytest.raises(ForbiddenPhrase) as err:
        require_service_language(f"您好，关于割接时间，{phrase}。")
    assert f"「{phrase}」" in str(err.value) and "instead" in str(err.value)


def test_spacing_and_width_variants_are_caught() -> None:
    assert [v.phrase for v in check_service_language("这 个 不 可 能")] == ["不可能"]
    assert check_service_language("小问题,不用管它")  # half-width comma in the text


def test_service_phrases_pass() -> None:
    require_service_language("感谢您的支持！好的，我们马上就去做。这样做，您看可以吗？")
