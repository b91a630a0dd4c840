"""COM-1 and COM-5: text that goes to a customer is checked before it is sent or kept.

COM-1: the source specification's 服务忌语 (23) and 服务用语 (16) — a hit stops the message and
names the phrase with a service phrase to use instead. COM-5: outsourced staff never discuss
prices or product defects with the customer — a text that does is stopped the same way and
names the office's pre-sales manager as the one to refer price questions to (the setting
``SITEFLOW_PRESALES_CONTACT``; the caller passes it, so this module reads no settings).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

SERVICE_PHRASES: tuple[str, ...] = (
    "请",
    "谢谢",
    "对不起",
    "感谢您的支持",
    "好的，我们马上就去做",
    "希望我们能共同发展",
    "您放心，这件事交给我做吧",
    "能否帮我……",
    "我们会尽力的",
    "这样做，您看可以吗",
    "没关系",
    "不用客气",
    "您的意见很重要",
    "我们公司的成长离不开大家的支持",
    "欢迎您提出宝贵意见",
    "对不起我不了解此产品，我马上请位专家给您回电话，您看可以吗？",
)

# forbidden phrase -> the service phrase suggested instead
FORBIDDEN_PHRASES: dict[str, str] = {
    "我不管": "您放心，这件事交给我做吧",
    "我管不着": "您放心，这件事交给我做吧",
    "与我无关": "您放心，这件事交给我做吧",
    "我也没办法": "我们会尽力的",
    "我没空": "好的，我们马上就去做",
    "我是新来的，这我不懂": "对不起我不了解此产品，我马上请位专家给您回电话，您看可以吗？",
    "关电复位就得了": "这样做，您看可以吗",
    "这事你不懂": "这样做，您看可以吗",
    "小问题，不用管它": "我们会尽力的",
    "不付费，就不去": "好的，我们马上就去做",
    "这合同是怎么签的": "您的意见很重要",
    "中兴通讯是怎么搞的": "欢迎您提出宝贵意见",
    "怎么这样": "欢迎您提出宝贵意见",
    "怎么连这点小事他们都做不好": "我们会尽力的",
    "你怎么连这都不懂": "这样做，您看可以吗",
    "你怎么搞的": "没关系",
    "你们怎么这么差": "欢迎您提出宝贵意见",
    "这种小事也找我": "不用客气",
    "你们怎么啥工具都没有": "能否帮我……",
    "这我早告诉过你": "这样做，您看可以吗",
    "不可能": "我们会尽力的",
    "反正我做不了": "对不起我不了解此产品，我马上请位专家给您回电话，您看可以吗？",
    "我不知道": "对不起我不了解此产品，我马上请位专家给您回电话，您看可以吗？",
    "要想培训效果好，到中兴通讯培训去": "我们会尽力的",
    "中兴的机器就这样": "我们会尽力的",
}


def _fold(text: str) -> str:
    """Full-width and half-width punctuation alike, spaces ignored, so「不 可能」is caught."""
    folded = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", folded)


@dataclass(frozen=True)
class LanguageViolation:
    phrase: str
    suggestion: str

    def __str__(self) -> str:
        return f"forbidden phrase 「{self.phrase}」 (COM-1); say 「{self.suggestion}」 instead"


class Topic(enum.StrEnum):
    PRICES = "prices"
    DEFECTS = "product defects"


# COM-5: what talks about prices or product defects, in Chinese or English (matched on the
# folded text, English case-insensitively and on word boundaries).
TOPIC_PATTERNS: dict[Topic, re.Pattern[str]] = {
    Topic.PRICES: re.compile(
        r"价格|报价|价钱|多少钱|费用|折扣|优惠|降价|涨价|[¥￥]\d|\d+(?:\.\d+)?(?:元|万元)"
        r"|(?i:\b(?:price[sd]?|pricing|quotation|quote[sd]?|discount(?:s|ed)?|rebate|cost[s]?)\b)"
    ),
    Topic.DEFECTS: re.compile(
        r"缺陷|质量问题|产品问题|设计问题|(?i:\b(?:defect(?:s|ive)?|bugs?|design flaw|quality problem)\b)"
    ),
}


@dataclass(frozen=True)
class TopicViolation:
    """COM-5: a text discusses prices or product defects."""

    topic: Topic
    found: str
    refer_to: str | None

    def __str__(self) -> str:
        whom = self.refer_to or "the office's pre-sales manager"
        if self.topic is Topic.PRICES:
            advice = f"do not discuss prices with the customer; refer price questions to {whom}"
        else:
            advice = f"do not discuss product defects with the customer; report them to the office ({whom})"
        return f"「{self.found}」 discusses {self.topic.value} (COM-5): {advice}"


Violation = LanguageViolation | TopicViolation


def check_service_language(text: str) -> list[LanguageViolation]:
    """COM-1's forbidden phrases in `text` (anyone's words that a customer will read)."""
    folded = _fold(text)
    return [LanguageViolation(p, s) for p, s in FORBIDDEN_PHRASES.items() if _fold(p) in folded]


def check_topics(text: str, refer_to: str | None = None) -> list[TopicViolation]:
    """COM-5's topics in what *our people* write to a customer (a customer's own words, quoted
    back in an acknowledgement, may well mention a price or a defect); `refer_to` names the
    office's pre-sales manager in the refusal."""
    plain = unicodedata.normalize("NFKC", text)
    return [
        TopicViolation(topic, hit.group(), refer_to)
        for topic, pattern in TOPIC_PATTERNS.items()
        if (hit := pattern.search(plain)) is not None
    ]


class ForbiddenPhrase(ValueError):
    """A customer-facing text failed the COM-1 check; the message stays unsent."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(str(v) for v in violations))
        self.violations = violations


def require_service_language(text: str) -> None:
    violations: list[Violation] = list(check_service_language(text))
    if violations:
        raise ForbiddenPhrase(violations)
