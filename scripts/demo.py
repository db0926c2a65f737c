"""`make demo`: the whole walkout lifecycle on a small simulated store, one step at a time.

1. The simulated store renders training data and a blind set (sealed with a CI-style secret).
2. A researcher trains a quick detection candidate and the model gate compares it with the pinned
   production model on the sealed blind set (a few-second model is expected to FAIL).
3. An integrator runs the store app with the pinned models on a scripted hard case and prints receipts.
4. System QC runs the whole system on the blind videos and prints the receipt metrics.

Every step is one of the CLIs a user would type; this script only strings them together and says
what happened. Outputs go under out/demo/.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "demo"
BIN = Path(sys.executable).parent
# Demo-only secrets: in CI they come from the CI system's secret store, never from the repository
# (a real key comes from `walkout-ci blind keygen`; this one is 32 readable bytes, base64).
DEMO_SECRETS = {
    "WALKOUT_BLIND_SEED": "20261125",
    "WALKOUT_BLIND_KEY": "d2Fsa291dC1kZW1vLWtleS1ub3QtYS1zZWNyZXQhISE=",
}


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(*args: str, allowed_exit_codes: tuple[int, ...] = (0,)) -> int:
    """Run one CLI command, echoing it; stop the demo on an unexpected exit code."""
    print("$ " + shlex.join(args), flush=True)
    started = time.perf_counter()
    command = [str(BIN / args[0]), *args[1:]]
    code = subprocess.run(
        command, cwd=ROOT, env=os.environ | DEMO_SECRETS | {"WALKOUT_HOME": str(OUT / "home")}
    ).returncode
    print(f"  -> exit {code} in {time.perf_counter() - started:.1f} s", flush=True)
    if code not in allowed_exit_codes:
        raise SystemExit(f"demo stopped: `{shlex.join(args)}` exited {code}")
    return code


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    store = OUT / "store"

    step("1. The simulated store: training data and a sealed blind set")
    run(
        "walkout-sim",
        "generate",
        "--split",
        "train",
        "--videos",
        "4",
        "--frames",
        "100",
        "--out",
        str(store / "train"),
        "--force",
        "--quiet",
    )
    run(
        "walkout-sim",
        "generate",
        "--split",
        "blind",
        "--videos",
        "3",
        "--frames",
        "150",
        "--out",
        str(store / "blind"),
        "--force",
        "--quiet",
    )
    manifest = json.loads((store / "train" / "manifest.json").read_text())
    print(
        f"  train: {len(manifest['content_hashes'])} frames; every file and its hash: "
        f"{store / 'train' / 'manifest.json'}"
    )
    run("walkout-ci", "blind", "seal", str(store / "blind"), "--out", str(store / "blind.sealed"))
    run(
        "walkout-sim",
        "show",
        str(store / "train" / "videos" / sorted(os.listdir(store / "train" / "videos"))[0]),
        "--out",
        str(OUT / "preview.png"),
    )

    step("2. A researcher's detection candidate meets the model gate")
    run(
        "walkout-detection",
        "train",
        "--data",
        str(store / "train"),
        "--output",
        str(OUT / "candidate"),
        "--set",
        "train.epochs=1",
        "--set",
        "train.time_limit_s=45",
        "--name",
        "demo-candidate",
        "--no-progress",
    )
    verdict = run(
        "walkout-ci",
        "gate",
        "--component-dir",
        "submodules/detection",
        "--candidate",
        str(OUT / "candidate" / "best.pt"),
        "--data",
        str(store / "blind.sealed"),
        "--out",
        str(OUT / "gate-detection"),
        "--no-progress",
        allowed_exit_codes=(0, 1),
    )
    print(
        f"  gate verdict exit {verdict} (1 = FAIL: a one-epoch model must not replace production);"
        f" read {OUT / 'gate-detection' / 'report.md'} or report.html"
    )

    step("3. The store app with the pinned models on a scripted hard case")
    run("walkout-sim", "scenario", "two_at_one_shelf", "--out", str(OUT / "scenario"), "--force", "--quiet")
    video = next((OUT / "scenario" / "videos").iterdir())
    run(
        "walkout",
        "run",
        str(video),
        "--refs",
        "model_refs.yaml",
        "--out",
        str(OUT / "receipts.json"),
        "--preview",
        str(OUT / "run_preview.avi"),
    )
    print("  expected receipts:", (video / "receipts.json").read_text().strip())
    print("  system receipts:  ", json.dumps(json.loads((OUT / "receipts.json").read_text()).get("receipts")))

    step("4. System QC on the blind videos")
    run(
        "walkout",
        "qc",
        "--videos",
        str(store / "blind"),
        "--refs",
        "model_refs.yaml",
        "--report-dir",
        str(OUT / "qc"),
    )
    metrics = json.loads((OUT / "qc" / "report.json").read_text())["metrics"]
    for name, value in metrics.items():
        print(f"  {name:32s} {value:.4g}" if isinstance(value, float) else f"  {name:32s} {value}")
    print(f"\nEverything is under {OUT}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
