"""Normalisation: what the model reads, kept apart from what the handler sees.

A note arrives in simplified, traditional or mixed script, sometimes as a
call transcript with speaker turns. The model must read one canonical form,
and a threat spoken by the agent ("您可以向监管部门反映") must never be read as
the customer's. The original text is always kept for output.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable

from pipeline.text.prefilter import screen

#: What the model reads at most; longer notes keep their full text for output.
MAX_MODEL_CHARS = 3000

CUSTOMER_ROLES = ("客户", "用户", "顾客", "来电人", "来电者", "投保人", "被保险人", "消费者", "客人", "先生", "女士", "家属",
                  "投诉人", "报案人")
AGENT_ROLES = ("坐席", "座席", "客服", "接线员", "工作人员", "柜员", "专员", "理赔员", "服务人员", "客服人员", "回访员",
               "主管", "客服主管", "值班主管", "回访专员", "理赔专员", "投诉专员", "保全专员", "理赔回访", "质检员", "核保员")
#: a customer's relative or colleague speaking for them ("客户女儿：", "客户的儿子："): the customer's side
_KIN = r"客户的?(?:儿子|女儿|妻子|丈夫|老公|老婆|爱人|父亲|母亲|爸爸|妈妈|家属|亲属|同事|朋友|孙子|孙女|本人)"
#: an agent named by staff number ("工号1032：")
_STAFF_NO = r"工号\s?\d{3,6}"
#: speakers an export names without a role ("A:", "说话人1：", "角色2", "Speaker 1"): sides read from what they say
_ANON = r"说话人\s?\d|角色\s?\d|发言人\s?\d|[Ss]peaker\s?\d|[A-D](?![A-Za-z])"

_TIME = r"(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\]?\)?)"
_NAMED = "|".join([_KIN, _STAFF_NO] + sorted(CUSTOMER_ROLES + AGENT_ROLES, key=len, reverse=True))
_ROLE = f"{_NAMED}|{_ANON}"
# A speaker label: optional timestamp, role (optionally bracketed), then a colon,
# a closing bracket, or (ASR style, named roles only) a space. It must start a line.
_TURN = re.compile(
    rf"^[ \t]*(?:{_TIME}[ \t]*)?(?:[\[【(（]\s*(?P<b>{_ROLE})\s*[\]】)）]|(?P<r>{_ROLE})(?:[ \t]*{_TIME})?(?=[ \t]*[:：])"
    rf"|(?P<s>{_NAMED})(?:[ \t]*{_TIME})?(?=[ \t]+\S|[ \t]*$))[ \t]*[:：]?[ \t]*",
    re.MULTILINE,
)
# Inline turns on one line ("客户：……坐席：……"): colon or bracket required.
_INLINE_TURN = re.compile(rf"[\[【]\s*(?P<b>{_ROLE})\s*[\]】]|(?:(?<=[。！？!?；;，,…—\s])|^)(?P<r>{_ROLE})[ \t]*[:：]")
# ASR on one line, labels between spaces ("坐席 您好 请问 客户 我想问一下"): only named roles (not 先生/女士, which
# an agent says to the customer), only when the note starts with one
_SPOKEN = "|".join([_KIN, _STAFF_NO] + sorted(set(CUSTOMER_ROLES + AGENT_ROLES) - {"先生", "女士", "客人"}, key=len, reverse=True))
_SPACED_TURN = re.compile(rf"(?:(?<=\s)|^)(?P<r>{_SPOKEN})(?=[ \t]+\S)[ \t]+")
_SPACED_START = re.compile(rf"^(?:{_SPOKEN})[ \t]+\S")
_CUSTOMER_ROLE = re.compile(rf"(?:{_KIN}|{'|'.join(CUSTOMER_ROLES)})")
_ANON_ROLE = re.compile(_ANON)

#: what staff say and customers do not: greetings, offers to help, addressing the customer; read to tell
#: which of an export's unnamed speakers is the agent
_AGENT_SAYS = re.compile(r"请问有什么|为您服务|很高兴|帮您|为您|请您|您的|您好|稍等|抱歉|不好意思|先生|女士|阿姨|大爷|工号|我司|"
                         r"核实|登记|反馈给|给您|您看|您这边|您反映|您说的")
#: an agent's turn that states the customer's case ("关于您反映的退保金额问题", "12378转来您的投诉", "关于从您儿子
#: 账户扣保费的事"): in callbacks and transfers the matter and the regulator forward are said by staff, so
#: the model reads these turns too; one that suggests where to complain ("您也可以向监管部门反映") stays out
_CASE_STATEMENT = re.compile(r"关于|针对|就您|的事|的问题|您(?:反映|投诉|申诉|说)的|(?:反映|投诉)的|转来|转办|转过来|转到|转给我|转交")
_SUGGESTION = re.compile(r"(?:可以|可|建议|不妨|也能|有权)[^，。？！]{0,10}(?:向|去|找|到|打|拨打|通过)[^，。？！]{0,10}"
                         r"(?:监管|法院|起诉|律师|消协|媒体|记者|仲裁|12378|12315|12345|信访)")
_CUSTOMER_SAYS = re.compile(r"我的保单|我买|我要|我想|我妈|我爸|我老|我家|你们|凭什么|投诉你|我交|我当时|喂")

_INLINE_SCREEN = screen(_INLINE_TURN)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass
class NormalisedText:
    """One note after normalisation.

    `customer` is what the customer said (the whole note when it is not a
    transcript); `agent` is what staff said in a transcript; `case_statement`
    the agent's turns that state the customer's case (a callback's "关于您反映的…",
    a regulator forward). `model_text` is what the classifiers read: the
    customer's words and the case as staff stated it, capped.
    """

    original: str
    text: str
    customer: str
    agent: str = ""
    is_transcript: bool = False
    case_statement: str = ""  # the agent's turns that state the customer's case (read by the model too)
    truncated: bool = False
    turns: list[tuple[str, str]] = field(default_factory=list)
    max_chars: int = MAX_MODEL_CHARS

    @cached_property
    def model_text(self) -> str:
        """What the classifiers read: the customer's words (then the case as staff stated it), capped, with
        personal numbers masked (same length), so the digits of a phone number never read as a hotline
        (12345) or any other marker."""
        from pipeline.text.pii import mask_pii

        text = f"{self.customer}\n{self.case_statement}" if self.case_statement else self.customer
        return mask_pii(text[:self.max_chars])


@lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str]:
    """OpenCC t2s, imported lazily (a few ms that `--help` need not pay); the wheel's compiled core
    when the Python wrapper is missing; the text unchanged (with a warning) without OpenCC."""
    try:
        import opencc

        if hasattr(opencc, "OpenCC"):
            return opencc.OpenCC("t2s").convert
        import opencc.clib as clib
        from opencc.clib import opencc_clib

        conv = opencc_clib._OpenCC(str(Path(clib.__file__).parent / "share" / "opencc" / "t2s.json"))
        return lambda s: conv.convert(s, len(s.encode("utf-8")))
    except Exception as exc:  # pragma: no cover - only without OpenCC
        warnings.warn(f"OpenCC unavailable ({exc}); traditional notes are read as they are")
        return lambda s: s


def to_simplified(text: str) -> str:
    return _t2s()(text) if text else text


def simplified_halfwidth(text: str) -> str:
    """Script and width only, character for character: what the facts extractor's spans index into."""
    return _halfwidth(to_simplified(text))


