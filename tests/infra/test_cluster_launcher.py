"""The AWS cluster-launcher YAML passes Ray's own config validation and keeps token auth on."""

from __future__ import annotations

import copy

import pytest
import yaml
from opsdefs import INFRA, image

LAUNCHER = INFRA / "ray" / "cluster-aws.yaml"


def _config() -> dict:
    return yaml.safe_load(LAUNCHER.read_text())


@pytest.mark.integration
def test_ray_accepts_the_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_config()))
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"


@pytest.mark.integration
def test_ray_rejects_a_broken_copy():
    """The validation above can fail: an unknown top-level key is refused."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = {**copy.deepcopy(_config()), "max_wrokers": 3}
    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(broken))


def test_head_and_autoscaling_gpu_workers_run_the_project_image():
    config = _config()
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    gpu = [t for t in workers if t["node_config"]["InstanceType"].split(".")[0][0] in "gp"]
    assert gpu and all(t["min_workers"] == 0 < t["max_workers"] <= config["max_workers"] for t in gpu)
    assert config["docker"]["image"] == image("cuda")


def test_token_auth_is_on_and_the_token_comes_from_a_mounted_directory():
    config = _config()
    options = " ".join(config["docker"]["run_options"])
    assert "--env RAY_AUTH_MODE=token" in options
    token_path = options.split("RAY_AUTH_TOKEN_PATH=")[1].split()[0]
    mounted = [remote for remote in config["file_mounts"] if token_path.startswith(remote.rstrip("/") + "/")]
    assert mounted, "the token file lives in a file_mounts directory"
    text = LAUNCHER.read_text()
    for word in ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "RAY_AUTH_TOKEN="):
        assert word not in text
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "RAY_AUTH_MODE=disabled" not in command
