"""Stage the Lambda code (handler package plus pinned crhelper) and zip it reproducibly, offline."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

HANDLER_PACKAGE = "cloudhsm_backup_restore"
PROJECT_DISTRIBUTION = "cloudhsm-backup-restore"
ZIP_NAME = "cloudhsm-backup-restore-lambda.zip"
S3_KEY_PREFIX = "cloudhsm-backup-restore/"
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest timestamp a zip entry can hold: every entry gets it, so builds are byte-identical."""
FILE_MODE = 0o644
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})
"""The Lambda Python runtime ships these: never vendored from the project's metadata fallback."""

_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pyi")
_EXCLUDED_NAMES = frozenset({"py.typed", "conftest.py"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


class PackagingError(Exception):
    """The Lambda code cannot be staged as pinned (wrong version installed, missing files)."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def source_root() -> Path | None:
    """The repository checkout this module runs from, or None when installed without one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "handler" / HANDLER_PACKAGE / "__init__.py").is_file() else None


def handler_package_dir() -> Path:
    """Directory of the handler package: handler/ in a checkout, else wherever it is importable from."""
    root = source_root()
    if root is not None:
        return root / "handler" / HANDLER_PACKAGE
    spec = importlib.util.find_spec(HANDLER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PackagingError(f"Cannot find the {HANDLER_PACKAGE} package: install the project or run from a checkout")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def parse_requirements(text: str) -> dict[str, str]:
    """Exact pins (name==version) of a requirements file; anything else is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.fullmatch(line)
        if match is None:
            raise PackagingError(f"requirements line {number} is not an exact pin (name==version): {line!r}")
        pins[_normalize(match.group(1))] = match.group(2)
    return pins


def _metadata_pins() -> dict[str, str]:
    try:
        requires = importlib.metadata.requires(PROJECT_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    pins: dict[str, str] = {}
    for requirement in requires:
        if ";" in requirement:
            continue
        match = _PIN.fullmatch(requirement.strip())
        if match and _normalize(match.group(1)) not in RUNTIME_PROVIDED:
            pins[_normalize(match.group(1))] = match.group(2)
    return pins


def lambda_requirements() -> tuple[dict[str, str], str]:
    """The pins the zip carries and where they came from.

    handler/requirements.txt next to the handler package (a checkout or an editable install) is
    authoritative. A regular install does not ship that file, so the fallback is the installed
    project's Requires-Dist exact pins (pyproject pins crhelper to the same version).
    """
    package_dir = handler_package_dir()
    requirements = package_dir.parent / "requirements.txt"
    if package_dir.parent.name == "handler" and requirements.is_file():
        return parse_requirements(requirements.read_text(encoding="utf-8")), str(requirements)
    pins = _metadata_pins()
    if not pins:
        raise PackagingError(
            "No Lambda requirements found: neither handler/requirements.txt nor exact pins in the "
            f"installed {PROJECT_DISTRIBUTION} distribution's metadata"
        )
    return pins, f"{PROJECT_DISTRIBUTION} distribution metadata (Requires-Dist)"


def _excluded(relative: PurePosixPath) -> bool:
    if any(part in _EXCLUDED_DIRS or part.startswith(".") for part in relative.parts[:-1]):
        return True
    name = relative.name
    return (
        name.startswith(".")
        or name in _EXCLUDED_NAMES
        or name.endswith(_EXCLUDED_SUFFIXES)
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(FILE_MODE)


def _stage_handler(dest: Path, package_dir: Path) -> None:
    for source in sorted(package_dir.rglob("*")):
        relative = PurePosixPath(source.relative_to(package_dir).as_posix())
        if source.is_file() and not _excluded(relative):
            _copy(source, dest / HANDLER_PACKAGE / relative)


def _record_hashes(distribution: importlib.metadata.Distribution) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for line in (distribution.read_text("RECORD") or "").splitlines():
        path, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if digest.startswith("sha256="):
            hashes[path] = digest.removeprefix("sha256=")
    return hashes


def _check_hash(source: Path, path: str, expected: str | None) -> None:
    if expected is None:
        return
    actual = base64.urlsafe_b64encode(hashlib.sha256(source.read_bytes()).digest()).rstrip(b"=").decode()
    if actual != expected:
        raise PackagingError(f"{path} differs from its wheel's RECORD (modified installation?): reinstall it")


def _stage_distribution(dest: Path, name: str, version: str, origin: str) -> None:
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise PackagingError(
            f"{name}=={version} (pinned in {origin}) is not installed: pip install {name}=={version}"
        ) from None
    if distribution.version != version:
        raise PackagingError(
            f"Installed {name} is {distribution.version} but {origin} pins {version}: pip install {name}=={version}"
        )
    if distribution.files is None:
        raise PackagingError(f"{name} has no RECORD: cannot tell which files belong to it; reinstall it with pip")
    licenses = {str(entry) for entry in distribution.metadata.get_all("License-File") or []}
    hashes = _record_hashes(distribution)
    for file in distribution.files:
        relative = PurePosixPath(str(file))
        if relative.parts[0] == "..":
            continue  # console scripts and data installed outside site-packages
        if relative.parts[0].endswith(".dist-info"):
            inside = PurePosixPath(*relative.parts[1:]).as_posix()
            keep = inside in licenses or inside == "METADATA" or inside.startswith("licenses/")
        else:
            keep = not _excluded(relative)
        if keep:
            source = Path(str(distribution.locate_file(file)))
            _check_hash(source, relative.as_posix(), hashes.get(relative.as_posix()))
            if relative.name == "METADATA" and relative.parts[0].endswith(".dist-info"):
                _write_core_metadata(distribution, dest.joinpath(*relative.parts))
            else:
                _copy(source, dest.joinpath(*relative.parts))


def _write_core_metadata(distribution: importlib.metadata.Distribution, target: Path) -> None:
    """METADATA without the long description (crhelper's README, 2.9 KB zipped): what importlib.metadata reads at
    run time (Name, Version) and the licence fields stay."""
    kept = ("Metadata-Version", "Name", "Version", "License", "License-File", "Requires-Dist", "Requires-Python")
    lines = [f"{key}: {value}" for key in kept for value in distribution.metadata.get_all(key) or []]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target.chmod(FILE_MODE)


def stage_lambda_code(dest: Path, handler_dir: Path | None = None) -> Path:
    """Copy the handler package (default: ``handler_package_dir()``) and the pinned crhelper into ``dest``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackagingError(f"{dest} must be absent or an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    pins, origin = lambda_requirements()
    _stage_handler(dest, Path(handler_dir) if handler_dir is not None else handler_package_dir())
    for name, version in sorted(pins.items()):
        _stage_distribution(dest, name, version, origin)
    return dest


def _staged_files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path.relative_to(root).as_posix(), path


def build_zip(dest_zip: Path, handler_dir: Path | None = None) -> Path:
    """Write the Lambda zip to ``dest_zip``: sorted entries, fixed times and modes, byte-identical per input."""
    dest_zip = Path(dest_zip)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="cloudhsm-lambda-") as scratch:
        staged = stage_lambda_code(Path(scratch) / "code", handler_dir)
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, path in sorted(_staged_files(staged)):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
                info.create_system = 3  # Unix, so external_attr carries the mode
                info.external_attr = (0o100000 | FILE_MODE) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
    write_atomically(dest_zip, buffer.getvalue())
    return dest_zip


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Unpack a zip from ``build_zip`` into ``dest`` (what /var/task holds); return ``dest``."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise PackagingError(f"{info.filename} would unpack outside {dest}")
        archive.extractall(dest)
    return dest


@dataclass(frozen=True)
class ZipDigest:
    """Size and SHA-256 of a zip, in the forms S3 keys and Lambda's CodeSha256 use."""

    size: int
    sha256_hex: str
    code_sha256: str
    """Base64 of the raw digest: what Lambda reports as CodeSha256."""

    @property
    def s3_key(self) -> str:
        """A content-addressed S3 key for the zip."""
        return f"{S3_KEY_PREFIX}{self.sha256_hex}.zip"


def digest(zip_path: Path) -> ZipDigest:
    """Measure a zip file."""
    data = Path(zip_path).read_bytes()
    raw = hashlib.sha256(data).digest()
    return ZipDigest(size=len(data), sha256_hex=raw.hex(), code_sha256=base64.b64encode(raw).decode())


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        Path(partial).chmod(FILE_MODE)
        Path(partial).replace(path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
