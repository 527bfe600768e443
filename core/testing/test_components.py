"""`pytest --pyargs facebone.testing`: the contract checks for every component under test
(see :func:`facebone.testing.components_under_test`)."""
from __future__ import annotations

import pytest

from facebone.testing.checks import check_component, components_under_test

COMPONENTS = components_under_test()


@pytest.mark.skipif(not COMPONENTS, reason="no plugin components under test (set FACEBONE_TEST_DIST=<distribution>)")
@pytest.mark.parametrize("kind, name", COMPONENTS or [("", "")])
def test_component_meets_its_contract(kind: str, name: str) -> None:
    check_component(kind, name)
