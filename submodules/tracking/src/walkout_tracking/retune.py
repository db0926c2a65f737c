"""Retune: a pinned tracking model with other association settings, as a new experiment to gate and pin.

The tracker's settings (the `tracker:` section of a tracking config) live in the checkpoint beside the
appearance weights, so changing one makes a new model. Retraining would also change the weights (and
need the training data again); `retune` keeps them bit for bit, writes a checkpoint with the new
settings, and records it as an experiment whose `cloned_from` is the source and whose training data
is the source's (so the gate's leakage check still applies). Settings are tried first on recorded
detections with the app's `walkout replay --retrack model_refs.yaml --tracker-set KEY=VALUE`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from walkout_tracking.config import load_config
from walkout_tracking.errors import ConfigError
from walkout_tracking.model import load_checkpoint, save_checkpoint
from walkout_tracking.motchallenge import write_atomic
from walkout_tracking.train import PROJECT

TRACKER_PREFIX = "tracker."


@dataclass(frozen=True)
class RetuneResult:
    """What `retune` wrote: the checkpoint, its experiment, and the settings that changed."""

    checkpoint: Path
    experiment_id: str
    source_experiment_id: str
    changed: dict[str, object]

    def to_dict(self) -> dict:
        return {
            "checkpoint": str(self.checkpoint),
            "experiment_id": self.experiment_id,
            "source_experiment_id": self.source_experiment_id,
            "changed": self.changed,
        }


def retune(ref: str, overrides: dict[str, object], out_dir: str | Path) -> RetuneResult:
    """Write `<out_dir>/best.pt`: the model `ref` (experiment id or model_ref.yaml) with `overrides`
    ({"tracker.<key>": value}) applied to its tracker settings, recorded as a new experiment.

    Raises ConfigError for a key outside `tracker.` (the network and its training are not changed
    here: use `walkout-tracking train`), an unknown key (with the closest valid one) or a value out of
    range, and walkout_ci PinError for a reference that names no experiment.
    """
    from walkout_ci import experiment as ci_experiment
    from walkout_ci import pins
    from walkout_ci.experiment import apply_overrides
    from walkout_tracking.predict import PACKAGE_DIR, experiment_id_of

    if not overrides:
        raise ConfigError("retune needs at least one --set tracker.<key>=<value>")
    outside = sorted(key for key in overrides if not key.startswith(TRACKER_PREFIX))
    if outside:
        raise ConfigError(
            f"retune changes tracker settings only, not {', '.join(outside)}: the appearance network and "
            "its training change with `walkout-tracking train --config ...`"
        )
    source_id = experiment_id_of(ref)
    if source_id is None:
        raise ConfigError(
            f"--model {ref}: a bare checkpoint names no experiment; pass an experiment id or a "
            "model_ref.yaml so the new experiment records what it came from"
        )
    search = [PACKAGE_DIR / "experiments"]
    weights = pins.resolve_model_ref(ref, search=search)
    location = pins.locate_experiment(source_id, search=search)
    model, config, payload = load_checkpoint(weights)
    changed = {key: value for key, value in overrides.items()}
    new_config = load_config(apply_overrides(config.to_dict(), changed))
    if new_config == config:
        raise ConfigError(f"--set {changed} leaves the tracker settings of {source_id} as they are")
    out_dir = Path(out_dir)
    exp = ci_experiment.start(project=PROJECT, name="retune-tracker", params=new_config.to_dict())
    try:
        exp.derive_from(location.directory)
        checkpoint = save_checkpoint(out_dir / "best.pt", model, new_config, dict(payload.get("metrics", {})))
        exp.upload_weights(checkpoint, name="weights")
        exp.log_metrics(dict(payload.get("metrics", {})))
    except BaseException:
        exp.close(status="failed")
        raise
    exp.close()
    result = RetuneResult(
        checkpoint=checkpoint, experiment_id=exp.id, source_experiment_id=source_id, changed=changed
    )
    write_atomic(out_dir / "retune_result.json", json.dumps(result.to_dict(), indent=1) + "\n")
    return result
