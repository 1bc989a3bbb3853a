"""The bus's CURVE keys: one key pair per daemon and one for the operator's tools.

``main.py keys init`` writes them with pyzmq's own certificate format into the keys
directory (0700; every file 0600): ``<name>.key`` holds the public key (copy it to every
host), ``<name>.key_secret`` the pair (only on the host that runs ``<name>``). Who may
connect to which endpoint is ``ALLOWED`` below; the ZAP handler (``bus.CurveBus``)
enforces it from the public keys, so a process without one of the stack's keys cannot
connect at all, and an engine's key cannot push to the router's order pipe.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from mytrading.messaging import bus
from mytrading.messaging.bus import DAEMONS, ENDPOINT_NAMES
from mytrading.settings import ConfigError, Settings

TOOLS = "cli"  # status, kill switch, chain view, benchmarks: the operator's key
KEY_NAMES: tuple[str, ...] = (*DAEMONS, TOOLS)

# The daemon that binds each endpoint (the CURVE server whose public key clients pin)
OWNER: dict[str, str] = {f"pub.{d}": d for d in DAEMONS} | {
    "pipe.intents": "risk",
    "pipe.commands": "risk",
    "pipe.orders": "router",
    "rpc.router": "router",
    "pipe.interest": "feed",
}
# Who may connect to it. Publishers: any of the stack's keys (they read). Pipes: only the
# processes that send on them, so a stolen engine key still cannot bypass risk.
ALLOWED: dict[str, frozenset[str]] = {f"pub.{d}": frozenset(KEY_NAMES) for d in DAEMONS} | {
    "pipe.intents": frozenset({"engine", "signals"}),
    "pipe.commands": frozenset({TOOLS, "router", "monitor"}),
    "pipe.orders": frozenset({"risk"}),
    "rpc.router": frozenset({"risk", "engine", "signals", "reconciler", "monitor", TOOLS}),
    "pipe.interest": frozenset({TOOLS}),
}
assert set(OWNER) == set(ENDPOINT_NAMES) == set(ALLOWED)


class BusKeyError(ConfigError):
    """A key is missing, unreadable or readable by others; the message says which."""


@dataclass(frozen=True)
class KeyRing:
    """The public keys of every name, and this process's own pair."""

    me: str
    public: bytes
    secret: bytes
    publics: dict[str, bytes]  # name -> z85 public key

    def name_of(self, public_z85: bytes) -> str | None:
        for name, key in self.publics.items():
            if key == public_z85:
                return name
        return None


def init_keys(keys_dir: Path, force: bool = False) -> list[Path]:
    """Write a fresh pair for every name; refuse to overwrite unless ``force``."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    existing = [keys_dir / f"{n}.key_secret" for n in KEY_NAMES]
    if any(p.exists() for p in existing) and not force:
        raise BusKeyError(
            f"{keys_dir} already holds keys: `keys init --force` replaces them "
            "(every host must then get the new public keys)"
        )
    written = []
    old = os.umask(0o077)
    try:
        for name in KEY_NAMES:
            for suffix in (".key", ".key_secret"):
                (keys_dir / f"{name}{suffix}").unlink(missing_ok=True)
            pub, sec = zmq.auth.create_certificates(str(keys_dir), name)
            for p in (pub, sec):
                os.chmod(p, 0o600)
                written.append(Path(p))
    finally:
        os.umask(old)
    return written


def _private(path: Path) -> None:
    st = path.stat()
    if st.st_uid != os.getuid():
        raise BusKeyError(f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BusKeyError(f"{path} is mode {oct(st.st_mode & 0o777)}: it must be 0600 (0700 dirs)")


def load_ring(keys_dir: Path, me: str) -> KeyRing:
    """This process's pair and every public key; a clear error for each defect."""
    if not keys_dir.is_dir():
        raise BusKeyError(
            f"no bus keys in {keys_dir}: run `python3 main.py keys init` (the tcp bus is "
            "encrypted and authenticated with CURVE)"
        )
    _private(keys_dir)
    publics: dict[str, bytes] = {}
    for name in KEY_NAMES:
        path = keys_dir / f"{name}.key"
        if not path.exists():
            raise BusKeyError(f"{path} is missing: copy every public key to every host")
        try:
            pub, _ = zmq.auth.load_certificate(str(path))
        except (ValueError, OSError) as exc:
            raise BusKeyError(f"{path}: not a key file ({exc})") from None
        publics[name] = pub
    secret_path = keys_dir / f"{me}.key_secret"
    if not secret_path.exists():
        raise BusKeyError(f"{secret_path} is missing: this host cannot run {me!r}")
    _private(secret_path)
    try:
        pub, sec = zmq.auth.load_certificate(str(secret_path))
    except (ValueError, OSError) as exc:
        raise BusKeyError(f"{secret_path}: not a key file ({exc})") from None
    if sec is None or pub != publics[me]:
        raise BusKeyError(f"{secret_path} does not match {me}.key")
    return KeyRing(me, pub, sec, publics)


