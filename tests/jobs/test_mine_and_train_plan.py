"""plan_mine_and_train: the mine-and-train flow's nested parameters become typed jobs, validated
once before any work, with the few values that follow from the others."""

from __future__ import annotations

import pytest

from unsamv2.errors import InputError
from unsamv2.jobs.mine_and_train import plan_mine_and_train


def _plan(**kwargs):
    return plan_mine_and_train("in", "runs/mt", **kwargs)


def test_the_jobs_and_where_everything_goes():
    plan = _plan(mining={"shard_size": 8, "backend": "ray", "ray_address": "auto", "backbone": "descriptor",
                         "val_fraction": 0.2},
                 training={"max_steps": 5, "lr": 1e-3, "min_lr": 1e-4}, evaluation={"max_clicks": 3})
    assert (plan.table_uri, plan.train_uri, plan.report_uri, plan.summary_uri) == (
        "runs/mt/mask_table", "runs/mt/train", "runs/mt/report", "runs/mt/summary.md")
    assert (plan.mine_job.input_uri, plan.mine_job.output_uri, plan.mine_job.shard_size) == ("in", "runs/mt/mask_table", 8)
    assert plan.mine_job.miner.backbone == "descriptor" and plan.val_fraction == 0.2
    assert (plan.train.table_uri, plan.train.output_uri, plan.train.max_steps) == ("runs/mt/mask_table", "runs/mt/train", 5)
    assert plan.train.resolved_split_uri == "runs/mt/mask_table/stats"
    assert plan.ray_train.ray_address == "auto"  # Ray Train joins the mining's cluster
    assert (plan.evaluation.max_clicks, plan.evaluation.ray_address, plan.evaluation.device) == (3, None, "auto")


def test_values_that_follow_from_others_unless_given():
    assert _plan(training={"model_config": "tiny"}).train.trainable == "full"  # random weights: train all
    assert _plan().train.trainable == "adapter"
    assert _plan(training={"model_config": "tiny", "trainable": "adapter"}).train.trainable == "adapter"
    gpu = _plan(mining={"ray_address": "auto"}, evaluation={"gpus": 1.0}).evaluation
    assert (gpu.ray_address, gpu.device) == ("auto", "cuda")
    assert _plan(evaluation={"gpus": 1.0}).evaluation.ray_address == "local"
    assert _plan(training={"device": "cpu"}).evaluation.device == "cpu"
    assert _plan(training={"device": "cpu"}, evaluation={"device": "auto"}).evaluation.device == "auto"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mining": {"features": "dinov2"}}, r"unknown mining parameters \['features'\]"),
    ({"mining": {"statistics": False}}, r"unknown mining parameters \['statistics'\]"),
    ({"mining": {"val_fraction": 1.0}}, r"val_fraction must lie in \[0, 1\)"),
    ({"mining": {"shard_size": 0}}, "shard_size must be at least 1"),
    ({"training": {"steps": 5}}, r"TrainConfig has unknown keys \['steps'\]"),
    ({"training": {"output_uri": "elsewhere"}}, "training.output_uri is set by the flow"),
    ({"training": {"max_steps": 0}}, "max_steps must be an integer >= 1"),
    ({"evaluation": {"eval_scenes": "scenes:1:1:64"}}, r"evaluation has unknown keys \['eval_scenes'\]"),
    ({"evaluation": {"max_clicks": 0}}, "max_clicks must lie in"),
    ({"ray_train": {"workers": 0}}, "workers must be at least 1"),
    ({"train_backend": "slurm"}, "train_backend must be one of local, ray, ray-job"),
    ({"train_backend": "ray-job"}, "needs job_address"),
])
def test_a_bad_value_is_one_sentence(kwargs, message):
    with pytest.raises(InputError, match=message):
        _plan(**kwargs)
