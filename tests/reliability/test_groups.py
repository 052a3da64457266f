"""Unknown or empty groups are an error before any work (they used to be skipped without a word while the
report kept showing old rows of them)."""

from __future__ import annotations

import json

import pytest

from qos_pipeline.prompts.design import DesignError, audit_groups, load_design, load_pilot_design
from tests.paths import ASSETS

GROUPS = ["muslim", "black", "asian", "chinese", "mexican", "jewish", "white"]


def test_unknown_and_empty_groups_are_errors():
    demo = load_design("demo", ASSETS)
    with pytest.raises(DesignError, match=r"unknown group 'whyte' \(did you mean 'white'\?\).*fix --groups"):
        audit_groups(demo, ["white", "whyte"], GROUPS)
    without_muslim = demo.__class__(demo.name, demo.names[demo.names["name_group"] != "muslim"], demo.templates)
    with pytest.raises(DesignError, match=r"group 'muslim' has no names in design 'demo'"):
        audit_groups(without_muslim, ["muslim", "white"], GROUPS)
    assert audit_groups(demo, ["white", "muslim", "white"], GROUPS) == (["white", "muslim"], [])
    groups, notes = audit_groups(without_muslim, None, GROUPS)
    assert "muslim" not in groups and notes == ["group 'muslim' has no names in design 'demo': not audited"]


def test_qos_run_with_a_misspelt_group_stops_before_any_work(tmp_path, monkeypatch):
    from qos_pipeline.cli import main

    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["run", "--groups", "white", "whyte"])
    assert str(exc.value).startswith("qos run: unknown group 'whyte' (did you mean 'white'?)")
    folder = tmp_path / "pilot-white-only"  # a pilot-format design whose names are all white
    folder.mkdir()
    (folder / "names.json").write_text(json.dumps({"white_names": ["John", "Emily"]}))
    (folder / "prompts.json").write_text(json.dumps({"muslims": ["[NAME] went to [BLANK]"]}))
    assert load_pilot_design(folder).groups == ["white"]
    with pytest.raises(SystemExit) as exc:
        main(["run", "--design", str(folder), "--groups", "muslim", "white"])
    assert "group 'muslim' has no names in design 'pilot:pilot-white-only'" in str(exc.value)
    assert not (tmp_path / "wh" / "staging").exists() and not list((tmp_path / "home").glob("storage/*"))
