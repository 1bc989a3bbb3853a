"""The builder file format: every template parses; each kind of mistake is refused with
the file, the line and what is wrong, as ``config check`` prints it; the strike a leg
names becomes the selector the Python API takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading.builder.spec import SpecError, line_of, parse
from mytrading.builder.templates import TEMPLATES, render
from mytrading.engine.loader import load
from tests.procs import run_cli

GOOD = """\
underlying = "NIFTY"

[schedule]
entry = "09:30"
squareoff = "15:10"

[exits]
max_loss = 3000

[[legs]]
instrument = "CE"
action = "SELL"
strike = "ATM"
stop_pct = 25

[[legs]]
instrument = "PE"
action = "SELL"
strike = "ATM"
stop_pct = 25
"""

# (what is wrong, the edit that makes it so, the line named, words in the message)
MISTAKES = [
    (
        "an unknown key",
        ("stop_pct = 25\n\n[[legs]]", "stopp_pct = 25\n\n[[legs]]"),
        14,
        "unknown key",
    ),
    ("a wrong type", ("max_loss = 3000", 'max_loss = "lots"'), 8, "exits.max_loss"),
    (
        "an unknown option type",
        ('instrument = "PE"', 'instrument = "XE"'),
        17,
        "legs[2].instrument",
    ),
    (
        "a bad strike",
        ('strike = "ATM"\nstop_pct = 25\n\n[[', 'strike = "ATM+X"\nstop_pct = 25\n\n[['),
        13,
        "ATM+n",
    ),
    (
        "two strike choices",
        (
            'action = "SELL"\nstrike = "ATM"\nstop_pct = 25\n',
            'action = "SELL"\nstrike = "ATM"\ndelta_near = 0.3\nstop_pct = 25\n',
        ),
        10,
        "one way",
    ),
    (
        "a delta out of range",
        ('strike = "ATM"\nstop_pct = 25\n', "delta_near = 1.5\nstop_pct = 25\n"),
        13,
        "legs[1].delta_near",
    ),
    ("times out of order", ('entry = "09:30"', 'entry = "15:20"'), 3, "entry <= last_entry"),
    ("a time that is not one", ('entry = "09:30"', 'entry = "9.30am"'), 4, "schedule.entry"),
    (
        "stop and points both",
        ("stop_pct = 25\n", "stop_pct = 25\nstop_points = 10\n"),
        10,
        "not both",
    ),
    ("a short's target of 100 %", ("stop_pct = 25\n", "target_pct = 100\n"), 10, "falls only to 0"),
    (
        "a trailing stop half given",
        ("max_loss = 3000", "max_loss = 3000\ntrail_after = 500"),
        7,
        "trail_by",
    ),
    (
        "re-entry with no stop",
        ("stop_pct = 25\n", ""),
        1,
        "give a leg stop_pct",
    ),
    ("no legs", ("[[legs]]", "[[lags]]"), 1, "legs: required"),
    ("a FUT leg with a strike", ('instrument = "CE"', 'instrument = "FUT"'), 10, "FUT leg"),
    (
        "a sizing mode that is not one",
        ("[exits]", '[sizing]\nmode = "yolo"\n\n[exits]'),
        8,
        "sizing.mode",
    ),
    ("not TOML at all", ("[exits]", "[exits"), 7, "not TOML"),
]


@pytest.mark.parametrize("why, edit, line, words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_kind_of_mistake_names_its_line(
    why: str, edit: tuple[str, str], line: int, words: str
) -> None:
    assert edit[0] in GOOD, why
    # the edits of the last cases apply to every leg
    every = why in ("no legs", "re-entry with no stop")
    text = GOOD.replace(edit[0], edit[1], -1 if every else 1)
    if why == "re-entry with no stop":
        text = text.replace("[[legs]]", "[reentry]\ncount = 1\n\n[[legs]]", 1)
    with pytest.raises(SpecError) as exc:
        parse(Path("s/bad.toml"), text, {"NIFTY"})
    msg = str(exc.value)
    assert words in msg, msg
    if why == "not TOML at all":
        assert f"line {line}" in msg, msg
    else:
        assert msg.startswith(f"s/bad.toml:{line}: "), msg


def test_an_unknown_underlying_is_refused_at_its_line() -> None:
    with pytest.raises(SpecError, match=r"^s/x.toml:1: underlying 'NIFTI' is not"):
        parse(Path("s/x.toml"), GOOD.replace('"NIFTY"', '"NIFTI"'), {"NIFTY", "SENSEX"})


def test_the_good_file_and_every_template_parse() -> None:
    spec = parse(Path("good.toml"), GOOD, {"NIFTY"})
    assert [leg.strike_rule for leg in spec.legs] == [{"offset": "ATM"}] * 2
    for name in TEMPLATES:
        parse(Path(f"{name}.toml"), render(f"t_{name}", name), {"NIFTY"})


@pytest.mark.parametrize(
    "right, strike, rule",
    [
        ("CE", "ATM+2", {"offset": "OTM2"}),
        ("PE", "ATM+2", {"offset": "ITM2"}),
        ("CE", "ATM-1", {"offset": "ITM1"}),
        ("PE", "ATM-3", {"offset": "OTM3"}),
        ("CE", "OTM4", {"offset": "OTM4"}),
        ("PE", "ITM1", {"offset": "ITM1"}),
        ("CE", 24500, {"strike": 24500.0}),
    ],
)
def test_a_legs_strike_is_the_python_apis_selector(
    right: str, strike: str | int, rule: dict[str, object]
) -> None:
    value = f'"{strike}"' if isinstance(strike, str) else str(strike)
    text = GOOD.replace(
        'instrument = "CE"\naction = "SELL"\nstrike = "ATM"',
        f'instrument = "{right}"\naction = "SELL"\nstrike = {value}',
    )
    assert parse(Path("x.toml"), text).legs[0].strike_rule == rule


def test_line_of_follows_tables_arrays_and_inline_tables() -> None:
    text = GOOD.replace("max_loss = 3000", "max_loss = 3000\nsupertrend = { period = 1 }")
    assert line_of(text, ("exits", "supertrend", "period")) == 9
    assert line_of(text, ("legs", 1, "stop_pct")) == 21
    assert line_of(text, ("legs", 1, "lots")) == 17  # not given: its table's header
    assert line_of(text, ("nothing",)) == 1


def test_a_broken_builder_file_is_broken_for_the_loader_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good_one.toml").write_text(GOOD)
    (tmp_path / "bad_one.toml").write_text(GOOD.replace('action = "SELL"', 'action = "SEL"', 1))
    got = load(tmp_path, ["good_one", "bad_one"])
    assert [c.name for c in got.classes] == ["good_one"]
    assert "bad_one.toml:12: legs[1].action" in got.broken["bad_one"]


@pytest.mark.integration
def test_config_check_names_every_builder_files_mistakes(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """``config check`` reads every builder file, enabled or not, and exits 2 naming the
    lines; ``strategy new`` refuses a name in use and writes a file that checks."""
    d = tmp_path / "strategies"
    d.mkdir()
    env = {**tmp_env, "MT_STRATEGIES_DIR": str(d), "MT_STRATEGIES": "ok_one"}
    r = run_cli("strategy", "new", "ok_one", "--template", "iron_fly", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("strategy", "new", "ok_one", "--template", "straddle", env=env)
    assert r.returncode == 2 and "declared already" in r.stdout + r.stderr
    r = run_cli("strategy", "new", "Bad-Name", env=env)
    assert r.returncode == 2 and "not a valid name" in r.stdout + r.stderr
    r = run_cli("config", "check", env=env)
    assert r.returncode == 0 and "strategies: ok_one" in r.stdout, r.stdout + r.stderr
    (d / "draft_one.toml").write_text(GOOD.replace("max_loss = 3000", "max_loss = -1"))
    (d / "draft_two.toml").write_text(
        GOOD.replace("stop_pct = 25\n", "stop_pct = 25\nstopp = 1\n", 1)
    )
    r = run_cli("config", "check", env=env)
    assert r.returncode == 2, r.stdout
    assert f"{d / 'draft_one.toml'}:8: exits.max_loss" in r.stderr, r.stderr
    assert f"{d / 'draft_two.toml'}:15: legs[1].stopp: unknown key" in r.stderr, r.stderr


def test_a_files_summary_names_its_legs_and_exits() -> None:
    from mytrading.builder.spec import summary

    got = summary(parse(Path("x.toml"), render("x", "iron_fly")))
    assert got["legs"] == (
        "SELL 1 CE ATM weekly; SELL 1 PE ATM weekly; "
        "BUY 1 CE premium_near 15 weekly; BUY 1 PE premium_near 15 weekly"
    )
    assert got["exits"] == "max_loss 4000, max_profit 3000"
    assert (got["schedule"], got["sizing"], got["reentry"]) == (
        "any 09:30-15:10",
        "1 set(s)",
        "none",
    )
    straddle = summary(parse(Path("s.toml"), render("s", "straddle")))
    assert "stop 25 %" in straddle["legs"] and straddle["reentry"] == "1 after 120 s"
    assert "stop to cost" in straddle["exits"]
