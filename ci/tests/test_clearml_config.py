"""The generated clearml.conf: includes the user's config, bounds retries, never includes itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from clearml.utilities.pyhocon import ConfigFactory

from walkout_ci import clearml_config
from walkout_ci.clearml_config import RetryPolicy, ServerSettings
from walkout_ci.store import Store

# ClearML's vendored pyhocon uses deprecated pyparsing names; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_generated_config_includes_user_file_and_overrides(tmp_path: Path) -> None:
    user = tmp_path / "home" / "clearml.conf"
    user.parent.mkdir()
    user.write_text(
        'api { api_server: "http://srv:8008", files_server: "http://srv:8081"\n'
        "  http { retries { total: 240, backoff_max: 120 } } }\n"
    )
    env = {"HOME": str(user.parent), "CLEARML_CONFIG_FILE": str(user)}
    store = Store.open(tmp_path / "store")
    server = clearml_config.configure(store, retries=RetryPolicy(total=3, backoff_max=1.5), environ=env)
    assert server == ServerSettings(api_host="http://srv:8008", files_host="http://srv:8081")
    assert env["CLEARML_CONFIG_FILE"] == str(store.clearml_config_file)
    tree = ConfigFactory.parse_file(str(store.clearml_config_file))
    assert tree.get("api.api_server") == "http://srv:8008"  # from the user's file
    assert tree.get("api.http.retries.total") == 3 and tree.get("api.http.retries.connect") == 3
    assert tree.get("api.http.retries.backoff_max") == 1.5
    assert tree.get("sdk.development.report_use_subprocess") is False
    assert tree.get("sdk.storage.cache.default_base_dir") == str(store.clearml_cache_dir)
    # A second configure (e.g. a child process inheriting the environment) keeps the user's file.
    assert clearml_config.configure(store, environ=env) == server
    assert f'include file("{user}")' in store.clearml_config_file.read_text()


def test_generated_config_never_includes_itself(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    clearml_config.configure(store, environ={"HOME": str(tmp_path)})
    env = {"HOME": str(tmp_path), "CLEARML_CONFIG_FILE": str(store.clearml_config_file)}
    assert clearml_config.configure(Store.open(tmp_path / "other"), environ=env) is None
    assert "include" not in (tmp_path / "other" / "clearml" / "clearml.conf").read_text()


def test_server_selection_from_environment(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "CLEARML_API_HOST": "http://api:8008", "CLEARML_WEB_HOST": "http://web"}
    assert clearml_config.configured_server(env) == ServerSettings("http://api:8008", "http://web")
    assert clearml_config.configured_server({**env, "WALKOUT_OFFLINE": "1"}) is None
    assert clearml_config.configured_server({"HOME": str(tmp_path)}) is None


def test_probe_reports_a_dead_server_quickly() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = clearml_config.probe_server(ServerSettings(f"http://127.0.0.1:{port}"), timeout_s=2.0)
    assert problem is not None and "ConnectionError" in problem
