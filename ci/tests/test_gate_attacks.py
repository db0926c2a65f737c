"""The gate's trust boundary, attacked the way a pull request would attack it.

Each test is a branch of a fake component whose own code (`component.py`) or `gate.yaml` tries to
leak the blind key, read the blind ground truth, reach the network, write the evaluation cache or
grade itself. The gate must keep all of that away: the key and the ground truth's secret token appear
in no output, the verdict is decided by the merge-base's scorer, the cache is untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from walkout_ci import blind, sandbox
from walkout_ci.testing import (
    add_fake_truth,
    fake_weights,
    make_fake_component_repo,
    make_fake_dataset,
    make_leakage_checked_component_repo,
    pin_fake_candidate,
    write_fake_experiment,
)

BASE_SCORES = {"person": [0.9, 0.8, 0.9, 0.7, 0.8, 0.9], "sku": [0.8, 0.9, 0.7, 0.9, 0.8, 0.9]}
OUTPUT_NAMES = ("verdict.json", "report.md", "report.html", "junit.xml")

pytestmark = pytest.mark.skipif(
    not sandbox.probe().available, reason="needs the sandbox (unshare): " + sandbox.probe().reason
)


class Listener:
    """A TCP server on the loopback that counts connections (the network the PR must not reach)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.server.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.stopped = True
        self.thread.join()
        self.server.close()


