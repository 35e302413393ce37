"""Size of the Lambda zip ``make package`` builds, next to the documented baseline zipped the same way."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import crhelper
from cloudhsm_backup_restore_pipeline.lambda_zip import build_zip

from bench.world import VARIANTS

EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pyi")
EXCLUDED_NAMES = frozenset({"py.typed"})


@dataclass(frozen=True)
class PackageSize:
    """Bytes and entries of a zip."""

    name: str
    zip_bytes: int
    entries: int
    unpacked_bytes: int


def _measure(name: str, path: Path) -> PackageSize:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return PackageSize(name, path.stat().st_size, len(infos), sum(i.file_size for i in infos))


def ours(scratch: Path) -> PackageSize:
    """Build the real Lambda zip with the pipeline's ``build_zip`` and measure it."""
    return _measure("ours: build_zip (handler + crhelper 2.0.12)", build_zip(scratch / "ours.zip"))


def crhelper_documented(scratch: Path) -> PackageSize:
    """The baseline's index.py plus the installed crhelper, zipped with the same settings (deflate 9)."""
    crhelper_dir = Path(crhelper.__file__).resolve().parent
    code_dir = VARIANTS["crhelper-documented"].code_dir
    files = [("index.py", code_dir / "index.py")]
    for path in sorted(crhelper_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            if path.suffix in EXCLUDED_SUFFIXES or path.name in EXCLUDED_NAMES:
                continue
            files.append((f"crhelper/{path.relative_to(crhelper_dir).as_posix()}", path))
    target = scratch / "crhelper-documented.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return _measure("crhelper as documented: index.py + crhelper", target)


def measure_packages() -> list[PackageSize]:
    """Ours and the baseline."""
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as scratch:
        return [ours(Path(scratch)), crhelper_documented(Path(scratch))]
