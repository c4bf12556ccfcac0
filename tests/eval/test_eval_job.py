"""The evaluation use case has one typed job: EvalJob. A bad value is refused once, in one
sentence (that every `unsamv2 eval` flag, `nightly-eval` parameter and `prefect.yaml` parameter is
one of its fields with the same default: tests/jobs/test_job_mapping.py)."""

from __future__ import annotations

import inspect

import pytest

from unsamv2.errors import InputError
from unsamv2.eval.checkpoint import EvalJob


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
