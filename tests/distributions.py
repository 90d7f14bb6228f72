"""Installing small distributions for real, for tests: a directory on ``sys.path`` holding their
modules and ``*.dist-info`` (METADATA, entry_points.txt), which is all ``importlib.metadata`` and
therefore castgate's plugin loader look at. Nothing is faked between the loader and the files.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PLUGIN_SOURCES = Path(__file__).parent / "plugin_sources"


@dataclass(frozen=True)
class Site:
    root: Path

    def install(
        self,
        distribution: str,
        *,
        entry_points: Mapping[str, str],
        modules: Mapping[str, str],
        version: str = "1.0",
    ) -> None:
        """Install ``distribution`` with ``modules`` (name -> source) and ``castgate`` entry
        points (entry-point name -> ``module`` or ``module:attribute``)."""
        for name, source in modules.items():
            (self.root / f"{name}.py").write_text(source)
        dist_info = self.root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[castgate]\n{lines}")
        importlib.invalidate_caches()

    def install_testcam(self) -> None:
        """The test vendor ``testcam`` (tests/plugin_sources/testcam.py) as its own distribution."""
        self.install(
            "castgate-testcam",
            entry_points={"testcam": "castgate_testcam"},
            modules={"castgate_testcam": (PLUGIN_SOURCES / "testcam.py").read_text()},
        )

    def install_signedcam(self) -> None:
        """The signing test vendor ``signedcam`` (tests/plugin_sources/signedcam.py)."""
        self.install(
            "castgate-signedcam",
            entry_points={"signedcam": "castgate_signedcam"},
            modules={"castgate_signedcam": (PLUGIN_SOURCES / "signedcam.py").read_text()},
        )

    def env(self) -> dict[str, str]:
        """The environment for a subprocess that should see this site."""
        path = os.pathsep.join(filter(None, [str(self.root), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path}


@contextmanager
def installed_site(root: Path) -> Iterator[Site]:
    """The site at ``root`` (made empty if it does not exist) on ``sys.path``; afterwards its path
    and modules are gone."""
    root.mkdir(exist_ok=True)
    sys.path.insert(0, str(root))
    try:
        yield Site(root)
    finally:
        sys.path.remove(str(root))
        # Forget modules imported from this site so a later same-named module is fresh.
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(root)):
                del sys.modules[name]
        importlib.invalidate_caches()