@pytest.fixture
def blind_gate(tmp_path, monkeypatch):
    """A component with a pinned, leakage-checked baseline; sealed blind data with a secret token."""
    key = blind.generate_key()
    token = "GROUNDTRUTH-" + secrets.token_hex(16)
    monkeypatch.setenv("WALKOUT_BLIND_KEY", key)
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "planted.txt").write_text("the CI user's store")
    component = make_leakage_checked_component_repo(tmp_path / "repo", BASE_SCORES)
    make_fake_dataset(tmp_path / "data")
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    manifest.update(split="blind", blind=True, content_hashes=["a" * 64, "b" * 64])
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    add_fake_truth(tmp_path / "data", token=token)
    archive = blind.seal(tmp_path / "data", tmp_path / "blind.sealed", key=key)
    # The plain folder is gone: only the sealed archive exists, as on CI.
    subprocess.run(["rm", "-rf", str(tmp_path / "data")], check=True)
    listener = Listener()
    yield {"component": component, "archive": archive, "key": key, "token": token, "listener": listener}
    listener.close()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def run_gate(setup: dict, tmp_path: Path, out: str = "out") -> tuple[int, dict, str]:
    """`walkout-ci gate` as CI runs it (a subprocess with the key in its environment)."""
    command = [sys.executable, "-m", "walkout_ci.cli", "gate", "--component-dir", str(setup["component"])]
    command += ["--data", str(setup["archive"]), "--out", str(tmp_path / out)]
    command += ["--cache-dir", str(tmp_path / "cache"), "--no-track", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    verdict = json.loads((tmp_path / out / "verdict.json").read_text())
    return done.returncode, verdict, done.stdout + done.stderr


def everything_written(tmp_path: Path, out: str, console: str) -> str:
    """All text a person or a later job can see: the console and every file under the output folder."""
    texts = [console]
    for path in sorted((tmp_path / out).rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def tree_digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


ATTACK = r"""
import glob, json, os, socket, sys

found = {"environ": dict(os.environ), "proc": [], "truth": [], "network": None, "writes": []}
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        found["proc"].append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
for pattern in ("/tmp/**/truth.json", "/root/**/truth.json", "/work/**/truth.json"):
    for path in glob.glob(pattern, recursive=True):
        try:
            found["truth"].append(open(path, errors="replace").read())
        except OSError:
            pass
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    found["network"] = "connected"
except OSError as error:
    found["network"] = str(error)
for folder in TARGETS:
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "pwned.txt"), "w") as stream:
            stream.write("written by the pull request")
        found["writes"].append(folder)
    except OSError:
        pass
dump = json.dumps(found)
print(dump)
print(dump, file=sys.stderr)
# A short summary last, so the quoted log tail shows it whole.
print("network:", found["network"])
print("writes:", json.dumps(found["writes"]))
print("blind truths read:", sum("GROUNDTRUTH-" in text for text in found["truth"]))
"""


def attacker_component(original: str, *, port: int, targets: list[str], crash: bool) -> str:
    """The PR's component.py: the attack runs first thing in the predict stage."""
    attack = ATTACK.replace("PORT", str(port)).replace("TARGETS", repr(targets))
    tail = "    sys.exit(1)\n" if crash else ""
    hook = 'if args.stage == "predict":\n' + "".join(f"    {line}\n" for line in attack.strip().splitlines())
    return original.replace('if args.stage == "predict":\n', hook + tail + 'if args.stage == "predict":\n', 1)


@pytest.mark.parametrize("crash", [True, False], ids=["crashes-so-its-log-is-quoted", "predicts-normally"])
def test_a_pull_request_cannot_see_the_key_the_truth_the_network_or_write_the_cache(
    blind_gate, tmp_path, crash
):
    setup = blind_gate
    component = setup["component"]
    # A first, honest run fills the cache with the baseline's evaluation.
    code, verdict, _ = run_gate(setup, tmp_path, out="first")
    assert code == 0, verdict["summary"]
    cache_before = tree_digest(tmp_path / "cache")
    home_before = tree_digest(tmp_path / "home")
    assert cache_before
    targets = [str(tmp_path / "cache"), str(tmp_path / "home"), str(tmp_path / "out"), str(component), "/tmp"]
    source = (component / "component.py").read_text()
    (component / "component.py").write_text(
        attacker_component(source, port=setup["listener"].port, targets=targets, crash=crash)
    )
    git(component, "commit", "-qam", "innocent refactoring")
    code, verdict, console = run_gate(setup, tmp_path)
    seen = everything_written(tmp_path, "out", console)
    assert setup["key"] not in seen, "the blind key reached an output"
    assert setup["token"] not in seen, "the blind ground truth reached an output"
    assert "written by the pull request" not in json.dumps(tree_digest(tmp_path / "cache"))
    cache_after = tree_digest(tmp_path / "cache")
    # The gate itself may add the candidate's entry; nothing that was there may change.
    assert {name: cache_after.get(name) for name in cache_before} == cache_before, "a cache entry changed"
    assert tree_digest(tmp_path / "home") == home_before, "WALKOUT_HOME changed"
    assert not list(tmp_path.rglob("pwned.txt")), "the PR wrote outside its output folder"
    assert setup["listener"].connections == 0, "the PR reached the network"
    if crash:
        assert code == 2 and verdict["verdict"] == "ERROR"
        # The log tail is quoted, so what the attack printed is visible: nothing secret among it.
        assert "exited with status 1" in verdict["summary"] and '{"environ": {"PATH"' in seen
    else:
        assert code == 0 and verdict["verdict"] == "PASS"  # it predicted the baseline's outputs
        log = (tmp_path / "out" / "evaluations" / "candidate" / "logs" / "predict.log").read_text()
        assert "WALKOUT_BLIND_KEY" not in log and "GROUNDTRUTH-" not in log
        assert "\nwrites: []\n" in log and "\nblind truths read: 0\n" in log
        assert "\nnetwork: [Errno" in log  # refused: the sandbox has no network at all


def test_a_pull_request_cannot_grade_itself(blind_gate, tmp_path):
    """The PR pins 5,000 random bytes as its model and rewrites the scorer and gate.yaml to say PASS."""
    setup = blind_gate
    component = setup["component"]
    pin_fake_candidate(component, "local-random", secrets.token_bytes(5000))
    perfect = (
        "import json, os, sys\n"
        "out = sys.argv[sys.argv.index('--report-dir') + 1]\n"
        "os.makedirs(out, exist_ok=True)\n"
        "report = {'verdict': 'PASS', 'metrics': {'AP50': 1.0}}\n"
        "json.dump(report, open(os.path.join(out, 'report.json'), 'w'))\n"
    )
    (component / "perfect.py").write_text(perfect)
    gate_yaml = (component / "gate.yaml").read_text()
    score_start = gate_yaml.index("  score:")
    score_end = gate_yaml.index("  timeout_s:")
    gate_yaml = (
        gate_yaml[:score_start]
        + '  score: ["{python}", "perfect.py", "{data}", "{predictions}", "--report-dir", "{report_dir}"]\n'
        + gate_yaml[score_end:].replace("tolerance: 0.02", "tolerance: 1.0")
    )
    (component / "gate.yaml").write_text(gate_yaml)
    # Its own copy of the fake scorer would also call anything perfect.
    source = (component / "component.py").read_text()
    (component / "component.py").write_text(source.replace("* multiplier", "* 0 + 1.0"))
    git(component, "add", "-A")
    git(component, "commit", "-qm", "new model, faster scoring")
    code, verdict, _ = run_gate(setup, tmp_path)
    assert verdict["verdict"] != "PASS" and code != 0
    assert verdict["verdict"] == "ERROR" and "prediction" in verdict["summary"]
    assert any("edits gate.yaml" in note for note in verdict["notes"])


def test_the_model_code_predicts_with_the_given_weights_not_the_baseline_bundled_beside_it(
    blind_gate, tmp_path
):
    """A PR whose prediction quietly loads the baseline's bundled weights instead of {model}."""
    setup = blind_gate
    component = setup["component"]
    pin_fake_candidate(component, "local-random", secrets.token_bytes(5000))
    source = (component / "component.py").read_text()
    swapped = source.replace(
        '    with open(args.model, "rb") as stream:\n        spec = json.loads(stream.read())\n',
        "    with open('experiments/local-baseline/artifacts/weights/model.json', 'rb') as stream:\n"
        "        spec = json.loads(stream.read())\n",
    )
    assert swapped != source
    (component / "component.py").write_text(swapped)
    git(component, "add", "-A")
    git(component, "commit", "-qm", "load weights lazily")
    code, verdict, _ = run_gate(setup, tmp_path)
    assert code == 2 and verdict["verdict"] == "ERROR", verdict["summary"]


def test_a_worse_candidate_is_judged_by_the_merge_base_scorer(blind_gate, tmp_path):
    """Control: the PR's prediction runs and a collapsed class FAILs under the base's rules."""
    setup = blind_gate
    component = setup["component"]
    collapsed = {"person": BASE_SCORES["person"], "sku": [0.1] * 6}
    pin_fake_candidate(component, "local-collapsed", fake_weights(collapsed))
    gate_yaml = (component / "gate.yaml").read_text().replace("max_drop: 0.05", "max_drop: 1.0")
    (component / "gate.yaml").write_text(gate_yaml)
    git(component, "add", "-A")
    git(component, "commit", "-qm", "pin and relax")
    code, verdict, _ = run_gate(setup, tmp_path)
    assert code == 1 and verdict["verdict"] == "FAIL" and "per_class.max_drop[sku]" in verdict["summary"]


def test_a_checkpoint_candidate_is_checked_for_leakage_through_its_recorded_experiment(blind_gate, tmp_path):
    """`--candidate best.pt`: the checkpoint names its training experiment, whose frames are blind."""
    setup = blind_gate
    exports = setup["component"] / "experiments"
    write_fake_experiment(exports, "local-leaky", fake_weights(BASE_SCORES))
    # One of its training frames is a blind frame (the fixture's blind manifest lists "b" * 64).
    leaked = ["0" * 64, "b" * 64]
    (exports / "local-leaky" / "training_data.json").write_text(json.dumps({"content_hashes": leaked}))
    checkpoint = tmp_path / "best.json"
    checkpoint.write_text(
        json.dumps({**json.loads(fake_weights(BASE_SCORES)), "experiment_id": "local-leaky"})
    )
    command = [sys.executable, "-m", "walkout_ci.cli", "gate", "--component-dir", str(setup["component"])]
    command += [
        "--candidate",
        str(checkpoint),
        "--data",
        str(setup["archive"]),
        "--out",
        str(tmp_path / "out"),
    ]
    command += ["--no-cache", "--no-track", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert done.returncode == 2 and "blind-set leakage: 1 frame(s)" in verdict["summary"], verdict["summary"]
    assert any("records its training experiment local-leaky" in note for note in verdict["notes"])


def test_a_torch_checkpoint_names_its_experiment(tmp_path):
    import torch

    from walkout_ci.gate_runner import checkpoint_experiment_id

    torch.save({"state_dict": {}, "experiment_id": "offline-abc"}, tmp_path / "top.pt")
    torch.save({"state_dict": {}, "extra": {"experiment_id": "offline-def"}}, tmp_path / "nested.pt")
    torch.save({"state_dict": {}}, tmp_path / "none.pt")
    assert checkpoint_experiment_id(tmp_path / "top.pt") == "offline-abc"
    assert checkpoint_experiment_id(tmp_path / "nested.pt") == "offline-def"
    assert checkpoint_experiment_id(tmp_path / "none.pt") is None


def test_an_archive_with_unsafe_members_is_error_with_all_outputs(blind_gate, tmp_path):
    import io
    import tarfile

    from walkout_ci.blind import _encrypt_stream, load_key

    setup = blind_gate
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as archive:
        link = tarfile.TarInfo("blind/../../escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    plain.seek(0)
    hostile = tmp_path / "hostile.sealed"
    with open(hostile, "wb") as target:
        _encrypt_stream(plain, target, load_key())
    command = [sys.executable, "-m", "walkout_ci.cli", "gate", "--component-dir", str(setup["component"])]
    command += [
        "--data",
        str(hostile),
        "--out",
        str(tmp_path / "out"),
        "--no-cache",
        "--no-track",
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert {path.name for path in (tmp_path / "out").iterdir()} >= set(OUTPUT_NAMES)
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and not (tmp_path / "escape").exists()


def test_an_edited_copy_of_the_split_is_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    component = make_fake_component_repo(tmp_path / "repo", BASE_SCORES)
    make_fake_dataset(tmp_path / "data")
    add_fake_truth(tmp_path / "data", token="t", multiplier=1.0)
    (tmp_path / "data" / "truth.json").write_text('{"multiplier": 0.0001, "token": "t"}')
    command = [sys.executable, "-m", "walkout_ci.cli", "gate", "--component-dir", str(component)]
    command += [
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--no-track",
        "--no-progress",
    ]
    command += ["--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert done.returncode == 2 and "truth.json" in verdict["summary"] and "manifest" in verdict["summary"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("report.json"))


def test_a_scorer_the_pull_request_inflates_does_not_judge_it(blind_gate, tmp_path):
    """A collapsed model plus a PR scorer that calls every prediction perfect: the base's scorer FAILs it."""
    setup = blind_gate
    component = setup["component"]
    collapsed = {"person": BASE_SCORES["person"], "sku": [0.1] * 6}
    pin_fake_candidate(component, "local-collapsed", fake_weights(collapsed))
    source = (component / "component.py").read_text()
    inflated = source.replace("* multiplier", "* 0 + 1.0")
    assert inflated != source
    (component / "component.py").write_text(inflated)
    git(component, "add", "-A")
    git(component, "commit", "-qm", "simplify scoring")
    code, verdict, _ = run_gate(setup, tmp_path)
    assert code == 1 and verdict["verdict"] == "FAIL", verdict["summary"]
    assert "per_class.max_drop[sku]" in verdict["summary"]
