"""jepaworld: JEPA world models that learn from pixels, predict in representation space and plan.

Importing the package has no side effects beyond registering the built-in Gymnasium environments
when `jepaworld.envs` is imported.
"""

__version__ = "0.1.0"
