"""setuptools' PEP 517 backend, minus one notice that does not apply to rustlab.

rustlab's packages live in two roots (``rustlab/`` and ``plugins/``), so setuptools makes an
editable install with a meta-path finder and then, on every ``pip install -e .``, warns that
"folders in your working directory with the same name as your package ... may take precedence
during imports". For rustlab that folder is the package's own source, so the notice is noise;
only it is silenced, every other setuptools warning (deprecations, bad metadata) still shows.
Only a src/ layout would avoid it natively. pyproject.toml names this module with backend-path.
"""

import warnings

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  every other hook is setuptools' own
from setuptools.warnings import InformationOnly


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Editable installation", category=InformationOnly)
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
