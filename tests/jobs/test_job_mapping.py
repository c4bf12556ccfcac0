"""One job per use case, said the same way everywhere: every flag of ``unsamv2 mine / train /
pretrain / eval``, every parameter of the ``mine``, ``mine-and-train``, ``pretrain`` and
``nightly-eval`` flows and every ``prefect.yaml`` parameter is a field of the use case's job with
the same name and the same default (for pretraining: PRETRAIN_DEFAULTS over TrainConfig's). The exceptions are listed in ``EXCEPTIONS`` with their reason. The README's layout table
names, per use case, the job, the entry point, the command and the flow that this file checks.

The checks return a list of problems; ``test_the_checks_catch_drift`` feeds them drifted surfaces
(a renamed flag, a changed default, an unknown deployment key) to show that they fail."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.eval.checkpoint import EvalJob
from unsamv2.jobs.fields import defaults
from unsamv2.jobs.mine import MineJob
from unsamv2.mining.config import MinerConfig
from unsamv2.train.config import PRETRAIN_DEFAULTS, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
EMPTY = inspect.Parameter.empty
# Each command's jobs (the classes whose fields its flags are) and the defaults that are its own.
COMMANDS: dict[str, tuple[tuple[type, ...], dict[str, Any]]] = {
    "mine": ((MineJob, MinerConfig), {}),
    "train": ((TrainConfig, RayTrainOptions), {}),
    "pretrain": ((TrainConfig, RayTrainOptions), PRETRAIN_DEFAULTS),
    "eval": ((EvalJob,), {}),
}
# TrainConfig flags default to "not given" (None): flags override --config-file values, which
# override the command's defaults; test_each_command_builds_its_job_with_the_jobs_defaults checks
# what they add up to.
UNSET = {("train", TrainConfig), ("pretrain", TrainConfig)}
# A tuple field is a repeatable flag named in the singular, given once per value.
REPEATED = {"datasets": "--dataset", "policies": "--policy"}
STATS = {"statistics": True, "val_fraction": inspect.signature(
    importlib.import_module("unsamv2.data.stats").compute_stats).parameters["val_fraction"].default}
EXCEPTIONS: dict[str, dict[str, str]] = {
    "train": {"config_file": "a JSON TrainConfig: values, not one setting",
              "no_augment": "augment.enabled=false: a field of the nested AugmentConfig",
              "resume": "run_train's argument: continue from the latest checkpoint",
              "backend": "run_train's argument: where the job runs"},
    "eval": {"checkpoint": "what to evaluate", "registry": "what to evaluate: the registry's newest checkpoint",
             "out": "where the report goes", "fail_on_regression": "what the command does with the verdict"},
    "flow:mine": {"statistics": "the statistics step's, not the mining job's (default: compute them)",
                  "val_fraction": "compute_stats' argument, with its default"},
    "flow:nightly-eval": {"report_store": "the job's history_uri and the root of the run's report folders",
                          "checkpoint_uri": "what to evaluate", "registry_uri": "what to evaluate",
                          "fail_on_regression": "what the flow does with the verdict"},
    "flow:mine-and-train": {"input_uri": "the images; the jobs' URIs are under output_uri",
                            "output_uri": "the run's root: mask_table/, train/, report/",
                            "train_backend": "run_train's backends plus ray-job (the flow submits a Ray Job)",
                            "job_address": "the ray-job backend's job server"},
    "flow:pretrain": {"train_backend": "run_train's argument: where the job runs"},
}
EXCEPTIONS["pretrain"] = EXCEPTIONS["train"]
RUN_TRAIN = inspect.signature(importlib.import_module("unsamv2.jobs.train").run_train).parameters
CLI_FUNCTION_DEFAULTS = {"resume": RUN_TRAIN["resume"].default, "backend": RUN_TRAIN["backend"].default}
# The defaults of flow parameters that are not job fields (the other exceptions are required).
OTHER_DEFAULTS = {**STATS, "train_backend": RUN_TRAIN["backend"].default, "job_address": None,
                  "checkpoint_uri": None, "registry_uri": None, "fail_on_regression": True}


def _names(*classes: type) -> set[str]:
    return {f.name for cls in classes for f in dataclasses.fields(cls)} - {"miner"}


def _same(a: Any, b: Any) -> bool:
    norm = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)  # noqa: E731 - lists in YAML/signatures
    return norm(a) == norm(b)


def _owner(name: str, classes: tuple[type, ...]) -> type | None:
    owners = [cls for cls in classes if name in _names(cls)]
    return owners[0] if len(owners) == 1 else None


def _expected_flag(name: str, default: Any) -> str:
    if name in REPEATED:
        return REPEATED[name]
    return ("--no-" if default is True else "--") + name.replace("_", "-")


def _subparser(command: str) -> argparse.ArgumentParser:
    from unsamv2.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def check_command(command: str, parser: argparse.ArgumentParser) -> list[str]:
    """Problems of one command's flags: not a job field, another name, another default."""
    classes, overrides = COMMANDS[command]
    problems = []
    for action in parser._actions:
        name = action.dest
        if name == "help" or name in EXCEPTIONS.get(command, {}):
            if name in CLI_FUNCTION_DEFAULTS and action.default != CLI_FUNCTION_DEFAULTS[name]:
                problems.append(f"{command} --{name}: default {action.default!r}, run_train's is "
                                f"{CLI_FUNCTION_DEFAULTS[name]!r}")
            continue
        cls = _owner(name, classes)
        if cls is None:
            problems.append(f"unsamv2 {command}: {name} is not a field of {[c.__name__ for c in classes]}")
            continue
        field_default = defaults(cls).get(name, EMPTY)
        default = overrides.get(name, field_default)
        if action.option_strings and action.option_strings[0] != _expected_flag(name, field_default):
            problems.append(f"unsamv2 {command}: {action.option_strings[0]} names the field {name}")
        if isinstance(action, argparse._StoreConstAction) and action.const != (not field_default):
            problems.append(f"unsamv2 {command} {action.option_strings[0]}: sets {action.const!r}")
        unset = (command, cls) in UNSET or name in REPEATED or not action.option_strings
        if unset and action.default is not None:
            problems.append(f"unsamv2 {command} {name}: default {action.default!r}, expected None (the job's)")
        elif not unset and not _same(action.default, default):
            problems.append(f"unsamv2 {command} {name}: default {action.default!r}, the job's is {default!r}")
    return problems


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_is_a_job_field_with_the_same_name_and_default(command):
    assert check_command(command, _subparser(command)) == []


