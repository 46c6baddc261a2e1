"""An example third-party kdreg plugin package, built only on kdreg's public API.

* ``example-jsd`` (loss): symmetric Jensen–Shannon knowledge distillation;
* ``example-topics`` (benchmark): a toy topic task in English, German and French whose
  data ships inside the package.
"""

from __future__ import annotations

__version__ = "0.1.0"
