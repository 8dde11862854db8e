"""Every invalid spec is reported with file, line, column, key path and what would be valid."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rewardkit.errors import SpecError
from rewardkit.spec import load_spec

GOOD_REWARDS = """\
rewards:
  - name: correct
    verifier: exact_match
"""


def _load(tmp_path: Path, text: str, name: str = "spec.yaml") -> SpecError:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value


def _one(tmp_path: Path, text: str) -> str:
    error = _load(tmp_path, text)
    assert len(error.issues) == 1, str(error)
    return str(error.issues[0])


def test_malformed_yaml(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards: [\n  {name: a\n")
    assert msg.startswith(f"{tmp_path / 'spec.yaml'}:")
    assert "invalid YAML" in msg and ":5:1:" in msg


def test_tab_indented_file(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n\t- name: a\n")
    assert ":4:1:" in msg and "tab" in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewardz: []\n" + GOOD_REWARDS)
    assert ":3:1: rewardz: unknown key 'rewardz'; did you mean 'rewards'?" in msg
    assert "valid keys: version, name" in msg


def test_unknown_verifier_suggests(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_mtch\n")
    assert ":5:15: rewards[0].verifier: unknown verifier 'exact_mtch'; did you mean 'exact_match'?" in msg


def test_unknown_arg_suggests(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "    args:\n      refrence: gold\n")
    assert ":7:7: rewards[0].args.refrence: unknown key 'refrence'; did you mean 'reference'?" in msg


def test_mistyped_arg(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "    args: {case_sensitive: maybe}\n")
    assert "rewards[0].args.case_sensitive" in msg and "valid boolean" in msg and "'maybe'" in msg


def test_reference_field_not_a_string(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "    args: {reference: 42}\n")
    assert ":6:23: rewards[0].args.reference: Input should be a valid string (got 42)" in msg


def test_duplicate_reward_names(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "  - name: a\n    verifier: exact_match\n")
    assert ":6:11: rewards[1].name: duplicate reward name 'a' (first used on line 4)" in msg


def test_gate_naming_unknown_reward(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: correct\n    verifier: exact_match\n"
               "  - name: b\n    verifier: exact_match\n    when: corect >= 1\n")
    assert ":8:11: rewards[1].when: gate names unknown reward 'corect'; did you mean 'correct'?" in msg


def test_gate_cycle(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n"
               "  - name: a\n    verifier: exact_match\n    when: c > 0\n"
               "  - name: b\n    verifier: exact_match\n    when: a > 0\n"
               "  - name: c\n    verifier: exact_match\n    when: b > 0\n")
    assert "gates form a cycle: a -> c -> b -> a" in msg and "when" in msg


def test_gate_self_reference_is_a_cycle(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n    when: a > 0\n")
    assert "gates form a cycle: a -> a" in msg


def test_gate_syntax_error(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "  - name: b\n    verifier: exact_match\n    when: a = 1\n")
    assert ":8:11: rewards[1].when: gate syntax error: unexpected character '=' (use == for equality) at column 3" in msg


def test_gate_rejects_python(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n"
               "  - name: b\n    verifier: exact_match\n    when: __import__('os')\n")
    assert "gate syntax error" in msg


@pytest.mark.parametrize("weight, expected", [("-1", "greater than or equal to 0"), ("heavy", "valid number"),
                                              (".nan", "finite")])
def test_bad_weight(tmp_path: Path, weight: str, expected: str) -> None:
    msg = _one(tmp_path, f"version: 1\nname: x\nrewards:\n  - name: a\n    verifier: exact_match\n    weight: {weight}\n")
    assert ":6:13: rewards[0].weight:" in msg and expected in msg


def test_empty_rewards(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards: []\n")
    assert ":3:10: rewards: List should have at least 1 item" in msg


def test_unsupported_version(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 7\nname: x\n" + GOOD_REWARDS)
    assert ":1:10: version: unsupported spec version 7; this rewardkit reads version(s) 1" in msg


def test_empty_file(tmp_path: Path) -> None:
    msg = _one(tmp_path, "# nothing here\n")
    assert "the spec is empty" in msg and ":1:1:" in msg


def test_file_that_is_a_list(tmp_path: Path) -> None:
    msg = _one(tmp_path, "- version: 1\n- name: x\n")
    assert "the spec is a list; expected a mapping" in msg


def test_missing_required_keys(tmp_path: Path) -> None:
    error = _load(tmp_path, "name: x\n")
    text = str(error)
    assert "missing required key 'version'" in text and "missing required key 'rewards'" in text


def test_bad_advantage_method_suggests(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\n" + GOOD_REWARDS + "advantage: {method: gdp}\n")
    assert "advantage.method" in msg and "did you mean 'gdpo'?" in msg


def test_bad_reward_name_is_not_an_identifier(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nrewards:\n  - name: my reward\n    verifier: exact_match\n")
    assert "rewards[0].name" in msg and "pattern" in msg


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    msg = _one(tmp_path, "version: 1\nname: x\nname: y\n" + GOOD_REWARDS)
    assert ":3:1:" in msg and "duplicate key 'name' (first defined on line 2)" in msg


def test_several_errors_all_reported_in_file_order(tmp_path: Path) -> None:
    error = _load(tmp_path, """\
        version: 2
        name: demo
        rewards:
          - name: correct
            verifier: exact_mtch
            weight: -1
          - name: correct
            verifier: exact_match
            args: {reference: 5, extrat: tag}
            when: corect >= 1
        advantage: {method: gdp}
        """)
    lines = [issue.position.line for issue in error.issues if issue.position]
    assert len(error.issues) == 8
    assert lines == sorted(lines)
    assert str(error).startswith(f"{tmp_path / 'spec.yaml'}: 8 problems")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.yaml")


def test_builtin_that_cannot_be_imported_blames_the_installation(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardkit import registry

    monkeypatch.setitem(registry.BUILTINS, "exact_match", "rewardkit.verifiers.not_there:ExactMatch")
    with pytest.raises(registry.UnknownVerifier, match="is incomplete.*core.symlinks true"):
        registry.resolve("exact_match")
