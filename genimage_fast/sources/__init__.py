"""Reading GenImage trees: `scan_tree` (layouts, names, class ids) and `make_demo_data` (a small tree).

Light on purpose: importing the package pulls in neither numpy nor PIL; `make_demo_data` loads
its module (numpy, PIL) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genimage_fast.sources.samples import ScanResult, Skipped, SourceSample
from genimage_fast.sources.scan import scan_tree

if TYPE_CHECKING:
    from genimage_fast.sources.demo import make_demo_data

__all__ = ["ScanResult", "Skipped", "SourceSample", "make_demo_data", "scan_tree"]


def __getattr__(name: str) -> Any:
    if name == "make_demo_data":
        from genimage_fast.sources.demo import make_demo_data

        return make_demo_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
