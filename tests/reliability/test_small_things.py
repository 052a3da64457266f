"""The small ones of "crash-proof and tamper-proof": scratch folders of dead ingests are removed, the
warehouse is created owner-only (QOS_UMASK to share), a full disk is said to be one, `--groups` needs a
value, a folder with custom model code is refused before it is registered, Ctrl-C ends with one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys

import duckdb
import pytest

from qos_pipeline.cli import main, parser
from qos_pipeline.generation.models.source import register, resolve_source
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.metrics.build import _load_base_table
from qos_pipeline.processes import remove_dead_scratch, scratch_dir
from qos_pipeline.settings import Paths
from qos_pipeline.tables import ddl, table
from tests.metrics.test_build import _stage_judged
from tests.paths import ASSETS
from tests.cli.conftest import project  # noqa: F401  (fixture)
from tests.reliability.crash import kill_at, new_project, recorded_file


@pytest.fixture()
def umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_scratch_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".ingest-check-{dead.pid}-abc").mkdir()
    with scratch_dir(tmp_path, ".ingest-check-") as mine:
        assert remove_dead_scratch(tmp_path, ".ingest-check-") == [tmp_path / f".ingest-check-{dead.pid}-abc"]
        assert mine.is_dir()  # a live process's folder stays


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_warehouse_its_lock_and_logs_are_owner_only_unless_qos_umask_says(project, umask, capsys, monkeypatch):
    rows = recorded_file(project, "A", ("white",))
    main(["ingest", str(rows), "--model", "rec", "--labels", "human"])
    wh = project / "wh"
    assert _mode(wh) == 0o700  # was 0o755: every local user could read every response
    for path in (wh / "qos.duckdb", wh / "staging" / ".writer.lock", wh / "models.added.yaml",
                 *wh.glob("staging/generations/**/*.parquet")):
        assert _mode(path) & 0o077 == 0, path
    bad = project / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(SystemExit):
        main(["ingest", str(bad), "--model", "rec"])
    assert [_mode(log) for log in (wh / "logs").iterdir()] == [0o600]
    monkeypatch.setenv("QOS_UMASK", "022")  # shared on purpose
    (wh / "qos.duckdb").unlink()
    main(["rebuild"])
    assert _mode(wh / "qos.duckdb") == 0o644
    monkeypatch.setenv("QOS_UMASK", "rw-r--r--")
    with pytest.raises(SystemExit, match="QOS_UMASK='rw-r--r--' is not an octal umask"):
        main(["rebuild"])


class _FullDisk:
    """A DuckDB connection whose writes of loaded rows fail as on a full disk."""

    def __init__(self, con):
        self.con = con

    def execute(self, sql, *args):
        if sql.lstrip().startswith("INSERT"):
            raise duckdb.IOException('IO Error: Could not write file "qos.duckdb.building": No space left on device')
        return self.con.execute(sql, *args)


def test_a_full_disk_is_said_to_be_one_not_a_broken_partition(tmp_path):
    staging = tmp_path / "staging"
    _stage_judged(staging)
    with duckdb.connect() as con:
        con.execute(ddl(table("generations")))
        with pytest.raises(Exception) as exc:
            _load_base_table(_FullDisk(con), staging, "generations")
    message = str(exc.value)
    assert "the disk is full (No space left on device)" in message and "staged partitions are intact" in message
    assert "re-materialize" not in message  # was: "re-materialize its partition", of a partition that is fine


def test_groups_without_a_value_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["run", "--groups"])  # used to mean every group
    assert exc.value.code == 2 and "--groups: expected at least one argument" in capsys.readouterr().err


def test_a_folder_with_custom_model_code_is_refused_before_it_is_registered(tiny_llama_dir, tmp_path):
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "custom")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "evil.Model"}}))
    paths = Paths(ASSETS, tmp_path / "wh", tmp_path / "cache")
    with pytest.raises(ModelError, match=r"names custom model code \(auto_map: AutoModelForCausalLM\), which qos "
                                         r"never runs"):
        register(resolve_source(str(folder), paths), paths)
    assert not (tmp_path / "wh" / "models.added.yaml").exists()


@pytest.mark.slow
def test_ctrl_c_in_a_step_ends_with_one_line_and_rolls_the_ingest_back(tmp_path):
    project = new_project(tmp_path / "p")
    rows = recorded_file(tmp_path, "A", ("white",))
    killed = kill_at(project, ["ingest", str(rows), "--model", "rec", "--labels", "human"], "judgments:written",
                     signal.SIGINT)
    lines = [x for x in killed.stderr.splitlines() if not x.startswith("QOS_PAUSED")]
    assert lines[-1].startswith("qos ingest: interrupted;")  # was Dagster's DagsterExecutionInterruptedError
    assert not any("dagster ERROR" in x or "Traceback" in x or "full traceback" in x for x in lines)
    assert not (project / "wh" / "staging" / "generations" / "model=rec").exists()  # rolled back
    assert not (project / "wh" / "staging" / ".pending" / "rec").exists()
