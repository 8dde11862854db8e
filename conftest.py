"""pytest at the repository root. `pytest --doctest-modules rewardkit` runs the examples in the
package's docstrings (scripts/test.sh does, after the suite in tests/); a module that imports an
engine at its top is left out where that engine is not installed (it is tested in the engine's
own venv)."""

import importlib.util

_NEEDS = {"rewardkit/integrations/verl_manager.py": "verl"}

collect_ignore = [path for path, module in _NEEDS.items() if importlib.util.find_spec(module) is None]
