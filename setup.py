"""Package discovery for the two source roots mapped in pyproject.toml.

``core/`` is the ``facebone`` package and ``plugins/`` is ``facebone.plugins``; every package
below them is found here, so a new subpackage can never drop out of the wheel. All other
metadata lives in pyproject.toml.
"""
from setuptools import find_packages, setup

ROOTS = {"facebone": "core", "facebone.plugins": "plugins"}

setup(packages=[pkg for name, root in ROOTS.items()
                for pkg in [name, *(f"{name}.{sub}" for sub in find_packages(root))]])