def test_each_command_builds_its_job_with_the_jobs_defaults():
    from unsamv2.cli import build_parser
    from unsamv2.cli import eval as cli_eval
    from unsamv2.cli import mine as cli_mine
    from unsamv2.cli import train as cli_train

    parse = build_parser().parse_args
    assert cli_mine.build_job(parse(["mine", "in", "out"])) == MineJob("in", "out")
    assert cli_eval.build_job(parse(["eval", "--out", "r"])) == EvalJob()
    args = parse(["train", "t", "o"])
    assert cli_train.build_config(args) == TrainConfig("t", "o")
    options = cli_train.build_ray_options(args)
    assert options == type(options)()  # RayTrainOptions' defaults
    pretrain = cli_train.build_config(parse(["pretrain", "t", "o"]))
    assert pretrain == TrainConfig.from_dict({**PRETRAIN_DEFAULTS, "table_uri": "t", "output_uri": "o"})


# ------------------------------------------------------------------------------ flows and prefect.yaml
def _flag_fields(command: str) -> set[str]:
    return {a.dest for a in _subparser(command)._actions} - {"help"} - set(EXCEPTIONS.get(command, {}))


# The parameters each flow must have (the integration test below compares them with its signature).
FLOW_PARAMETERS = {
    "mine": _flag_fields("mine") | set(STATS),
    "nightly-eval": (_flag_fields("eval") - {"history_uri"}) | set(EXCEPTIONS["flow:nightly-eval"]),
    "mine-and-train": {"mining", "training", "evaluation", "ray_train"} | set(EXCEPTIONS["flow:mine-and-train"]),
    "pretrain": {"table_uri", "output_uri", "training", "ray_train"} | set(EXCEPTIONS["flow:pretrain"]),
}
# mine-and-train's dicts: their keys and the jobs those are fields of.
NESTED = {
    "mining": (FLOW_PARAMETERS["mine"] - {"input_uri", "output_uri", "statistics"}, (MineJob, MinerConfig)),
    "training": (_names(TrainConfig) - {"table_uri", "output_uri"}, (TrainConfig,)),
    "evaluation": (_names(EvalJob), (EvalJob,)),
    "ray_train": (_names(RayTrainOptions), (RayTrainOptions,)),
}
FLOW_JOBS = {"mine": (MineJob, MinerConfig), "nightly-eval": (EvalJob,), "mine-and-train": (),
             "pretrain": (TrainConfig,)}
# The defaults a flow's dict is laid over where they are not its jobs' own.
NESTED_DEFAULTS = {("pretrain", "training"): PRETRAIN_DEFAULTS}


