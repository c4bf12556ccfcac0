"""What the flows share about their parameters: a nested (dict) parameter given with a run is laid
over the value the flow's deployment gives it, so ``-p training='{"max_steps": 50}'`` changes one
value and keeps the deployment's others (Prefect itself replaces a parameter as a whole)."""

from __future__ import annotations

from typing import Any


def over_deployment(values: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Each nested parameter laid over the value this flow's deployment gives it, when the run
    comes from one (a subflow ignores its parent flow's deployment); ``None`` counts as ``{}``."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.runtime import deployment

    base: dict[str, Any] = {}
    context = FlowRunContext.get()
    if deployment.id and context is not None and context.flow_run is not None:
        with get_client(sync_client=True) as client:
            found = client.read_deployment(deployment.id)
        if found.flow_id == context.flow_run.flow_id:  # not a parent flow's deployment
            base = found.parameters or {}
    return {name: {**(base.get(name) or {}), **(value or {})} for name, value in values.items()}
