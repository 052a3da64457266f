"""Fixtures shared by the LLM-judge tests: the small test rubric, loaded once per module."""

import pytest

from qos_pipeline.judging.rubric import load_rubric
from tests.judging.test_llm import RUBRIC


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rubric")
    (folder / "rubric.yaml").write_text(RUBRIC)
    return load_rubric(folder)
