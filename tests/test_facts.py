"""extract_facts and mask_pii: table-driven snippets, tricky non-amounts, masking."""
from __future__ import annotations

import datetime as dt

import pytest

from pipeline.handling.facts import FACT_KINDS, cn_number, cue_names, extract_facts, to_simplified
from pipeline.text.pii import find_pii, mask_pii

SEED = (
    "客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
    "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
    "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
    "客户情绪冲动，称如果公司不予解决将做媒体曝光。"
)
SEED_TRAD = (
    "客戶李先生〔68歲〕上門投訴,其愛人王某于2004年3月份購置公司紅雙喜A款保單,所交保費45000元,"
    "08年9月因急需用錢選擇退保,所退保費51142.75元。客戶對退保現金價值十分不滿,要求公司給予退保差額的50%〔¥2459.79〕作為補償。"
)
RECEIVED = dt.date(2024, 5, 8)  # a Wednesday


def values(text: str, kind: str, received: dt.date | None = None) -> list:
    return [f.value for f in extract_facts(text, received).of(kind)]


# --------------------------------------------------------------- amounts

AMOUNTS = [
    ("所交保费45000元", [45000.0]),
    ("退保只拿回51142.75元", [51142.75]),
    ("要求赔偿差额¥2459.79", [2459.79]),
    ("全角人民币符号￥800", [800.0]),
    ("对方说RMB 5000就私了", [5000.0]),
    ("人民币伍万元整", [50000.0]),
    ("损失了四万五", [45000.0]),
    ("业务员收了三千二百元", [3200.0]),
    ("每年交1.2万", [12000.0]),
    ("要求赔偿十万元", [100000.0]),
    ("一共交了两万多元", [20000.0]),
    ("保额10余万元", [100000.0]),
    ("投了3万5", [35000.0]),
    ("退了1,234.50元", [1234.5]),
    ("说好返佣五百块", [500.0]),
    ("才给了5000块钱", [5000.0]),
    ("一点五万的差价", [15000.0]),
    ("先交2000元，后来又交了3000元", [2000.0, 3000.0]),
    ("保费每年5千元", [5000.0]),
    ("一百多万的保额", [1000000.0]),
]


@pytest.mark.parametrize("text,expected", AMOUNTS, ids=[a[0] for a in AMOUNTS])
def test_amounts(text: str, expected: list[float]) -> None:
    assert values(text, "amount") == expected


# --------------------------------------------------------------- things that are not money

NOT_MONEY = [
    ("2004年3月购买的保单", "date"),
    ("08年9月退保", "date"),
    ("2024-05-01到柜面办理", "date"),
    ("2024/5/1来电", "date"),
    ("联系电话13812345678", "phone"),
    ("保单号8800123456789012 一直查不到", "policy_number"),
    ("客户68岁", "age"),
    ("老人今年六十八岁", "age"),
    ("分红只有3.5%", "percent"),
    ("退保损失百分之三十", "percent"),
    ("这是第三次来电投诉", "prior_complaints"),
    ("我们十几个人一起来的", "group_size"),
    ("三天内不给答复我就去报社", "deadline"),
    ("交了10年，每年", None),
    ("十万火急，请尽快处理", None),
    ("千万不要再打电话推销", None),
    ("万一出事谁负责", None),
    ("我们一块去柜面", None),
    ("身份证号110101195003071234", "id_number"),
    ("卡号6222021234567890123", "bank_card"),
    ("一万个不满意", None),
    ("有2万多人看了我的帖子", None),
]


@pytest.mark.parametrize("text,kind", NOT_MONEY, ids=[n[0] for n in NOT_MONEY])
def test_not_money(text: str, kind: str | None) -> None:
    facts = extract_facts(text)
    assert facts.of("amount") == []
    if kind:
        assert facts.of(kind), f"expected a {kind} fact in {text!r}"


# --------------------------------------------------------------- ages, dates, ids

