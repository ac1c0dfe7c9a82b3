from __future__ import annotations

import json

import pytest

from weiying.cli import build_parser, main


def test_sandbox_help_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])

    out = capsys.readouterr().out
    assert "WeChat sandbox" in out and "--app-url" in out and "/sandbox/api" in out


def test_sandbox_defaults():
    args = build_parser().parse_args(["sandbox"])

    assert (args.host, args.port, args.app_url, args.config) == (
        "127.0.0.1", 8001, "http://127.0.0.1:8000", None)


def test_a_bad_config_file_stops_before_serving(tmp_path, capsys):
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"corp_id": "ww1", "no_such_setting": 1}))

    assert main(["sandbox", "--config", str(path)]) == 2
    assert "no_such_setting" in capsys.readouterr().err
