"""Settings per component: one frozen section per daemon and part, composed into the
stack's ``Settings``; each field documented where it is declared; every variable still
reaches its field and a bad one is named as before."""

from __future__ import annotations

import pydantic
import pytest

from mytrading.settings import ConfigError, Settings, load_settings, variables
from mytrading.settings.env import field_docs
from mytrading.settings.sections import SECTIONS


def test_every_field_is_documented_where_it_is_declared() -> None:
    docs = {model: field_docs(model) for model in {m for _, _, m, _ in variables()}}
    bare = [
        f"{section or 'Settings'}.{field}"
        for _, section, model, field in variables()
        if not docs[model].get(field, "").strip()
    ]
    assert bare == []
    # and the check reads what it claims: a field's docstring is found under it
    assert docs[SECTIONS["router"]]["max_attempts"] == "Sends of one order that surely failed."


def test_each_variable_sets_one_field_and_the_sections_are_the_settings_attributes() -> None:
    names = [var for var, *_ in variables()]
    assert len(names) == len(set(names))
    for section, model in SECTIONS.items():
        assert Settings.model_fields[section].annotation is model


def test_a_section_is_frozen(settings: Settings) -> None:
    with pytest.raises(pydantic.ValidationError):
        settings.router.max_attempts = 9  # type: ignore[misc]


def test_a_value_reaches_its_section_from_the_environment_and_from_an_override(
    monkeypatch: pytest.MonkeyPatch, tmp_env: dict[str, str]
) -> None:
    monkeypatch.setenv("MT_JOURNAL_FSYNC", "false")  # a variable older than its section
    monkeypatch.setenv("MT_ROUTER_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("MT_ENGINE_MAX_RSS_MB", "512")
    s = load_settings(risk_wait_s=2.5, webhook_queue=7)
    assert (s.router.journal_fsync, s.router.max_attempts) == (False, 4)
    assert s.engine.max_rss_mb == 512 and s.risk.wait_s == 2.5 and s.signals.queue == 7
    assert s.risk.overrides() == {}  # no MT_RISK_* limit given
    monkeypatch.setenv("MT_RISK_MAX_ORDER_LOTS", "3")
    assert load_settings().risk.overrides() == {"max_order_lots": 3}
    again = s.replaced(journal_fsync=True, log_dir=s.log_dir / "x")
    assert again.router.journal_fsync and again.router.max_attempts == 4
    assert again.log_dir == s.log_dir / "x" and s.router.journal_fsync is False
    with pytest.raises(TypeError, match="not settings: router_max_attempt"):
        load_settings(router_max_attempt=3)


def test_a_bad_value_is_named_by_its_variable_whichever_section_holds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_env: dict[str, str]
) -> None:
    monkeypatch.setenv("MT_JOURNAL_FSYNC", "perhaps")
    monkeypatch.setenv("MT_SIGNALS_PORT", "0")
    with pytest.raises(ConfigError) as err:
        load_settings(webhook_queue=0)
    said = str(err.value)
    for var in ("MT_JOURNAL_FSYNC", "MT_SIGNALS_PORT", "MT_WEBHOOK_QUEUE"):
        assert var in said, said  # every bad one at once, each by its variable
    monkeypatch.delenv("MT_JOURNAL_FSYNC")
    monkeypatch.delenv("MT_SIGNALS_PORT")
    with pytest.raises(ConfigError, match="MT_HOOK_KILL_S=1 must be more than"):
        load_settings(hook_kill_s=1)
    with pytest.raises(ConfigError, match="MT_INTENT_ANSWER_S=5 must be more than"):
        load_settings(intent_answer_s=5)
