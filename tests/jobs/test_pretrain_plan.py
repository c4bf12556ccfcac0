"""plan_pretrain: the pretrain flow's ``training`` dict laid over PRETRAIN_DEFAULTS, its backend and
``ray_train``, validated once before any work (the flow itself: tests/flows/test_pretrain_flow.py)."""

from __future__ import annotations

import pytest

from unsamv2.cli import build_parser
from unsamv2.cli.train import build_config
from unsamv2.errors import InputError
from unsamv2.jobs.train import TRAIN_BACKENDS, plan_pretrain
from unsamv2.train.config import PRETRAIN_DEFAULTS


def test_no_values_is_the_pretrain_commands_job():
    plan = plan_pretrain("runs/gt", "runs/base")
    assert plan.train == build_config(build_parser().parse_args(["pretrain", "runs/gt", "runs/base"]))
    assert plan.backend == "local" and plan.ray_train == type(plan.ray_train)()


def test_training_is_laid_over_the_pretrain_defaults():
    plan = plan_pretrain("t", "o", training={"max_steps": 7, "device": "cpu"}, ray_train={"workers": 2})
    assert (plan.train.max_steps, plan.train.device, plan.train.lr) == (7, "cpu", PRETRAIN_DEFAULTS["lr"])
    assert (plan.train.objective, plan.train.trainable) == ("sam2", "full")
    assert plan.ray_train.workers == 2
    # the defaults are only defaults: the job decides what is valid
    assert plan_pretrain("t", "o", training={"objective": "unsamv2", "trainable": "adapter",
                                             "box_prompt_prob": 0.0}).train.objective == "unsamv2"
    for backend in TRAIN_BACKENDS:
        assert plan_pretrain("t", "o", train_backend=backend).backend == backend


@pytest.mark.parametrize("values, message", [
    ({"training": {"max_steps": 0}}, "max_steps must be an integer >= 1"),
    ({"training": {"table_uri": "x"}}, "leave it out of training"),
    ({"training": {"steps": 5}}, r"unknown keys \['steps'\]"),
    ({"train_backend": "ray-job"}, "train_backend must be one of local, ray"),
    ({"ray_train": {"gpus": 1}}, r"ray_train has unknown keys \['gpus'\]"),
])
def test_a_bad_value_is_one_sentence(values, message):
    with pytest.raises(InputError, match=message):
        plan_pretrain("t", "o", **values)
