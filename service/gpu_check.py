"""GPU check, runnable from a checkout: ``python service/gpu_check.py [--model-dir DIR]``.

The same as ``python -m demand_predictor.gpu_check`` (see that module for what it
checks and measures); this file only puts ``service/`` on the import path.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demand_predictor.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
