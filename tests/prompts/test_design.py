from pathlib import Path

import pytest
import yaml

from qos_pipeline.prompts.design import (
    DesignError, load_design, load_groups, prompt_id, render_prompts, template_id)
from qos_pipeline.prompts.step import build_prompts
from tests.paths import ASSETS, PILOT_DIR


def test_full_design_is_the_papers_size():
    design = load_design("full", ASSETS)
    prompts = render_prompts(design)
    assert len(prompts) == 1792
    assert design.groups == ["muslim", "black", "asian", "chinese", "mexican", "jewish", "white"]
    assert prompts["prompt_id"].is_unique
    assert not prompts["prompt_text"].str.contains("[NAME]", regex=False).any()
    counts = design.names.groupby(["name_group", "gender", "popularity"]).size()
    assert (counts == 2).all() and len(counts) == 7 * 2 * 2


def test_full_design_passes_its_checks_per_group():
    design = load_design("full", ASSETS)
    for group in design.groups:
        df, outcomes = build_prompts(design, group, "run-1")
        assert len(df) == 8 * 32
        assert all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]


def test_demo_design_is_small_and_balanced():
    prompts = render_prompts(load_design("demo", ASSETS))
    assert len(prompts) == 7 * 2 * 8
    per_group = prompts.groupby("name_group")["name"].nunique()
    assert (per_group == 2).all()
    assert set(prompts["popularity"]) == {"popular"}


def test_ids_are_content_hashes():
    text = "Mohammed went to [BLANK]"
    assert prompt_id(text) == prompt_id(text) and len(prompt_id(text)) == 16
    assert prompt_id(text) != prompt_id("John went to [BLANK]")
    assert template_id("[NAME] went to [BLANK]") != template_id("[NAME] flew to [BLANK]")
    prompts = render_prompts(load_design("demo", ASSETS), "muslim")
    assert (prompts["prompt_id"] == [prompt_id(t) for t in prompts["prompt_text"]]).all()
    assert (prompts["template_id"] == [template_id(t) for t in prompts["template_text"]]).all()
    assert set(prompts["template_name"]) >= {"muslims-01", "women-01"}  # the readable names stay


def test_one_sentence_under_two_template_ids_is_rejected(tmp_path):
    for name in ("groups.yaml", "names.yaml", "designs.yaml"):
        (tmp_path / name).write_text((ASSETS / name).read_text())
    (tmp_path / "templates.yaml").write_text(
        "templates:\n  - {id: a, target: x, text: '[NAME] went to [BLANK]'}\n"
        "  - {id: b, target: x, text: '[NAME] went to [BLANK]'}\n")
    with pytest.raises(DesignError, match=r"same sentence is listed under several ids: \[\['a', 'b'\]\]"):
        load_design("full", tmp_path)


def test_pilot_json_design():
    if not PILOT_DIR.is_dir():
        pytest.skip(f"pilot data not found at {PILOT_DIR}")
    design = load_design(str(PILOT_DIR), ASSETS)
    prompts = render_prompts(design)
    assert len(prompts) == 24 * 32
    muslim_men = design.names.query("name_group == 'muslim' and gender == 'man'")
    assert muslim_men["name"].tolist()[:2] == ["Mohammed", "Ahmed"]
    assert set(design.names.query("name_group == 'chinese'")["gender"]) == {"unspecified"}


def _copy_assets(tmp_path: Path) -> Path:
    dst = tmp_path / "assets"
    dst.mkdir()
    for f in ASSETS.glob("*.yaml"):
        (dst / f.name).write_text(f.read_text())
    return dst


def test_broken_template_names_the_template(tmp_path):
    assets = _copy_assets(tmp_path)
    data = yaml.safe_load((assets / "templates.yaml").read_text())
    data["templates"][3]["text"] = "[NAME] went to the [BLANK] with [NAME]"
    (assets / "templates.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DesignError, match=data["templates"][3]["id"]) as err:
        load_design("full", assets)
    assert "exactly 1" in str(err.value)


def test_unknown_design_lists_the_choices():
    with pytest.raises(DesignError, match="demo"):
        load_design("nope", ASSETS)


def test_invalid_yaml_names_the_file(tmp_path):
    assets = _copy_assets(tmp_path)
    (assets / "names.yaml").write_text("muslim: [unclosed\n")
    with pytest.raises(DesignError, match="names.yaml"):
        load_design("demo", assets)


def test_duplicate_names_rejected(tmp_path):
    assets = _copy_assets(tmp_path)
    data = yaml.safe_load((assets / "names.yaml").read_text())
    data["white"][0]["name"] = data["muslim"][0]["name"]
    (assets / "names.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DesignError, match="listed twice"):
        load_design("full", assets)


def test_group_keys_must_be_safe(tmp_path):
    assets = _copy_assets(tmp_path)
    (assets / "groups.yaml").write_text("groups:\n  'a|b': {label: x}\n")
    with pytest.raises(DesignError, match="a\\|b"):
        load_groups(assets)


@pytest.mark.parametrize("file, text, where", [
    ("names.yaml", "muslim:\n  - {name: Fatima, gendr: woman}\n", "entry 'muslim' #1, field 'gendr'"),
    ("templates.yaml", "templates:\n  - {id: a, target: b, text: '[NAME] x [BLANK]', txt: y}\n",
     "entry #1 of templates, field 'txt'"),
    ("designs.yaml", "designs:\n  demo: {names: all, templats: all}\n", "entry 'demo', field 'templats'"),
    ("groups.yaml", "reference_grup: white\ngroups:\n  white: {label: White}\n", "field 'reference_grup'"),
])
def test_a_misspelt_key_in_an_asset_names_the_file_the_entry_and_the_field(tmp_path, file, text, where):
    import shutil

    from qos_pipeline.prompts.design import DesignError, load_design

    assets = shutil.copytree(ASSETS, tmp_path / "assets")
    (assets / file).write_text(text)
    with pytest.raises(DesignError) as failed:
        load_design("full", assets)
    assert str(failed.value).startswith(f"{assets / file}: {where}: unknown field (misspelt?)")
