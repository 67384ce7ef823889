"""Fuzzing the INI loader: any text is a Config or a ConfigError, never a crash.

``ini.parse`` never raises (every oddity is a Problem); ``config.parse`` and
``config.load`` answer a Config or raise ConfigError, whose problems each
name a place in the file.  A reload (SIGHUP) runs this code on whatever the
user saved, so nothing else may escape.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd import config, ini
from whitegoodsd.commands import check


def attempt(load: Callable[[], config.Config]) -> config.Config | config.ConfigError:
    """The Config ``load()`` returns, or the ConfigError it raises (anything else escapes)."""
    try:
        return load()
    except config.ConfigError as exc:
        return exc


KEYS = [*config.GLOBAL_KEYS, *config.APPLIANCE_KEYS, "smartplug ", "Threshold_Running_MW", "x"]
NAMES = ["whitegoodsd", "WhiteGoodsD", "WASHER", "washer", "DRYER", "", " ", "a]b"]

# Values near the edges of what the keys accept.
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "", "0", "1", "-1", "4000", "1.5", "1e400", "nan", "inf", "-0", "²", "٣",
            "99999999999999999999999", "WASHER", "WASHER, DRYER", ",", "WASHER,WASHER",
            "10.0.0.1", "10.0.0.1:9999", "[::1]:80", "[::1", "[]", "::1", "host:0",
            "host:65536", "host:", ":80", "/dev/log", "local5", "LOG_LOCAL0", "kasa",
            "KASA", "inplug", "nosuch", "%(x)s", "1 ; comment", "2 # comment", "a;b",
        ]
    ),
)  # fmt: skip
lines = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS), values),
    st.builds(lambda n: f"[{n}]", st.sampled_from(NAMES)),
    st.sampled_from(["", "; comment", "# comment", "[", "]", "=", "novalue", "\ufeff", "\x00"]),
    st.text(max_size=40),
)
texts = st.one_of(
    st.text(max_size=500),
    st.lists(lines, max_size=40).map("\n".join),
    # A mostly valid file with one or two things wrong.
    st.lists(lines, max_size=8).map(
        lambda extra: "\n".join(
            [
                "[whitegoodsd]",
                "appliances = WASHER, DRYER",
                "[WASHER]",
                "smartplug = 10.0.0.1",
                "threshold_running_mw = 4000",
                "minsamples = 3",
                "[DRYER]",
                "smartplug = 10.0.0.2:9999",
                "threshold_running_mw = 2000",
                "minsamples = 2",
                *extra,
            ]
        )
    ),
)


@given(texts)
def test_ini_parse_never_raises(text: str) -> None:
    doc = ini.parse(text, "fuzz.ini")
    for problem in [*doc.problems, *doc.warnings]:
        assert str(problem).startswith("fuzz.ini:")


@given(texts)
def test_config_parse_answers_a_config_or_raises_config_error(text: str) -> None:
    loaded = attempt(lambda: config.parse(text, "fuzz.ini"))
    if isinstance(loaded, config.ConfigError):
        assert loaded.problems
        for problem in loaded.problems:
            assert str(problem).startswith("fuzz.ini:")
            assert "\n" not in problem.message
        return
    # A loaded file watches something, or says that it watches nothing.
    idle = [w for w in loaded.warnings if w.key and w.key.lower() == "appliances"]
    assert loaded.appliances or any("names no appliance" in w.message for w in idle)
    for appliance in loaded.appliances:
        assert appliance.settings.threshold_finished_mw <= appliance.settings.threshold_running_mw
        assert appliance.settings.minsamples >= 1 and appliance.settings.minsamples_finished >= 1
    assert check.summary(loaded)


@given(st.binary(max_size=400) | texts.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_config_load_of_any_bytes(data: bytes) -> None:
    handle, path = tempfile.mkstemp(suffix=".ini")
    try:
        os.write(handle, data)
        os.close(handle)
        loaded = attempt(lambda: config.load(path))
        assert isinstance(loaded, config.Config) or loaded.problems
    finally:
        os.unlink(path)
