"""deploy/compose.yaml and deploy/Dockerfile as far as this machine allows without a
container runtime: the compose service's environment, with its defaults, is a
configuration ``config check`` accepts and that sends orders to OpenAlgo's container by
name (and is refused without the plain-http allowance it carries); every file the
Dockerfile copies exists in the checkout."""

from __future__ import annotations

import re

import yaml

from mytrading.settings import PROJECT_ROOT
from tests.procs import cli

DEPLOY = PROJECT_ROOT / "deploy"


def _compose_env() -> dict[str, str]:
    spec = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = spec["services"]["mytrading"]["environment"]
    default = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")  # what compose puts there when unset
    return {k: default.sub(lambda m: m.group(1), str(v)) for k, v in env.items()}


def test_compose_points_the_stack_at_openalgos_container(tmp_env: dict[str, str]) -> None:
    env = {**tmp_env, **_compose_env(), "MT_OPENALGO_API_KEY": "a" * 64}
    assert env["MT_OPENALGO_HOST"] == "http://openalgo-web:5000"
    r = cli("config", "check", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "account main: http://openalgo-web:5000" in r.stdout
    del env["MT_OPENALGO_PLAIN_HTTP_HOSTS"]
    r = cli("config", "check", env=env)
    assert r.returncode == 2 and "plain http to another machine" in r.stderr


def test_compose_joins_openalgos_network_and_keeps_state_on_a_volume() -> None:
    spec = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = spec["services"]["mytrading"]
    assert spec["networks"]["openalgo"]["external"] is True
    assert "openalgo_default" in spec["networks"]["openalgo"]["name"]
    assert "mytrading_data:/app/logs" in svc["volumes"]
    assert svc["restart"] == "unless-stopped" and svc["command"] == ["run"]


def test_every_file_the_dockerfile_copies_exists() -> None:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            sources = [w for w in line.split()[1:-1] if not w.startswith("--")]
            for src in sources:
                assert (PROJECT_ROOT / src).exists(), src