def check_keys(keys_dir: Path, names: tuple[str, ...]) -> list[str]:
    """``config check``: every problem with the keys ``names`` need, as sentences."""
    problems = []
    for name in names:
        try:
            load_ring(keys_dir, name)
        except BusKeyError as exc:
            problems.append(str(exc))
    return sorted(set(problems))


class _Admit:
    """The ZAP handler's question, per endpoint (its ZAP domain): is this key allowed?"""

    def __init__(self, ring: KeyRing, log: Callable[..., None]) -> None:
        self.ring = ring
        self.log = log
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:
        name = self.ring.name_of(key)
        ok = name is not None and name in ALLOWED.get(domain, frozenset())
        if not ok:
            self.refused += 1
            if self.refused <= 10 or self.refused % 1000 == 0:  # a flood: counted, not logged
                self.log(
                    "bus connection refused",
                    endpoint=domain,
                    key=key.decode("ascii", "replace")[:8] + "...",
                    known_as=name,
                    refused=self.refused,
                )
        return ok


class CurveBus:
    """CURVE on every tcp socket of one process: servers authenticate clients through a
    ZAP handler (pyzmq's ``ThreadAuthenticator``, one per context), clients pin the
    public key of the daemon that owns the endpoint."""

    def __init__(self, ring: KeyRing, names: dict[str, str], log: Callable[..., None]) -> None:
        self.ring = ring
        self.names = names  # endpoint address -> endpoint name
        self.admit = _Admit(ring, log)
        self._auth: dict[int, ThreadAuthenticator] = {}

    def _name(self, endpoint: str) -> str:
        try:
            return self.names[endpoint]
        except KeyError:
            raise BusKeyError(f"{endpoint} is not a bus endpoint: no key to pin") from None

    def server(self, sock: zmq.Socket, endpoint: str) -> None:
        name = self._name(endpoint)
        ctx = sock.context
        if id(ctx) not in self._auth:
            auth = ThreadAuthenticator(ctx)
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=self.admit)
            for domain in ENDPOINT_NAMES:
                auth.configure_curve_callback(domain=domain, credentials_provider=self.admit)
            self._auth[id(ctx)] = auth
        sock.curve_secretkey = self.ring.secret
        sock.curve_publickey = self.ring.public
        sock.setsockopt_string(zmq.ZAP_DOMAIN, name)
        sock.curve_server = True

    def client(self, sock: zmq.Socket, endpoint: str) -> None:
        name = self._name(endpoint)
        sock.curve_secretkey = self.ring.secret
        sock.curve_publickey = self.ring.public
        sock.curve_serverkey = self.ring.publics[OWNER[name]]

    def stop(self, ctx: zmq.Context) -> None:
        auth = self._auth.pop(id(ctx), None)
        if auth is not None:
            auth.stop()


def secure_bus(settings: Settings, me: str, log: Callable[..., None]) -> CurveBus | None:
    """Make this process's tcp sockets CURVE sockets when the settings ask for it (the
    default with tcp); None on ipc. Raises ``BusKeyError`` when a key is not right."""
    if not settings.bus.curve_on():
        bus.use_curve(None)
        return None
    ring = load_ring(settings.bus.keys_dir, me)
    eps = settings.endpoints()
    curve = CurveBus(ring, {addr: name for name, addr in eps.endpoints.items()}, log)
    bus.use_curve(curve)
    return curve