OTHER = [
    ("客户李先生(68岁)", "age", [68]),
    ("六十八岁的王阿姨", "age", [68]),
    ("年近七旬的老人", "age", [68]),
    ("七十多岁", "age", [75]),
    ("年过花甲", "age", [62]),
    ("2004年3月购买", "date", ["2004-03"]),
    ("08年9月退保", "date", ["2008-09"]),
    ("2024-05-01来电", "date", ["2024-05-01"]),
    ("二〇〇四年三月投保", "date", ["2004-03"]),
    ("98年买的保险", "date", ["1998"]),
    ("2019年投保", "date", ["2019"]),
    ("保单号：P20240501001查询", "policy_number", ["P20240501001"]),
    ("保险合同号为880012345678", "policy_number", ["880012345678"]),
    ("买了《鑫福年年年金保险》", "product", ["鑫福年年年金保险"]),
    ("业务员推荐的“安康两全保险”", "product", ["安康两全保险"]),
    ("投保了鑫福年年年金保险(分红型)", "product", ["鑫福年年年金保险"]),
    ("依据《保险法》第十六条", "product", []),
    ("买了一份重疾险", "product", []),
    ("我们十几个人", "group_size", [15]),
    ("23名客户联名投诉", "group_size", [23]),
    ("一共30多户", "group_size", [30]),
    ("23名客户：都说被误导了", "group_size", [23]),
    # speaker turns and ticket numbers are not groups of customers
    ("00:00:06 客户：你们电话太难打了\n00:00:22 客户：我就去消保会", "group_size", []),
    ("[00:06 客户] 我要投诉", "group_size", []),
    ("1 坐席：您好\n2 客户：我要退保", "group_size", []),
    ("15:20客户之子到柜面", "group_size", []),
    ("投诉编号：0331\n消费者诉求：退还保费", "group_size", []),
    ("请提供身份证后四位\n客户：3309", "group_size", []),
    # nor the tail of a masked policy number, nor a word that only starts with the noun
    ("P****3158 投保人卫女士，二次来电", "group_size", []),
    ("一年之内换了三个客户经理", "group_size", []),
    ("网点门口那几个客户车位天天被占", "group_size", []),
    ("在好几个业主群里转发", "group_size", []),
    ("十几名受害客户联名", "group_size", [15]),
    ("这是第三次来电", "prior_complaints", [2]),
    ("打了五次电话都没人管", "prior_complaints", [5]),
    ("已经投诉过两次", "prior_complaints", [2]),
    ("多次投诉无果", "prior_complaints", [2]),
]


@pytest.mark.parametrize("text,kind,expected", OTHER, ids=[o[0] for o in OTHER])
def test_other_facts(text: str, kind: str, expected: list) -> None:
    assert values(text, kind) == expected


# --------------------------------------------------------------- deadlines

DEADLINES = [
    ("三天内不给答复我就去报社", None, [3]),
    ("请在15个工作日内回复", None, [21]),
    ("请在15个工作日内回复", RECEIVED, [21]),
    ("周五前不解决就上电视", RECEIVED, [2]),
    ("周五前不解决就上电视", None, [None]),
    ("下周一前给我结果", RECEIVED, [5]),
    ("48小时内给说法", None, [2]),
    ("一周内处理完", None, [7]),
    ("明天之前必须答复", None, [1]),
    ("5月20日前办好", RECEIVED, [12]),
    ("月底前给我答复", RECEIVED, [23]),
    ("犹豫期10天内可以退", None, []),
]


@pytest.mark.parametrize("text,received,expected", DEADLINES, ids=[f"{d[0]}|{d[1]}" for d in DEADLINES])
def test_deadlines(text: str, received: dt.date | None, expected: list) -> None:
    assert values(text, "deadline", received) == expected


def test_month_day_uses_received_year() -> None:
    assert values("3月5日到柜面", "date", RECEIVED) == ["2024-03-05"]
    assert values("3月5日到柜面", "date") == ["--03-05"]


# --------------------------------------------------------------- traditional script


def test_traditional_seed_same_facts_as_simplified() -> None:
    facts = extract_facts(SEED_TRAD)
    assert [f.value for f in facts.of("amount")] == [45000.0, 51142.75, 2459.79]
    assert facts.first("age") == 68
    assert facts.first("product") == "红双喜A款"


def test_traditional_spans_point_at_converted_text() -> None:
    simp = to_simplified(SEED_TRAD)
    assert len(simp) == len(SEED_TRAD)  # t2s keeps the length here
    for f in extract_facts(SEED_TRAD).items:
        assert simp[f.start:f.end] == f.text or f.kind in ("phone", "id_number", "bank_card", "email")


def test_the_normalisers_clean_text_needs_no_second_conversion() -> None:
    """The flow hands the facts extractor the normaliser's clean text and skips the script conversion;
    traditional script, full-width digits and a transcript give the same facts either way."""
    from pipeline.text.normalisation import normalise

    for raw in (SEED_TRAD, "客戶說要賠償伍萬元，三天內不答覆就找記者，電話１３８１２３４５６７８",
                "坐席：您好\n客戶：我已經第三次打電話了，保費４５０００元"):
        clean = normalise(raw).text
        assert extract_facts(clean, RECEIVED, simplified=True) == extract_facts(raw, RECEIVED)
        assert extract_facts(clean, RECEIVED, simplified=True).items


@pytest.mark.parametrize("text,kind,value", [
    ("客戶說要賠償伍萬元", "amount", 50000.0),
    ("已經是第三次來電", "prior_complaints", 2),
    ("三天內不給答覆就找記者", "deadline", 3),
    ("我們二十幾個人", "group_size", None),
])
def test_traditional_snippets(text: str, kind: str, value) -> None:
    got = values(text, kind)
    if value is None:
        assert got == [] or got[0] >= 2
    else:
        assert got == [value]


# --------------------------------------------------------------- the seed


def test_seed_facts() -> None:
    facts = extract_facts(SEED)
    assert [f.value for f in facts.of("amount")] == [45000.0, 51142.75, 2459.79]
    assert facts.first("age") == 68
    assert [f.value for f in facts.of("date")] == ["2004-03", "2008-09"]
    assert facts.first("percent") == 50.0
    for f in facts.items:
        assert SEED[f.start:f.end] == f.text


