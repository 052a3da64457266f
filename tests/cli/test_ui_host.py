"""`qos ui` beyond loopback: the Dagster UI has no login, so binding another interface warns."""

from __future__ import annotations

import pytest

from qos_pipeline.cli import main
from qos_pipeline.cli.ui import exposure_warning


@pytest.mark.parametrize("host,warns", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                        ("0.0.0.0", True), ("192.168.1.5", True), ("myhost.example", True)])
def test_ui_beyond_loopback_warns(host, warns, monkeypatch, capsys):
    import qos_pipeline.cli.ui as ui

    assert (exposure_warning(host, 3000) is not None) == warns
    started = []
    monkeypatch.setattr(ui, "serve", lambda commands: started.append(commands) or 0)
    monkeypatch.setattr(ui, "port_user", lambda host, port: None)
    monkeypatch.setattr(ui.os, "chdir", lambda path: None)
    main(["ui", "--host", host])
    err = capsys.readouterr().err
    assert started and ("without any login" in err) == warns
    if warns:
        assert f"--host {host}" in err and "ssh -L 3000:127.0.0.1:3000" in err
