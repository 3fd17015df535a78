"""Facts patterns written to start with one character class (facts.yaml): the same matches, groups
included, as the lookbehind-first forms they replaced."""
import random
import re

from pipeline.handling.facts import _patterns

VAGUE = "(?:十几|几十|数十|上百|几百|好几|几)"
COUNT = r"(?:\d{1,4}|[一二两三四五六七八九十][零一二两三四五六七八九十百]*)"
NUM_AR = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
NUM_CN = "(?:[一二两三四五六七八九十壹贰叁肆伍陆柒捌玖拾][零〇一二两三四五六七八九十百千万亿点壹贰叁肆伍陆柒捌玖拾佰仟]*)"

#: name -> (the opening as it was written before, the opening now); the rest of each pattern is unchanged
OPENINGS = {
    "date_ymd_cn": (r"(?<!\d)(?P<y>\d{4})", r"(?P<y>\d(?<!\d\d)\d{3})"),
    "date_yy_m": (r"(?<!\d)(?P<yy>\d{2})", r"(?P<yy>\d(?<!\d\d)\d)"),
    "date_iso": (r"(?<![\d.])(?P<y>(?:19|20)\d{2})", r"(?P<y>[12](?<![\d.][12])(?:(?<=1)9|(?<=2)0)\d{2})"),
    "date_year": (r"(?<![\d.])(?P<y>(?:19|20)\d{2})", r"(?P<y>[12](?<![\d.][12])(?:(?<=1)9|(?<=2)0)\d{2})"),
    "date_yy": (r"(?<![\d.])(?P<yy>0\d|[89]\d)", r"(?P<yy>[089](?<![\d.][089])\d)"),
    "date_md": (r"(?<![\d年.])(?P<m>\d{1,2})", r"(?P<m>\d(?<![\d年.]\d)\d?)"),
    "deadline_date": (r"(?<![\d年.])(?P<m>\d{1,2})", r"(?P<m>\d(?<![\d年.]\d)\d?)"),
    "money_arabic": (rf"(?<![0-9A-Za-z.\-/_#])(?P<num>{NUM_AR})", None),
    "money_cn": (rf"(?<!第)(?P<num>{NUM_CN})", None),
    "age_number": (r"(?<![\d.])(?P<n>\d{1,3}|[一二三四五六七八九十]{1,4})", None),
    "group_customers": (rf"(?<![\d第])(?P<n>{VAGUE}|{COUNT})", None),
    "prior_count_verb": (rf"(?<![第\d])(?P<n>{VAGUE}|{COUNT})", None),
}


def _before(name: str) -> re.Pattern:
    """The pattern as it was: its old opening, then the rest of today's pattern."""
    now = _patterns()[name].pattern
    old, new = OPENINGS[name]
    if new is None:  # the opening is a named group: it ends where the group's first `)` at depth 0 does
        depth = 0
        for i, ch in enumerate(now):
            depth += ch == "(" and now[i - 1:i] != "\\"
            depth -= ch == ")" and now[i - 1:i] != "\\"
            if depth == 0:
                new = now[:i + 1]
                break
    assert now.startswith(new), name
    return re.compile(old + now[len(new):])


def test_the_first_class_forms_match_as_the_lookbehind_forms_did():
    rng = random.Random(13)
    alphabet = list("0123456789十几数上好一二两三四五六七八九百零〇第年月日号份度.,-/_#aZ客户投诉来电次趟多余个名位万千亿元块岁周前 １壹拾佰仟点买时")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(20000)]
    texts += ["23名客户", "第3次投诉", "2023年5月6日", "1999.12.31", "08年买的", "5月6日前", "3,000.5元", "五十多岁",
              "十几位客户", "几次来电", "是第五万元", "A12345元"]
    for name in OPENINGS:
        before, now = _before(name), _patterns()[name]
        assert before.pattern != now.pattern
        for text in texts:
            want = [(m.span(), m.groupdict()) for m in before.finditer(text)]
            assert [(m.span(), m.groupdict()) for m in now.finditer(text)] == want, (name, text)
