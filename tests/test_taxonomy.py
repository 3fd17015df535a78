"""The taxonomy file is the label contract of labels.md, as data."""
import re

import pytest
import yaml

from pipeline.contract.taxonomy import TaxonomyError, load_taxonomy, taxonomy


def _ids_in_labels_md(text: str) -> dict[str, list[str]]:
    """Label ids from the spec's tables: rows starting with | `id` |."""
    sections = re.split(r"^## ", text, flags=re.M)
    out = {"cause": [], "risk_flags": [], "mindset": []}
    for sec in sections:
        ids = re.findall(r"^\| `([a-z_]+)` \|", sec, flags=re.M)
        if sec.startswith("Head 1"):
            out["cause"] = ids
        elif sec.startswith("Head 2"):
            out["risk_flags"] = ids
        elif sec.startswith("Head 3"):
            out["mindset"] = ids
    return out


def test_taxonomy_equals_labels_md(shared):
    spec = shared / "spec" / "labels.md"
    if not spec.exists():
        pytest.skip(f"{spec} not present")
    ids = _ids_in_labels_md(spec.read_text(encoding="utf-8"))
    tax = taxonomy()
    assert tax.cause_ids == ids["cause"] and len(ids["cause"]) == 31
    assert tax.flag_ids == ids["risk_flags"] and len(ids["risk_flags"]) == 12
    assert tax.mindset_ids == ids["mindset"] and len(ids["mindset"]) == 6
    assert list(tax.risk_levels) == ["low", "medium", "high"]


def test_every_cause_has_a_known_group_and_chinese_name():
    tax = taxonomy()
    for cid, entry in tax.causes.items():
        assert tax.group_of(cid) in tax.groups
        assert entry["name"] and entry["definition"]


@pytest.mark.parametrize("flags, level", [
    ([], "low"), (["vip_identity"], "low"), (["anger"], "medium"), (["anger", "media_threat"], "high"),
    (["group_complaint"], "high"), (["vip_identity", "legal_threat"], "high"), (["self_harm_threat"], "high"),
    (["repeat_complaint"], "medium"), (["excessive_demand", "professional_claimant"], "high"),
])
def test_risk_floor_follows_the_spec_rule(flags, level):
    assert taxonomy().risk_floor(flags) == level


def test_a_cause_in_an_unknown_group_is_refused(tmp_path):
    from pipeline.contract.taxonomy import TAXONOMY_PATH
    raw = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    raw["cause"]["billing_wrong_amount"] = {"name": "错", "definition": "x"}
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(TaxonomyError, match="billing_wrong_amount"):
        load_taxonomy(bad)


def test_schema_hash_changes_with_the_ids(tmp_path):
    from pipeline.contract.taxonomy import TAXONOMY_PATH
    raw = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    raw["mindset"]["boredom"] = {"name": "无聊", "definition": "x"}
    other = tmp_path / "t.yaml"
    other.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert load_taxonomy(other).schema_hash() != taxonomy().schema_hash()
