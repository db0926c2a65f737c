"""walkout_sim: the synthetic store (top-down ceiling camera, exact ground truth, standard formats).

Public API::

    walkout_sim.generate_split(out_dir, split="train", videos=2, frames=40, seed=0)
    walkout_sim.render_scenario("pick_then_put_back", out_dir)
    walkout_sim.shipped_scenarios()
"""

__version__ = "0.1.0"

from walkout_sim.errors import ConfigError, SimError
from walkout_sim.generate import generate_split, render_scenario
from walkout_sim.scenario import shipped_scenarios

__all__ = ["ConfigError", "SimError", "__version__", "generate_split", "render_scenario", "shipped_scenarios"]
