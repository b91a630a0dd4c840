"""COM-1: forbidden phrases from the source list stop a customer-facing text; COM-5: prices and
product defects are not for our people to discuss with customers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from models.service_language import (
    FORBIDDEN_PHRASES,
    ForbiddenPhrase,
    Topic,
    check_service_language,
    check_topics,
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


# --- COM-5: no prices, no product defects in what our people write to customers ----------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("这个板卡的报价是多少我们再商量", Topic.PRICES),
        ("扩容费用大约 3.5万元", Topic.PRICES),
        ("The price of the spare board is ¥800", Topic.PRICES),
        ("We can give you a discount next time", Topic.PRICES),
        ("这是产品缺陷，厂家知道", Topic.DEFECTS),
        ("It is a known bug in this release", Topic.DEFECTS),
        ("The card is DEFECTIVE by design", Topic.DEFECTS),
    ],
)
def test_prices_and_product_defects_are_named_with_whom_to_refer_to(text: str, topic: Topic) -> None:
    (found,) = check_topics(text, "王经理 Wang Min <wang.min@office.example>")
    assert found.topic is topic
    said = str(found)
    assert "(COM-5)" in said and "王经理 Wang Min <wang.min@office.example>" in said


def test_ordinary_field_talk_is_not_about_prices_or_defects() -> None:
    for text in (
        "The customer's engineer confirmed the cabinet is grounded",
        "Costumes aside, the rack is ready; bugle sounds at 8",
        "线缆长度已现场测量，共 12 米",
        "故障已恢复，感谢您的支持",
    ):
        assert check_topics(text) == [], text


def test_a_staff_comment_about_prices_is_refused_and_a_customers_is_not(database_url: str) -> None:
    """Through the one decision path: our supervisor's comment is our people's words to the
    customer (COM-5); the customer's own comment on their side is theirs."""
    from siteflow.decisions import DecisionRefused, decide
    from siteflow.stand_in_signers import as_staff, by_link
    from tests.test_decisions import CHEN, WANG, add_project, project_form, two_party_gate

    add_project(project_form())
    gate_id = two_party_gate()
    staff = as_staff(gate_id, "sign", WANG)
    with pytest.raises(DecisionRefused, match="COM-5") as refused:
        decide(replace(staff, comment="Extra cabling is billed at the list price"))
    assert "pre-sales manager" in str(refused.value)
    decide(replace(by_link(gate_id, "sign", CHEN), comment="The price you quoted was too high"))
    decide(replace(staff, comment="签字确认，感谢您的支持", at=datetime.now(UTC)))
