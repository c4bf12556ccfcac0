"""unsamv2.jobs.fields: command-line flags derived from a job's fields (name, type, choices,
default), and the values handed back to the job, which validates them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

import pytest

from unsamv2.errors import InputError
from unsamv2.jobs.fields import Flag, add_flags, defaults, flag_name, given, known


@dataclass(frozen=True)
class Job:
    path: str
    shard_size: int = 256
    rate: float | None = None
    mode: Literal["local", "ray"] = "local"
    fast: bool = False
    check: bool = True
    tags: tuple[str, ...] = ("a", "b")


FLAGS = (Flag("shard_size", "images per shard", aliases=("--shards",)), Flag("rate", "a rate"),
         Flag("mode", "where"), Flag("fast", "go fast"), Flag("check", "skip the check"),
         Flag("tags", "a tag (repeatable)", repeat="tag"))


def _parser(**options) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_flags(parser, Job, FLAGS, **options)
    return parser


def test_names_types_choices_and_defaults_come_from_the_fields():
    assert [flag_name(Job, f) for f in FLAGS] == ["--shard-size", "--rate", "--mode", "--fast", "--no-check", "--tag"]
    args = _parser().parse_args([])
    assert (args.shard_size, args.rate, args.mode, args.fast, args.check, args.tags) == (256, None, "local", False,
                                                                                       True, None)
    assert given(args, FLAGS) == {"shard_size": 256, "mode": "local", "fast": False, "check": True}
    args = _parser().parse_args(["--shards", "8", "--rate", "0.5", "--mode", "ray", "--fast", "--no-check",
                                 "--tag", "x", "--tag", "y"])
    assert given(args, FLAGS) == {"shard_size": 8, "rate": 0.5, "mode": "ray", "fast": True, "check": False,
                                  "tags": ("x", "y")}
    with pytest.raises(SystemExit):
        _parser().parse_args(["--mode", "spark"])  # the Literal's values are the choices
    with pytest.raises(SystemExit):
        _parser().parse_args(["--shard-size", "many"])  # the field's type


def test_unset_mode_leaves_out_what_was_not_given_and_the_help_shows_the_defaults():
    parser = _parser(overrides={"shard_size": 64}, unset=True)
    assert given(parser.parse_args([]), FLAGS) == {}
    assert given(parser.parse_args(["--no-check", "--shard-size", "2"]), FLAGS) == {"check": False, "shard_size": 2}
    text = parser.format_help()
    assert "images per shard (default: 64)" in text and "a tag (repeatable) (default: a, b)" in text


def test_fields_that_have_no_flag_are_refused_when_the_parser_is_built():
    with pytest.raises(TypeError, match="no field 'size'"):
        add_flags(argparse.ArgumentParser(), Job, [Flag("size", "?")])
    with pytest.raises(TypeError, match="tuple"):
        add_flags(argparse.ArgumentParser(), Job, [Flag("rate", "?", repeat="rate")])


def test_defaults_and_known_keys():
    assert defaults(Job)["tags"] == ("a", "b") and "path" not in defaults(Job)
    assert known(Job, {"path": "x", "fast": True}, "the job") == {"path": "x", "fast": True}
    with pytest.raises(InputError, match=r"the job has unknown keys \['speed'\]"):
        known(Job, {"speed": 1}, "the job")


def test_the_mine_command_builds_one_mine_job_with_its_miner():
    from unsamv2.cli import build_parser
    from unsamv2.cli.mine import build_job
    from unsamv2.jobs.mine import MineJob

    args = build_parser().parse_args(["mine", "in", "out", "--features", "dinov2", "--backbone-weights", "w.pth",
                                      "--actors", "3"])
    job = build_job(args)
    assert (job.actors, job.shard_size, job.miner.backbone, job.miner.backbone_weights) == (3, 256, "dinov2", "w.pth")
    with pytest.raises(InputError, match="unknown mining parameters \\['features'\\]"):
        MineJob.from_values({"input_uri": "in", "output_uri": "out", "features": "dinov2"})
    assert MineJob.from_values({"input_uri": "in", "output_uri": "out", "miner_kind": "noop",
                                "backbone": "dinov2"}).miner is None  # a noop run has no miner
