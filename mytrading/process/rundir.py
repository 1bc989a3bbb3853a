"""Private directories: created by us with mode 0700, refused when someone else made them.

The runtime directory holds the ipc sockets and supervisord's control socket: whoever can
write in it can replace a socket and sit between two daemons. Its default name
(``/tmp/mytrading-<uid>-<hash>`` without ``XDG_RUNTIME_DIR``) is predictable, so another
user could create it first; ``chmod`` would then fail or, worse, leave it theirs. We
create it ourselves and check what we find: a real directory (not a symlink), ours, and
open to nobody else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mytrading.domain.errors import ConfigError


class RunDirError(ConfigError):
    """The directory exists but is not private to this user; the message says why."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` 0700 if missing (parents as needed); refuse it if it is a symlink,
    not a directory, another user's, or open to group or others."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RunDirError(f"{path}: cannot create the private runtime directory ({exc})") from None
    st = os.lstat(path)
    fix = "remove it, or set MT_RUN_DIR (or XDG_RUNTIME_DIR) to a directory of your own"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"{path} is not a directory (a symlink or a file): {fix}")
    if st.st_uid != os.getuid():
        raise RunDirError(
            f"{path} belongs to uid {st.st_uid}, not to you ({os.getuid()}): another user "
            f"could replace the stack's sockets in it. {fix}"
        )
    if st.st_mode & 0o077:
        raise RunDirError(
            f"{path} is mode {oct(st.st_mode & 0o777)}: others could reach the stack's sockets "
            f"in it; it must be 0700 (chmod 700 {path}, or {fix})"
        )
    return path


PRIVATE_UMASK = 0o077  # files 0600, directories 0700


def private_umask() -> None:
    """Everything this process creates from now on is readable by this user only: state,
    journals (through compaction), databases, logs (through rotation), reports."""
    os.umask(PRIVATE_UMASK)


def make_private(*roots: Path) -> int:
    """Tighten what an older version left readable under ``roots``: files to 0600 and
    directories to 0700 (only this user's; symlinks are not followed). Returns how many
    it changed."""
    changed = 0
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name, want in [(d, 0o700) for d in dirnames] + [(f, 0o600) for f in filenames]:
                changed += _tighten(os.path.join(dirpath, name), want)
        changed += _tighten(str(root), 0o700)
    return changed


def _tighten(path: str, want: int) -> int:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return 0
    if stat.S_ISSOCK(st.st_mode):
        return 0
    os.chmod(path, (stat.S_IMODE(st.st_mode) & 0o700) | want)
    return 1
