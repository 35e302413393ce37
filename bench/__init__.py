"""``make bench``: what users feel (CloudFormation-visible latency, invocations, API calls, cold start,
package size, behaviour at scale) for our handler against the alternatives, side by side, in one run.

Everything runs offline: the CloudHSM emulator and the CloudFormation simulator from ``offline/``.
Run with ``python -m bench`` from the repository root (``python -m bench --help`` for options).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout the benchmark measures."""

for _sub in ("offline", "pipeline"):  # the offline world and the packaging code, as pytest's pythonpath has them
    _path = str(REPO_ROOT / _sub)
    if _path not in sys.path:
        sys.path.insert(0, _path)