def _default_of(name: str, classes: tuple[type, ...]) -> Any:
    if name in OTHER_DEFAULTS:
        return OTHER_DEFAULTS[name]
    cls = _owner(name, classes)
    return defaults(cls).get(name, EMPTY) if cls else EMPTY


def check_flow(flow_name: str, parameters: dict[str, Any]) -> list[str]:
    """Problems of one flow's signature (``{name: default}``, EMPTY for required)."""
    problems = [f"flow {flow_name}: parameters {sorted(set(parameters) ^ FLOW_PARAMETERS[flow_name])} differ "
                "from its jobs'"] if set(parameters) != FLOW_PARAMETERS[flow_name] else []
    for name, default in parameters.items():
        if name in NESTED and default is not None:
            problems.append(f"flow {flow_name}: {name} defaults to {default!r}, not None (every job default)")
        elif name not in NESTED and not _same(default, _default_of(name, FLOW_JOBS[flow_name])):
            problems.append(f"flow {flow_name}: {name} defaults to {default!r}, the job's is "
                            f"{_default_of(name, FLOW_JOBS[flow_name])!r}")
    return problems


def _flow_names() -> dict[str, str]:
    """entrypoint -> Prefect flow name, read from the flows' sources (no prefect import)."""
    out = {}
    for path in (ROOT / "flows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    names = [k.value.value for k in getattr(deco, "keywords", []) if k.arg == "name"]
                    if names:
                        out[f"flows/{path.name}:{node.name}"] = names[0]
    return out


def check_deployment(flow_name: str, name: str, parameters: dict[str, Any]) -> list[str]:
    """Problems of one deployment's parameters: unknown names (top level and in mine-and-train's
    dicts) and values that only repeat a job's default."""
    problems, jobs = [], FLOW_JOBS[flow_name]
    for key, value in parameters.items():
        if key not in FLOW_PARAMETERS[flow_name]:
            problems.append(f"{flow_name}/{name}: {key} is not a parameter of the flow")
        elif key in NESTED:
            keys, classes = NESTED[key]
            problems += [f"{flow_name}/{name}: {key}.{k} is not a field of {[c.__name__ for c in classes]}"
                         for k in sorted(set(value) - keys)]
            overrides = NESTED_DEFAULTS.get((flow_name, key), {})
            problems += [f"{flow_name}/{name}: {key}.{k}: {v!r} repeats the job's default"
                         for k, v in value.items()
                         if k in keys and _same(v, overrides.get(k, _default_of(k, classes)))]
        elif _same(value, _default_of(key, jobs)):
            problems.append(f"{flow_name}/{name}: {key}: {value!r} repeats the job's default")
    return problems


def _deployments() -> list[tuple[str, str, dict[str, Any]]]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    flows = _flow_names()
    return [(flows[d["entrypoint"]], d["name"], d.get("parameters") or {}) for d in spec["deployments"]]


def test_every_deployment_parameter_is_a_job_field_and_only_sets_what_differs():
    assert {flow for flow, _, _ in _deployments()} == set(FLOW_PARAMETERS)
    assert [p for flow, name, params in _deployments() for p in check_deployment(flow, name, params)] == []


# Values a deployment leaves to each run (its description says so).
RUN_TIME = {"backbone_weights": "/w.pth", "base_checkpoint": "/b.pt"}


def test_every_deployment_builds_valid_jobs():
    from unsamv2.jobs.mine_and_train import plan_mine_and_train
    from unsamv2.jobs.train import plan_pretrain

    for flow, _, params in _deployments():
        if flow == "mine":
            values = {"input_uri": "/in", "output_uri": "/out", **params}
            if values.get("backbone", "descriptor") != "descriptor":
                values["backbone_weights"] = RUN_TIME["backbone_weights"]
            MineJob.from_values({k: v for k, v in values.items() if k not in STATS})
        elif flow == "nightly-eval":
            EvalJob(**{k: v for k, v in params.items() if k not in EXCEPTIONS["flow:nightly-eval"]})
        elif flow == "pretrain":
            plan_pretrain("/table", "/out", **params)
        else:
            nested = {k: dict(params.get(k) or {}) for k in NESTED}
            if nested["mining"].get("backbone", "descriptor") != "descriptor":
                nested["mining"]["backbone_weights"] = RUN_TIME["backbone_weights"]
            if nested["training"].get("model_config", "base") not in ("base", "tiny"):
                nested["training"]["base_checkpoint"] = RUN_TIME["base_checkpoint"]
            plan_mine_and_train("/in", "/out", train_backend=params.get("train_backend", "local"), **nested)


@pytest.mark.integration
def test_every_flow_parameter_is_a_job_field_with_the_same_default():
    """Imports the flows (prefect)."""
    from flows.demo import DEMO_EVALUATION, DEMO_MINING, DEMO_TRAINING
    from unsamv2.jobs.mine_and_train import plan_mine_and_train

    flows = _flow_names()
    for entrypoint, flow_name in flows.items():
        if flow_name == "demo":  # the demo's own sizes; it passes job-shaped dicts to mine-and-train
            continue
        path, func = entrypoint.split(":")
        flow = getattr(importlib.import_module(path[:-3].replace("/", ".")), func)
        parameters = {n: p.default for n, p in inspect.signature(flow.fn).parameters.items()}
        assert check_flow(flow_name, parameters) == []
    plan_mine_and_train("/in", "/out", mining=DEMO_MINING, training=DEMO_TRAINING, evaluation=DEMO_EVALUATION)


def test_the_checks_catch_drift():
    parser = argparse.ArgumentParser()
    parser.add_argument("input_uri")
    parser.add_argument("output_uri")
    parser.add_argument("--shard-size", dest="shard_size", type=int, default=128)  # another default
    parser.add_argument("--features", dest="backbone", default="descriptor")  # another name
    parser.add_argument("--workers", type=int, default=1)  # not a mining field
    problems = check_command("mine", parser)
    assert len(problems) == 3 and "default 128" in problems[0] and "--features" in problems[1], problems
    signature = {n: _default_of(n, FLOW_JOBS["mine"]) for n in FLOW_PARAMETERS["mine"]}
    assert check_flow("mine", signature) == []
    assert check_flow("mine", {**signature, "backend": "ray"}) != []  # the flow's own default
    assert check_flow("mine", {**signature, "features": "descriptor"}) != []  # not a field
    assert check_deployment("mine-and-train", "x", {"training": {"steps": 5}}) != []
    assert check_deployment("mine", "x", {"batch_size": 4}) != []  # repeats the default
    assert check_deployment("nightly-eval", "x", {"report_store": "s", "scenes": "scenes:1:1:64"}) == []
    pretrain = {n: None if n in NESTED else _default_of(n, FLOW_JOBS["pretrain"]) for n in FLOW_PARAMETERS["pretrain"]}
    assert check_flow("pretrain", pretrain) == []
    assert check_flow("pretrain", {**pretrain, "training": {}}) != []  # not None
    assert check_flow("pretrain", {**pretrain, "train_backend": "ray"}) != []  # not run_train's default
    assert check_flow("pretrain", {**pretrain, "output_uri": "runs/base"}) != []  # the job's is required
    assert check_deployment("pretrain", "x", {"training": {"max_steps": 2500}}) != []  # PRETRAIN_DEFAULTS'
    assert check_deployment("pretrain", "x", {"training": {"max_steps": 1000}}) == []  # TrainConfig's only
    assert check_deployment("pretrain", "x", {"training": {"steps": 5}, "backend": "ray"}) != []


# ------------------------------------------------------------------------------ the README's table
USE_CASES = {  # use case -> (jobs, entry point, command, flow)
    "mine": ((MineJob, MinerConfig), "unsamv2.jobs.mine.run_mine", "mine", "mine"),
    "pretrain a base": ((TrainConfig,), "unsamv2.jobs.train.run_train", "pretrain", "pretrain"),
    "train the adapter": ((TrainConfig, RayTrainOptions), "unsamv2.jobs.train.run_train", "train", "mine-and-train"),
    "evaluate": ((EvalJob,), "unsamv2.eval.checkpoint.run_eval", "eval", "nightly-eval"),
}


def test_the_readme_table_names_the_jobs_entry_points_commands_and_flows():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| use case | job (validated once)"):].split("\n\n")[0].splitlines()[2:]
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table)}
    assert set(rows) == set(USE_CASES)
    for case, (jobs, entry, command, flow) in USE_CASES.items():
        job_cell, entry_cell, command_cell, flow_cell = rows[case]
        assert set(re.findall(r"`([A-Z]\w+)`", job_cell)) >= {cls.__name__ for cls in jobs}, case
        module, func = entry.rsplit(".", 1)
        assert entry_cell == f"`{entry}`" and callable(getattr(importlib.import_module(module), func))
        assert command_cell == f"`unsamv2 {command}`" and command in COMMANDS
        assert flow_cell == "—" if flow is None else flow_cell.startswith(f"`{flow}`"), case
        assert flow is None or flow in FLOW_PARAMETERS
