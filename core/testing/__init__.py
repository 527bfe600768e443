"""Contract checks for plugin components, shipped with facebone so plugin authors can run them.

From a plugin's own repository, after ``pip install`` of the plugin::

    pytest --pyargs facebone.testing                       # every component of non-facebone plugins
    FACEBONE_TEST_DIST=my-plugin pytest --pyargs facebone.testing   # one distribution's components

or call the checks from the plugin's own tests::

    from facebone.testing import check_component
    def test_contract():
        check_component("backbone", "mynet")

Each check builds the component through the core's one build path and raises AssertionError
naming what broke. A component whose optional package is missing is skipped.
"""
from __future__ import annotations

from facebone.testing.checks import (CHECKS, check_backbone, check_component, check_evaluator, check_head,
                                     check_objective, check_options, check_warp, components_under_test)

__all__ = ["CHECKS", "check_backbone", "check_component", "check_evaluator", "check_head", "check_objective",
           "check_options", "check_warp", "components_under_test"]
