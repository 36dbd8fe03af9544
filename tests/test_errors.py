"""What a user sees when a stage cannot start: one line naming the problem and the fix."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir

from scalelab.config import composition_error_line, one_line_composition_errors
from tests.conftest import ROOT

EXPERIMENTS = sorted(path.stem for path in (ROOT / "conf" / "experiment").glob("*.yaml"))


def compose_error(override: str) -> Exception:
    """The exception Hydra raises composing conf/ with one command-line override."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        try:
            compose("config", overrides=[override])
        except Exception as err:
            return err
    raise AssertionError(f"{override} composed")


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("model=transformer", "model=transformer is invalid: use one of cnn, gpt, mlp"),
        ("experiment=fashion", f"experiment=fashion is invalid: use one of {', '.join(EXPERIMENTS)}"),
        ("trainer.max_epoch=3", "trainer.max_epoch is not a setting: did you mean trainer.max_epochs?"),
        ("seed=x", "seed='x' is invalid: Value 'x' of type 'str' could not be converted to Integer"),
        (
            "trainer.max_epochs=null",
            "trainer.max_epochs=None is invalid: field 'trainer.max_epochs' is not Optional",
        ),
        (
            "model.size=[",
            "cannot read the override 'model.size=[' (no viable alternative at input '['): see "
            "https://hydra.cc/docs/advanced/override_grammar/basic",
        ),
        ("model.size=xs,s", "Ambiguous value for argument 'model.size=xs,s'; 1. To use it as a list,"),
    ],
)
def test_composition_errors_read_as_one_line_with_the_fix(override: str, line: str) -> None:
    message = composition_error_line(compose_error(override))
    assert message.startswith(line)
    assert "\n" not in message


def test_hydras_report_is_replaced_by_one_line_and_status_2(capsys: pytest.CaptureFixture) -> None:
    @one_line_composition_errors
    def main() -> None:
        raise compose_error("model=transformer")

    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    expected = "scalelab: error: model=transformer is invalid: use one of cnn, gpt, mlp\n"
    assert capsys.readouterr().err == expected
    assert "HYDRA_FULL_ERROR" not in os.environ, "the switch is the call's, not the process's"


def test_a_user_who_asked_for_hydras_full_error_gets_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    err = compose_error("model=transformer")

    @one_line_composition_errors
    def main() -> None:
        raise err

    with pytest.raises(type(err)):
        main()
