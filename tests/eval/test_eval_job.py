"""The evaluation use case has one typed job: EvalJob. Every `unsamv2 eval` flag and every
`nightly-eval` flow parameter maps to one of its fields with the same default, and a bad value is
refused once, in one sentence."""

from __future__ import annotations

import argparse
import inspect

import pytest

from unsamv2.errors import InputError
from unsamv2.eval.checkpoint import EvalJob

FIELD_DEFAULTS = {name: f.default for name, f in EvalJob.__dataclass_fields__.items()}
# flags / parameters that are not part of *how* to evaluate: the checkpoint, where reports go
NOT_JOB = {"checkpoint", "checkpoint_uri", "registry", "registry_uri", "out", "store", "report_store",
           "fail_on_regression", "func"}
CLI_NAMES = {"dataset": "datasets", "policy": "policies"}


def _cli_defaults() -> dict[str, object]:
    from unsamv2.cli import eval as cli_eval

    parser = argparse.ArgumentParser()
    cli_eval.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["eval"]
    return {CLI_NAMES.get(a.dest, a.dest): a.default for a in sub._actions
            if a.dest not in NOT_JOB and a.dest != "help"}


def _same(flag_default: object, field_default: object) -> bool:
    if flag_default in (None, [], ()) and field_default in (None, [], (), ("oracle", "g=1")):
        return True  # an empty repeatable flag / list parameter means the field's default
    return flag_default == field_default


def test_every_cli_flag_is_a_job_field_with_the_same_default():
    for name, default in _cli_defaults().items():
        assert name in FIELD_DEFAULTS, f"unsamv2 eval --{name} is not an EvalJob field"
        assert _same(default, FIELD_DEFAULTS[name]), (name, default, FIELD_DEFAULTS[name])


@pytest.mark.integration
def test_every_flow_parameter_is_a_job_field_with_the_same_default():
    from flows.nightly_eval import nightly_eval  # imports prefect

    params = inspect.signature(nightly_eval.fn).parameters
    for name, param in params.items():
        if name in NOT_JOB:
            continue
        assert name in FIELD_DEFAULTS, f"nightly-eval parameter {name} is not an EvalJob field"
        assert _same(param.default, FIELD_DEFAULTS[name]), (name, param.default, FIELD_DEFAULTS[name])


def test_prefect_yaml_parameters_are_job_fields():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    nightly = [d for d in spec["deployments"] if d["entrypoint"] == "flows/nightly_eval.py:nightly_eval"]
    assert nightly
    for deployment in nightly:
        for name in deployment.get("parameters") or {}:
            assert name in NOT_JOB or name in FIELD_DEFAULTS, (deployment["name"], name)


def test_bad_values_are_refused_once_in_one_sentence():
    for kwargs, fragment in [({"points_per_side": 0}, "points_per_side"), ({"max_clicks": 0}, "max_clicks"),
                             ({"scenes": "scenes:x"}, "scenes"), ({"policies": ("g=7",)}, "unknown policy"),
                             ({"device": "tpu"}, "device"), ({"gpus": -1.0}, "gpus")]:
        with pytest.raises(InputError, match=fragment):
            EvalJob(**kwargs)
    assert EvalJob(scenes="none").scenes is None and EvalJob(policies=()).policies == ("oracle", "g=1")


def test_options_are_what_evaluate_checkpoint_takes():
    from unsamv2.eval.checkpoint import evaluate_checkpoint

    accepted = set(inspect.signature(evaluate_checkpoint).parameters)
    options = EvalJob(gpus=1.0).options()
    assert set(options) <= accepted and options["device"] == "cuda"  # a GPU task, cpu left as default
