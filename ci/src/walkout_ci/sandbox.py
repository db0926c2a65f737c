"""The sandbox untrusted code runs in: a pull request's prediction stage.

What the sandboxed command gets (`sandboxed`):
- an environment built from an allow-list (`clean_environment`), never a copy of ours: no
  WALKOUT_BLIND_KEY, no tokens, no ClearML credentials, no WALKOUT_HOME of the CI user;
- new mount, network, PID namespaces (`unshare`): every mount is remounted read-only except the
  folders named writable (its output folder and a private temp/home folder); the folders named hidden
  (the evaluation cache, WALKOUT_HOME, the gate's output folder) are covered by an empty read-only
  tmpfs; only a loopback interface that is down, so no network at all; its own /proc, so it cannot
  read the gate's environment through /proc/<pid>/environ;
- no capabilities (`setpriv --bounding-set=-all --no-new-privs`), so it cannot undo the mounts;
- a time limit enforced by its owner, which kills the whole namespace (`--kill-child`).

As root, `unshare` does this directly; as another user it needs user namespaces
(`unshare --user --map-root-user`). Where neither works, `probe()` says why: the gate then refuses to
run untrusted code on sealed (blind) data (fail closed) and notes the missing isolation elsewhere.

`python -m walkout_ci.sandbox --writable DIR ... --hide DIR ... -- COMMAND...` is the small program
that runs inside the namespaces: it sets up the mounts, drops every capability and execs COMMAND.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Variables untrusted code may see, with our value. Everything else is dropped (an allow-list: a new
# secret someone adds to CI later is safe by default).
ALLOWED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
)
# Names whose values are redacted from any text we quote (logs in error messages).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Isolation:
    """Whether untrusted code can be isolated here, and how (`prefix` goes before the command)."""

    available: bool
    prefix: tuple[str, ...]
    reason: str


@functools.lru_cache(maxsize=1)
def probe() -> Isolation:
    """Can this machine run the sandbox? Tried once per process with a no-op command."""
    unshare = shutil.which("unshare")
    setpriv = shutil.which("setpriv")
    if unshare is None or setpriv is None:
        return Isolation(False, (), "unshare/setpriv (util-linux) are not installed")
    base = [unshare, "--mount", "--net", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"]
    attempts = [base] if os.geteuid() == 0 else []
    attempts.append([unshare, "--user", "--map-root-user", *base[1:]])
    errors = []
    for prefix in attempts:
        command = [*prefix, sys.executable, "-m", "walkout_ci.sandbox", "--", "true"]
        try:
            result = subprocess.run(command, capture_output=True, timeout=60, env=clean_environment())
        except (OSError, subprocess.TimeoutExpired) as error:
            errors.append(str(error))
            continue
        if result.returncode == 0:
            return Isolation(True, tuple(prefix), "namespaces: mount (read-only), network (none), pid")
        errors.append(result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["failed"])
    return Isolation(False, (), f"unshare failed here ({errors[-1]}); run as root or enable user namespaces")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for code we do not trust: allowed variables of ours, then `extra`."""
    environment = {name: os.environ[name] for name in ALLOWED_VARIABLES if name in os.environ}
    environment.setdefault("PATH", os.defpath)
    # Console scripts of the components live next to this interpreter (same venv).
    environment["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), environment["PATH"]])
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment.update(extra or {})
    return environment


def sandboxed(
    command: list[str], *, writable: Iterable[Path], hidden: Iterable[Path], isolation: Isolation
) -> list[str]:
    """`command` wrapped to run inside the sandbox (isolation must be available)."""
    if not isolation.available:
        raise RuntimeError(f"no sandbox here: {isolation.reason}")
    arguments = [*isolation.prefix, sys.executable, "-m", "walkout_ci.sandbox"]
    for path in writable:
        arguments += ["--writable", os.fspath(Path(path).resolve())]
    for path in hidden:
        if Path(path).exists():
            arguments += ["--hide", os.fspath(Path(path).resolve())]
    return [*arguments, "--", *command]


def secret_values(environment: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking variables (8+ characters, so short values do not redact prose)."""
    environment = os.environ if environment is None else environment
    return sorted(
        (value for name, value in environment.items() if SECRET_NAME.search(name) and len(value) >= 8),
        key=len,
        reverse=True,
    )


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every secret value of our environment (or `secrets`) replaced by [redacted]."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    return text


def _mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True, capture_output=True)


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as stream:
        for line in stream:
            # Field 5 is the mount point, with spaces etc. written as octal escapes.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            points.append(point)
    return points


def _enter(writable: list[str], hidden: list[str], command: list[str]) -> None:
    """Inside fresh namespaces: read-only everything, writable folders back, hidden ones covered."""
    _mount("--make-rprivate", "/")
    for point in _mount_points():
        # Some pseudo file systems refuse a remount; they hold nothing of ours.
        subprocess.run(["mount", "-o", "remount,bind,ro", point], capture_output=True)
    if os.path.isdir("/dev/shm"):
        # Python's multiprocessing needs a writable /dev/shm: a private, empty one.
        _mount("-t", "tmpfs", "-o", "size=1g,mode=1777", "tmpfs", "/dev/shm")
    for folder in hidden:
        _mount("-t", "tmpfs", "-o", "ro,size=4k,mode=0555", "tmpfs", folder)
    for folder in writable:
        _mount("--bind", folder, folder)
        _mount("-o", "remount,bind,rw", folder)
    setpriv = shutil.which("setpriv") or "setpriv"
    os.execvp(setpriv, [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--", *command])


def main(argv: list[str] | None = None) -> int:
    """The in-namespace entry point (see the module docstring); exits 125 when the setup fails."""
    parser = argparse.ArgumentParser(prog="python -m walkout_ci.sandbox")
    parser.add_argument("--writable", action="append", default=[])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    try:
        _enter(args.writable, args.hide, args.command)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        print(
            f"walkout_ci.sandbox: cannot set up the sandbox: {error} {detail.decode().strip()}",
            file=sys.stderr,
        )
        return 125
    return 125  # execvp does not return


if __name__ == "__main__":
    sys.exit(main())