# --------------------------------------------------------------- PII masking

PII = [
    ("电话13812345678", "电话138****5678", "phone"),
    ("电话138-1234-5678", "电话138-****-5678", "phone"),
    ("座机010-62345678", "座机010-****5678", "phone"),
    ("身份证110101195003071234", "身份证110***********1234", "id_number"),
    ("身份证11010119500307123X", "身份证110***********123X", "id_number"),
    ("卡号6222021234567890123", "卡号6222***********0123", "bank_card"),
    ("卡号6222 0212 3456 7890", "卡号6222 **** **** 7890", "bank_card"),
    ("邮箱zhang.san@example.com", "邮箱z********@example.com", "email"),
]


@pytest.mark.parametrize("text,masked,kind", PII, ids=[p[2] + ":" + p[0] for p in PII])
def test_mask_pii(text: str, masked: str, kind: str) -> None:
    assert mask_pii(text) == masked
    assert len(mask_pii(text)) == len(text)
    facts = extract_facts(text)
    assert [f.kind for f in facts.items if f.kind in ("phone", "id_number", "bank_card", "email")] == [kind]
    fact = facts.of(kind)[0]
    assert "*" in fact.text and fact.text == fact.value
    assert fact.text == masked[fact.start:fact.end]


def test_mask_pii_leaves_policy_numbers_dates_and_money() -> None:
    text = "保单号8800123456789012，2024-05-01交了45000元"
    assert mask_pii(text) == text


def test_mask_pii_several_and_empty() -> None:
    text = "电话13812345678或13987654321，邮箱a@b.cn"
    assert mask_pii(text) == "电话138****5678或139****4321，邮箱a@b.cn"
    assert mask_pii("") == ""
    assert find_pii("没有个人信息") == []


# --------------------------------------------------------------- cues and invariants


@pytest.mark.parametrize("text,cue", [
    ("客户之前已经同意方案，现在又反悔了", "goes_back_on_word"),
    ("为了一个小礼品来找茬", "nitpicking"),
    ("不跟你说，叫你们领导出来", "leader_demand"),
    ("你们看着办吧", "demand_withheld"),
    ("要求公司登报道歉", "public_apology_demand"),
    ("还要精神损失费", "mental_damage_demand"),
    ("在营业厅大吵大闹引来围观", "onlookers"),
    ("门口拉横幅", "gathering"),
])
def test_cues(text: str, cue: str) -> None:
    assert cue in values(text, "cue")


def test_every_fact_kind_is_declared_and_cues_exist() -> None:
    facts = extract_facts(SEED + "电话13812345678，三天内答复，我们十几个人，第三次来电，叫你们领导")
    assert {f.kind for f in facts.items} <= set(FACT_KINDS)
    assert "leader_demand" in cue_names()


def test_cn_number() -> None:
    assert cn_number("四万五") == 45000
    assert cn_number("三千二百") == 3200
    assert cn_number("一百零五") == 105
    assert cn_number("十五") == 15
    assert cn_number("一二三") is None


def test_empty_and_no_facts() -> None:
    assert extract_facts("").items == []
    assert extract_facts("客户咨询如何变更地址").of("amount") == []


def test_received_datetime_accepted() -> None:
    assert values("周五前回复", "deadline", dt.datetime(2024, 5, 8, 9, 30)) == [2]


# --------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ALPHABET = "0123456789.,-%¥年月日号岁元万千百块第次天内前周五三十几两我们人客户保单号电话@abcX：（）(), 年近七旬"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_random_text_never_breaks(text: str) -> None:
    facts = extract_facts(text, RECEIVED)
    simp = to_simplified(text)
    masked = mask_pii(simp)
    assert len(masked) == len(simp)
    numeric = [f for f in facts.items if f.kind not in ("cue", "product")]
    for f in facts.items:
        assert 0 <= f.start < f.end <= len(simp)
        assert f.kind in FACT_KINDS
    for a in (f for f in numeric if f.kind == "amount"):
        assert isinstance(a.value, float) and a.value > 0
        for other in numeric:
            if other is not a:
                assert not (a.start < other.end and other.start < a.end), (a, other)


def test_a_cue_phrase_inside_a_word_that_does_not_mean_it_is_no_cue() -> None:
    """转办 is a regulator forward; 转办公室 (passed to the office) and 来回转办 (between departments) are not."""
    def cues(text: str) -> list[str]:
        return [f.value for f in extract_facts(text).items if f.kind == "cue"]

    assert "regulator_forward" in cues("金融监管分局 投诉转办单 编号：JZ-1")
    assert "regulator_forward" not in cues("已登记书面说明要求，转办公室。")
    assert "regulator_forward" not in cues("理赔被四个部门来回转办一个月无人负责")


def test_a_not_cue_word_that_holds_no_cue_phrase_is_refused() -> None:
    from pipeline.handling.facts import check_not_cues

    assert check_not_cues(["转办公室"], ["转办"]) == ("转办公室",)
    with pytest.raises(ValueError, match="not_cues word '办公室' holds no cue phrase"):
        check_not_cues(["办公室"], ["转办"])
