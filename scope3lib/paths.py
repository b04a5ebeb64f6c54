"""Where the files that ship with the platform are: notebooks, the JupyterHub configuration, report schedules.

In a checkout they are beside the package (``notebooks/``, ``hub_config/``, ``reports/``); an installed
package carries the same files under ``<prefix>/share/scope3/`` (``[tool.setuptools.data-files]`` in
``pyproject.toml``). Everything the platform writes goes under the data directory instead
(:class:`scope3lib.config.Settings`), never here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import ConfigurationError

_CHECKOUT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """The directory holding ``notebooks/``, ``hub_config/`` and ``reports/``."""
    for candidate in (_CHECKOUT, Path(sys.prefix) / "share" / "scope3"):
        if (candidate / "notebooks").is_dir() and (candidate / "hub_config").is_dir():
            return candidate
    raise ConfigurationError(f"the platform's notebooks and hub configuration are neither in {_CHECKOUT} nor in "
                             f"{Path(sys.prefix) / 'share' / 'scope3'}: reinstall the package (pip install scope3)")


def notebooks() -> Path:
    return share_dir() / "notebooks"


def hub_config_file() -> Path:
    return share_dir() / "hub_config" / "jupyterhub_config.py"


def schedules_file() -> Path:
    return share_dir() / "reports" / "schedules.yaml"
