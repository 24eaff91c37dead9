"""The command line and :mod:`epimpute.api` use one name per setting: every option of a
subcommand is a keyword of the API function it calls, spelled the same way."""

import argparse
import inspect

import pytest

from epimpute import api
from epimpute.cli import build_parser
from epimpute.demo import run_demo

FUNCTIONS = {
    "ingest": api.ingest,
    "train": api.train,
    "extend": api.extend,
    "impute": api.impute,
    "evaluate": api.evaluate,
    "factors": api.factors,
    "variants": api.variants,
    "synth-sequence": api.synth_sequence,
    "synth": api.synth,
    "export": api.export,
    "downstream": api.downstream,
    "demo": run_demo,
    "replicates": api.replicates,
    "differential": api.differential,
    "compare": api.compare,
    "suggest": api.suggest,
}

# The deliberate exceptions: options whose value the command line turns into another form.
RENAMED = {
    ("evaluate", "pred"): "predictions",  # repeated NAME=DIR -> {name: folder}
    ("evaluate", "no_plots"): "plots",  # a negated flag: plots = not no_plots
}
# Top-level options, passed to every subcommand's function that has the keyword.
TOP_LEVEL = {"quiet": "progress"}  # progress = not quiet
WITHOUT_PROGRESS = {"factors"}  # writes one file quickly; no progress bar to switch off


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if a.dest not in ("help", "version", "command") and a.dest != argparse.SUPPRESS
            and not isinstance(a, argparse._SubParsersAction)]


def test_every_subcommand_has_its_api_function():
    assert set(_subcommands(build_parser())) == set(FUNCTIONS)


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_each_option_is_an_api_keyword_of_the_same_name(command):
    parameters = inspect.signature(FUNCTIONS[command]).parameters
    for action in _options(_subcommands(build_parser())[command]):
        keyword = RENAMED.get((command, action.dest), action.dest)
        assert keyword in parameters, (
            f"epimpute {command}: option {action.dest!r} has no api keyword {keyword!r}")


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_top_level_options_map_to_api_keywords(command):
    parameters = inspect.signature(FUNCTIONS[command]).parameters
    top = {a.dest for a in _options(build_parser())}
    assert top == set(TOP_LEVEL)
    for keyword in TOP_LEVEL.values():
        assert (keyword in parameters) == (command not in WITHOUT_PROGRESS)


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_option_flags_are_spelled_like_their_keyword(command):
    for action in _options(_subcommands(build_parser())[command]):
        if not action.option_strings:
            continue  # a positional argument: its dest is its name
        flag = max(action.option_strings, key=len).removeprefix("--").replace("-", "_")
        repeated = isinstance(action, argparse._AppendAction) and action.dest == flag + "s"
        assert flag == action.dest or repeated, (
            f"epimpute {command}: --{flag} stores into {action.dest!r}")


def test_no_renamed_option_is_stale():
    for command, dest in RENAMED:
        dests = {a.dest for a in _options(_subcommands(build_parser())[command])}
        assert dest in dests, f"epimpute {command} has no option {dest!r} any more"


@pytest.mark.parametrize("command", ["impute", "evaluate"])
def test_target_is_repeatable_in_impute_and_evaluate(command):
    required = {"impute": ["impute", "model", "store", "--out", "o"],
                "evaluate": ["evaluate", "--truth", "t", "--pred", "m=p", "--out", "o"]}
    args = build_parser().parse_args(
        required[command] + ["--target", "c1:H3K4me3", "--target", "c2:H3K27ac"])
    assert args.targets == ["c1:H3K4me3", "c2:H3K27ac"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(required[command] + ["--targets", "c1:H3K4me3"])
