"""`genimage-fast unpack`: the release's multi-part zip pieces -> the official tree (DESIGN §2, §4.2).

GenImage ships every subset as a split zip (`NAME.z01` ... `NAME.zNN` + `NAME.zip`; Google Drive
appends `-XXX` to the names of a downloaded folder's files). Plain `unzip` refuses split archives and
Python's zipfile has no multi-disk support, so extraction goes through the system's 7-Zip (`7z`,
installed by the set-up), which reads the pieces in order. Per subset:

1. find the pieces (any folder depth; `-XXX` suffixes tolerated), and the piece count the `.zip`'s
   end-of-central-directory record states (its disk number N means `z01`..`zN` must exist);
2. verify each piece's md5 against a checksum list when given (GenImage's `data/checksums.csv`:
   a header `md5Checksum,originalFilename`, quoted values); missing or bad pieces are all reported by
   name before anything is extracted;
3. list the members and refuse unsafe names (absolute, `..`, drive letters): they are rejected, never
   written (7-Zip would rewrite them to a path inside OUT, which would still put a file where the
   archive did not say);
4. extract into `OUT/.unpack/NAME.partial/` (symlinks to the pieces under their canonical names, so
   `-XXX` names work), then move each safe member into OUT and write `OUT/.unpack/NAME.done`. A
   finished subset is kept on a rerun; an interrupted one is redone from its pieces;
5. set zero-byte and unreadable images aside in `OUT/_quarantine/<relpath>`, one line each in
   `OUT/unpack-rejects.jsonl`. The check here is cheap (empty file, PIL's header parse and `verify()`,
   which checks PNG chunk CRCs); a full decode of 2.7M images belongs to `convert`, which decodes
   every image anyway and rejects what fails.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from genimage_fast.atomic import atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.generators import BY_FOLDER, GENERATORS, parse_generators

STATE_DIR = ".unpack"
QUARANTINE = "_quarantine"
REJECTS = "unpack-rejects.jsonl"
_PIECE = re.compile(r"^(?P<base>[^-]+?)(?:-[^.]*)?\.(?P<ext>zip|z\d{2,})$", re.IGNORECASE)
_EOCD = b"PK\x05\x06"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_MD5_CHUNK = 1 << 22


@dataclass
class Subset:
    """One split archive: its canonical piece names -> the files found for them."""

    name: str
    pieces: dict[str, Path] = field(default_factory=dict)

    def ordered(self) -> list[str]:
        """z01, z02, ..., then .zip: the order 7-Zip (and `zip -s`) number the disks."""
        return sorted(self.pieces, key=lambda n: (n.lower().endswith(".zip"), n.lower()))


def seven_zip() -> str:
    """The 7-Zip executable, or a one-line error saying how to get it."""
    for name in ("7z", "7zz", "7za"):
        path = shutil.which(name)
        if path:
            return path
    raise GenImageError("7-Zip (7z) is not installed: run `make setup` as root (it installs p7zip-full), "
                        "or `apt-get install p7zip-full`")


def find_pieces(archives: Path) -> dict[str, Subset]:
    """Every split-zip piece under `archives`, grouped by subset name (canonical names, suffix-free)."""
    if not archives.is_dir():
        raise GenImageError(f"{archives} is not a folder of archive pieces")
    subsets: dict[str, Subset] = {}
    for path in sorted(archives.rglob("*")):
        match = _PIECE.match(path.name)
        if not match or not path.is_file():
            continue
        base, ext = match["base"], match["ext"].lower()
        subset = subsets.setdefault(base, Subset(base))
        canonical = f"{base}.{ext}"
        if canonical in subset.pieces:
            raise GenImageError(f"two files for piece {canonical}: {subset.pieces[canonical]} and {path}")
        subset.pieces[canonical] = path
    return subsets


def read_checksums(path: Path) -> dict[str, str]:
    """name -> md5 from a checksum CSV (GenImage's layout, either column order, header optional)."""
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except OSError as exc:
        raise GenImageError(f"cannot read checksum list {path}: {exc.strerror}") from None
    sums: dict[str, str] = {}
    for number, row in enumerate(rows, 1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or (number == 1 and any("md5" in c.lower() or "name" in c.lower() for c in cells)):
            continue  # blank line or header
        md5 = [c for c in cells if re.fullmatch(r"[0-9a-fA-F]{32}", c)]
        names = [c for c in cells if c not in md5]
        if len(md5) != 1 or len(names) != 1:
            raise GenImageError(f"{path}:{number}: expected 'md5,name' (or 'name,md5'), got {','.join(row)}")
        name, digest = names[0], md5[0].lower()
        if sums.get(name, digest) != digest:
            raise GenImageError(f"{path}:{number}: {name} is listed twice with different checksums")
        sums[name] = digest
    return sums


def disks_from_zip(path: Path) -> int:
    """The number of the last disk from the end-of-central-directory record (0 for an unsplit zip)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 65557))  # the EOCD (22 bytes) plus the longest comment
        tail = handle.read()
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        raise GenImageError(f"{path}: not the last piece of a zip archive (no end-of-central-directory record)")
    return int.from_bytes(tail[at + 4:at + 6], "little")


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(_MD5_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_pieces(subset: Subset, checksums: dict[str, str] | None) -> list[str]:
    """Problems with a subset's pieces, one line each (missing, empty, checksum mismatch)."""
    problems: list[str] = []
    expected = {n for n in (checksums or {}) if _PIECE.match(n) and _PIECE.match(n)["base"] == subset.name}
    zip_name = f"{subset.name}.zip"
    if zip_name in subset.pieces:
        last = disks_from_zip(subset.pieces[zip_name])
        expected |= {f"{subset.name}.z{i:02d}" for i in range(1, last + 1)}
    expected.add(zip_name)
    for name in sorted(expected - set(subset.pieces)):
        problems.append(f"{name}: missing piece")
    for name in subset.ordered():
        path = subset.pieces[name]
        if path.stat().st_size == 0:
            problems.append(f"{name}: empty file ({path})")
        elif checksums is not None and name in checksums and md5_of(path) != checksums[name]:
            problems.append(f"{name}: md5 differs from the checksum list ({path})")
        elif checksums is not None and name not in checksums:
            problems.append(f"{name}: not in the checksum list ({path})")
    return problems


def unsafe_reason(member: str) -> str | None:
    """Why a member name must not be written (None when it is a plain relative path)."""
    if not member or member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member):
        return "absolute member path"
    if ".." in PurePosixPath(member.replace("\\", "/")).parts:
        return "member path leaves the output folder (..)"
    return None


def list_members(exe: str, archive: Path) -> list[tuple[str, bool]]:
    """(path, is_folder) of every member, from `7z l -slt`."""
    out = _run([exe, "l", "-slt", "-ba", str(archive)], f"cannot list {archive.name}")
    members: list[tuple[str, bool]] = []
    path: str | None = None
    for line in out.splitlines():
        if line.startswith("Path = "):
            path = line[len("Path = "):]
        elif line.startswith("Folder = ") and path is not None:
            members.append((path, line.endswith("+")))
            path = None
    return members


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = next((ln.strip() for ln in (proc.stderr + proc.stdout).splitlines()
                       if "ERROR" in ln.upper() or "Can not" in ln or "Unexpected" in ln), "")
        raise GenImageError(f"{what}: 7-Zip exit {proc.returncode}{': ' + detail if detail else ''}")
    return proc.stdout


def image_problem(path: Path) -> str | None:
    """Why an extracted image is set aside (None when it looks readable)."""
    if path.stat().st_size == 0:
        return "zero-byte file"
    if path.suffix.lower() not in _IMAGE_SUFFIXES:
        return None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.verify()
    except Exception as exc:  # whatever PIL raises for a damaged file is a reason, not a crash
        return f"unreadable image: {type(exc).__name__}: {exc}"
    return None


@dataclass
class SubsetResult:
    name: str
    files: int
    rejects: list[dict]
    kept: bool  # finished by an earlier run


def _done_path(out: Path, name: str) -> Path:
    return out / STATE_DIR / f"{name}.done"


def unpack_subset(exe: str, subset: Subset, out: Path) -> SubsetResult:
    """Extract one verified subset into `out` (resumable: redone from scratch unless marked done)."""
    done = _done_path(out, subset.name)
    staging = out / STATE_DIR / f"{subset.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed run left, done or not
    if done.is_file():
        state = json.loads(done.read_text())
        return SubsetResult(subset.name, int(state["files"]), list(state["rejects"]), kept=True)
    (staging / "pieces").mkdir(parents=True)
    for name, path in subset.pieces.items():  # canonical names, so 7-Zip finds NAME.z01 beside NAME.zip
        os.symlink(path.resolve(), staging / "pieces" / name)
    archive = staging / "pieces" / f"{subset.name}.zip"
    rejects: list[dict] = []
    safe: list[str] = []
    for member, is_dir in list_members(exe, archive):
        reason = unsafe_reason(member)
        if reason:
            rejects.append({"path": member, "reason": reason, "subset": subset.name})
        elif not is_dir:
            safe.append(member.replace("\\", "/"))
    tree = staging / "tree"
    _run([exe, "x", "-y", "-bd", f"-o{tree}", str(archive)], f"cannot extract {subset.name}")
    files = 0
    for member in safe:
        source = tree / member
        if not source.is_file():
            rejects.append({"path": member, "reason": "listed in the archive but not extracted", "subset": subset.name})
            continue
        problem = image_problem(source)
        target = out / (QUARANTINE if problem else "") / member
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        if problem:
            rejects.append({"path": member, "reason": problem, "subset": subset.name})
        else:
            files += 1
    atomic_write_text(done, json.dumps({"files": files, "rejects": rejects}, indent=1) + "\n")
    shutil.rmtree(staging, ignore_errors=True)
    return SubsetResult(subset.name, files, rejects, kept=False)


def _wanted(subsets: dict[str, Subset], generators: Sequence[int | str] | str | None) -> list[Subset]:
    ids = parse_generators(generators)
    if ids is None:
        return [subsets[name] for name in sorted(subsets)]
    if any(i < 0 for i in ids):
        raise GenImageError("--generators: -1 (unknown) names no release subset; give names such as sdv14,adm")
    folders = [GENERATORS[i].folder for i in ids]
    missing = [f for f in folders if f not in subsets]
    if missing:
        raise GenImageError(f"no archive pieces for {', '.join(missing)} in the archives folder")
    return [subsets[f] for f in folders]


def unpack(archives: str | os.PathLike, out: str | os.PathLike, checksums: str | os.PathLike | None = None,
           generators: Sequence[int | str] | str | None = None, progress: bool = True) -> list[SubsetResult]:
    """Verify, then extract every (selected) subset; see the module docstring."""
    archives_path, out_path = Path(archives), Path(out)
    subsets = _wanted(find_pieces(archives_path), generators)
    if not subsets:
        raise GenImageError(f"no split-zip pieces (NAME.z01 ... NAME.zip) under {archives_path}")
    sums = read_checksums(Path(checksums)) if checksums else None
    exe = seven_zip()
    todo = [s for s in subsets if not _done_path(out_path, s.name).is_file()]
    problems = [f"{s.name}: {p}" for s in todo for p in check_pieces(s, sums)]
    if problems:  # every bad piece named before anything is extracted
        raise GenImageError(f"{len(problems)} problem(s) with the archive pieces: " + "; ".join(problems))
    out_path.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    results = [unpack_subset(exe, s, out_path)
               for s in tqdm(subsets, desc="unpack", unit="subset", disable=not progress, file=sys.stderr)]
    lines = [json.dumps(r) for res in results for r in res.rejects]
    atomic_write_text(out_path / REJECTS, "".join(line + "\n" for line in lines))
    return results


def known_subset(name: str) -> str:
    """The generator of a subset folder name, for the summary ('' when it is not one of the 8)."""
    gen = BY_FOLDER.get(name)
    return gen.name if gen else ""


def summary_lines(results: Iterable[SubsetResult], out: Path) -> list[str]:
    lines = []
    for res in results:
        label = known_subset(res.name)
        state = "kept (already unpacked)" if res.kept else "unpacked"
        lines.append(f"{res.name}{' (' + label + ')' if label else ''}: {state}, {res.files} files, "
                     f"{len(res.rejects)} set aside")
    lines.append(f"rejects: {out / REJECTS}")
    return lines


def unpack_command(archives: str, out: str, checksums: str | None = None, generators: str | None = None) -> int:
    """`genimage-fast unpack ARCHIVES_DIR OUT [--checksums FILE] [--generators g1,g2]`."""
    results = unpack(archives, out, checksums=checksums, generators=generators)
    sys.stdout.write("\n".join(summary_lines(results, Path(out))) + "\n")
    return 0