_HALFWIDTH = {0x3000: 0x20, **{c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                               for c in range(r[0], r[1] + 1)},
              **{ord(ch): ord(ch) - 0xFEE0 for ch in "＄％＠＃＆＋－．／＝＜＞"}}


#: any character `_halfwidth` changes; most notes hold none, and one C scan is cheaper than a translate
_FULLWIDTH = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_HALFWIDTH)) + "]")


def _halfwidth(text: str) -> str:
    """Full-width ASCII letters, digits and a few signs become half-width; Chinese punctuation stays."""
    return text.translate(_HALFWIDTH) if _FULLWIDTH.search(text) else text


def clean(text: str) -> str:
    """Script, width, control characters and whitespace, in one canonical form.

    Idempotent: clean(clean(x)) == clean(x).
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = _SURROGATE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = _halfwidth(text)
    text = to_simplified(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n", text)
    return text.strip()


def _role_kind(role: str) -> str:
    role = re.sub(r"\s", "", role)
    if _CUSTOMER_ROLE.fullmatch(role):
        return "customer"
    if _ANON_ROLE.fullmatch(role):
        return "anon:" + role.upper()
    return "agent"


def _sides_of_unnamed(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """An export's unnamed speakers ("A:", "说话人1：") given sides: the one who talks most like staff
    is the agent (and any other who only talks like staff), the rest the customer's side. [] when no
    speaker talks like staff: a note whose sides cannot be told is read whole."""
    anon = sorted({k for k, _ in turns if k.startswith("anon:")})
    if not anon:
        return turns
    score: dict[str, float] = {}
    for k in anon:
        words = " ".join(w for kind, w in turns if kind == k)
        score[k] = len(_AGENT_SAYS.findall(words)) - len(_CUSTOMER_SAYS.findall(words))
    agent = max(anon, key=lambda k: score[k])
    if score[agent] <= 0 and "agent" not in {k for k, _ in turns}:
        return []
    agents = {agent} if score[agent] > 0 else set()
    agents |= {k for k in anon if k != agent and score[k] > 0 and score[k] >= score[agent] / 2}
    sided = [("agent" if k in agents else "customer" if k.startswith("anon:") else k, w) for k, w in turns]
    return sided if {"agent", "customer"} <= {k for k, _ in sided} else []


def split_turns(text: str) -> list[tuple[str, str]]:
    """Speaker turns as (customer|agent|unknown, words); [] when the text is not a transcript.

    A transcript needs at least two labelled turns with both sides present, so
    an agent's summary that starts "客户：..." stays a note. Speakers named by a role
    (客户, 坐席, 客户女儿, 工号1032) take its side; unnamed ones (A/B, 说话人1/2) are
    sided by what they say.
    """
    matches = list(_TURN.finditer(text))
    if len(matches) < 2:  # inline turns need a bracket or a colon: a note with neither is not scanned
        matches = list(_INLINE_TURN.finditer(text)) if _INLINE_SCREEN is None or _INLINE_SCREEN.search(text) else []
    if len(matches) < 2 and _SPACED_START.match(text):
        matches = list(_SPACED_TURN.finditer(text))
    if len(matches) < 2:
        return []
    kinds = [_role_kind(next(v for v in m.groupdict().values() if v)) for m in matches]
    named = {k for k in kinds if not k.startswith("anon:")}
    if len(set(kinds)) < 2 or (named and not (named <= {"customer", "agent"})):
        return []
    turns: list[tuple[str, str]] = []
    head = text[: matches[0].start()].strip()
    if head:
        turns.append(("unknown", head))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        words = text[m.end():end].strip()
        if words:
            turns.append((kinds[i], words))
    turns = _sides_of_unnamed(turns)
    if {k for k, _ in turns} & {"customer", "agent"} != {"customer", "agent"}:
        return []
    return turns


def normalise(text: str, max_chars: int = MAX_MODEL_CHARS) -> NormalisedText:
    """Normalise one note; never raises on odd input (None, numbers, control characters)."""
    original = text if isinstance(text, str) else ("" if text is None else str(text))
    cleaned = clean(original)
    turns = split_turns(cleaned)
    if turns:
        customer = "\n".join(w for k, w in turns if k != "agent")
        agent = "\n".join(w for k, w in turns if k == "agent")
        case = "\n".join(w for k, w in turns if k == "agent" and _CASE_STATEMENT.search(w) and not _SUGGESTION.search(w))
    else:
        customer, agent, case = cleaned, "", ""
    return NormalisedText(
        original=original,
        text=cleaned,
        customer=customer,
        agent=agent,
        is_transcript=bool(turns),
        case_statement=case,
        truncated=len(customer) > max_chars,
        turns=turns,
        max_chars=max_chars,
    )
