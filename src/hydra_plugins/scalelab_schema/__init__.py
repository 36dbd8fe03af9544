"""Registers scalelab's config schema whenever Hydra scans its plugins.

Hydra imports every module under the `hydra_plugins` namespace while it discovers plugins,
DVC's own composition (`dvc exp run -S ...`) included, so the schema that `conf/config.yaml`
names in its defaults list is there however the config gets composed.
"""

from scalelab.config import register_schema

register_schema()
