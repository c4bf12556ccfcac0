"""prefect.yaml: every deployment loads, validates against its flow, and names a known work pool."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from opsdefs import REPO, image, k8s_job_template, prefect_config, stack_module

# Work pool name -> the base job template whose variables its job_variables must satisfy.
PROCESS_POOLS = {"unsamv2-local", "unsamv2-vm"}
K8S_POOLS = {"unsamv2-k8s"}
SCHEDULED_FLOWS = {"nightly-eval"}  # must carry a cron schedule and the single/cancel-new limit


def _deployments() -> list[dict[str, Any]]:
    return prefect_config()["deployments"]


def _ids() -> list[str]:
    return [f"{d['entrypoint']}:{d['name']}" for d in _deployments()]


def _flow(entrypoint: str):
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # entrypoints are relative to the project root, as for `prefect deploy`


def test_file_declares_only_existing_entrypoints_and_unique_names():
    seen = set()
    for d in _deployments():
        path, func = d["entrypoint"].rsplit(":", 1)
        assert (REPO / path).is_file(), d["entrypoint"]
        key = (stack_module().flow_name_of(d["entrypoint"]), d["name"])
        assert key not in seen, f"duplicate deployment {key}"
        seen.add(key)
    assert ("mine", "local") in seen and ("mine", "cluster") in seen


@pytest.mark.parametrize("deployment", _deployments(), ids=_ids())
@pytest.mark.integration
def test_entrypoint_imports_and_parameters_validate(deployment):
    flow = _flow(deployment["entrypoint"])
    assert flow.name == stack_module().flow_name_of(deployment["entrypoint"])
    params = dict(deployment.get("parameters") or {})
    assert not any("{{" in str(v) for v in params.values()), "parameters must be literal values"
    signature = inspect.signature(flow.fn)
    assert set(params) <= set(signature.parameters), set(params) - set(signature.parameters)
    # Required parameters (input/output URIs) come with each run; stand in for them here.
    required = {n: "/data/placeholder" for n, p in signature.parameters.items()
                if p.default is inspect.Parameter.empty and n not in params}
    if flow.name in SCHEDULED_FLOWS:
        assert not required, f"a scheduled deployment must set every required parameter: {sorted(required)}"
    validated = flow.validate_parameters({**params, **required})
    for name, value in params.items():
        assert validated[name] == value


@pytest.mark.integration
def test_invalid_parameters_are_rejected_by_the_same_validation():
    from prefect.exceptions import ParameterTypeError

    flow = _flow("flows/mine.py:mine")
    with pytest.raises(ParameterTypeError):
        flow.validate_parameters({"input_uri": "a", "output_uri": "b", "backend": "spark"})


def _pool_variables(pool: str) -> dict[str, Any]:
    if pool in PROCESS_POOLS:
        from prefect.workers.process import ProcessWorker

        return ProcessWorker.get_default_base_job_template()["variables"]
    assert pool in K8S_POOLS, f"unknown work pool {pool!r}"
    return k8s_job_template()["variables"]


@pytest.mark.parametrize("deployment", _deployments(), ids=_ids())
@pytest.mark.integration
def test_job_variables_fit_the_work_pool_template(deployment):
    from prefect.utilities.schema_tools import validate

    pool = deployment["work_pool"]
    variables = _pool_variables(pool["name"])
    job_variables = pool.get("job_variables") or {}
    assert set(job_variables) <= set(variables["properties"]), set(job_variables) - set(variables["properties"])
    validate(job_variables, variables, raise_on_error=True, ignore_required=True)
    if pool["name"] in K8S_POOLS:
        assert job_variables["image"] == image("cpu"), "the driver pod runs the project's CPU image"


@pytest.mark.parametrize("deployment", _deployments(), ids=_ids())
def test_pull_steps_match_where_the_code_lives(deployment):
    pull = deployment.get("pull")
    pool = deployment["work_pool"]["name"]
    if pool == "unsamv2-local":
        assert pull is None, "local deployments use Prefect's default: the folder `prefect deploy` ran in"
        return
    steps = [next(iter(step)) for step in pull]
    assert steps[-1] == "prefect.deployments.steps.set_working_directory"
    if pool in K8S_POOLS:  # code baked into the image at the Dockerfiles' WORKDIR
        assert steps == ["prefect.deployments.steps.set_working_directory"]
        directory = pull[0]["prefect.deployments.steps.set_working_directory"]["directory"]
        for dockerfile in ("cpu.Dockerfile", "cuda.Dockerfile"):
            assert f"WORKDIR {directory}\n" in (REPO / "infra" / "docker" / dockerfile).read_text()
    else:  # fresh clone, then work inside it
        clone = pull[0]["prefect.deployments.steps.git_clone"]
        assert steps[0] == "prefect.deployments.steps.git_clone"
        assert pull[1]["prefect.deployments.steps.set_working_directory"]["directory"] == \
            f"{{{{ {clone['id']}.directory }}}}"
        assert "prefect.variables." in clone["repository"], "the repository URL is a Prefect variable"


@pytest.mark.integration
def test_definitions_prepare_schedule_and_single_run_limit():
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.client.schemas.schedules import CronSchedule

    definitions = prefect_config()["definitions"]
    (nightly,) = definitions["schedules"]["nightly"]
    assert CronSchedule(cron=nightly["cron"], timezone=nightly["timezone"]).cron == nightly["cron"]
    limit = definitions["concurrency"]["single_cancel_new"]
    assert limit["limit"] == 1
    options = ConcurrencyOptions(collision_strategy=limit["collision_strategy"])
    assert options.collision_strategy is ConcurrencyLimitStrategy.CANCEL_NEW
    assert {p["name"] for p in definitions["work_pools"].values()} == PROCESS_POOLS | K8S_POOLS


@pytest.mark.parametrize("deployment", _deployments(), ids=_ids())
def test_scheduled_flows_run_nightly_one_at_a_time(deployment):
    if stack_module().flow_name_of(deployment["entrypoint"]) not in SCHEDULED_FLOWS:
        assert not deployment.get("schedules"), "only the scheduled flows run on a schedule"
        return
    definitions = prefect_config()["definitions"]
    assert deployment["schedules"] == definitions["schedules"]["nightly"]
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}


def test_definitions_use_the_project_images():
    images = prefect_config()["definitions"]["images"]
    assert images == {"cpu": image("cpu"), "cuda": image("cuda")}
