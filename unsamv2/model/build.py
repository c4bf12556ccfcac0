"""Build UnSAMv2 models: the only module that knows SAM-2's (Hydra / OmegaConf) config system.

``config`` may be

- ``"base"``: the shipped base (``unsamv2/configs/base.yaml``): a small SAM-2 pretrained by
  ``unsamv2 pretrain`` on procedural scenes; its weights ship in the package
  (``unsamv2/weights/base_sam2.pt``) and load when no checkpoint is given. The embedded default.
- ``"tiny"``: our bundled small config (``unsamv2/configs/tiny.yaml``, 256-px input, random
  weights; for tests and CPU smoke runs only),
- a SAM-2 config name: ``sam2.1_hiera_t``, ``sam2.1_hiera_s``, ``sam2.1_hiera_b+``,
  ``sam2.1_hiera_l`` (or the SAM-2.0 ``sam2_hiera_*`` names), read from the ``sam2`` package,
- a YAML file (local path or s3:// URI) in the ``sam2`` package's format (a ``model:`` section),
  e.g. the official release's ``unsamv2_small.yaml``.

Whatever the YAML says, the model class becomes :class:`UnSAMv2Model` and the UnSAMv2 inference
flags are set (``multimask_output_in_sam``, ``multimask_output_for_tracking``,
``use_multimask_token_for_obj_ptr`` false), plus SAM-2's video-predictor post-processing options.
``sam2`` (which sets up Hydra when imported) is imported only inside these functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from unsamv2.data import storage
from unsamv2.errors import InputError

if TYPE_CHECKING:
    from unsamv2.model.network import UnSAMv2Model

log = logging.getLogger(__name__)

BUNDLED_CONFIGS = ("tiny", "base")
DEFAULT_CONFIG = "base"
SHIPPED_BASE = "base_sam2.pt"  # unsamv2/weights/: the base's SAM-2 weights, {"model": state_dict}
SHIPPED_ADAPTER = "base_unsamv2_adapter.safetensors"  # the miniature comparison's UnSAMv2 adapter
SHIPPED = "shipped"  # as an adapter name: the shipped adapter file


def shipped_weights(name: str) -> str:
    """Path of a weights file shipped in the package (``SHIPPED_BASE`` or ``SHIPPED_ADAPTER``)."""
    path = resources.files("unsamv2").joinpath("weights", name)
    if not path.is_file():
        raise InputError(f"the shipped weights file unsamv2/weights/{name} is missing from this install; "
                         "reinstall unsamv2 or give --checkpoint / --adapter.")
    return str(path)


def default_checkpoint(config: str, checkpoint: str | None, pretrained: bool = True) -> str | None:
    """``checkpoint``, or the shipped base weights for config ``"base"`` when none is given."""
    if checkpoint is None and config == "base" and pretrained:
        return shipped_weights(SHIPPED_BASE)
    return checkpoint
SAM2_CONFIG_NAMES = ("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
                     "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l")
_NAME = re.compile(r"^(sam2(?:\.1)?)_hiera_(t|s|b\+|l)$")
MODEL_CLASS = "unsamv2.model.network.UnSAMv2Model"
UNSAMV2_FLAGS = {
    "multimask_output_in_sam": False,
    "multimask_output_for_tracking": False,
    "use_multimask_token_for_obj_ptr": False,
}


def config_names() -> tuple[str, ...]:
    """Every config name :func:`build_model` accepts besides YAML paths."""
    return (*BUNDLED_CONFIGS, *SAM2_CONFIG_NAMES)


def _config_text(config: str) -> str:
    """The YAML text of a config name or path."""
    if config in BUNDLED_CONFIGS:
        return resources.files("unsamv2").joinpath("configs", f"{config}.yaml").read_text()
    match = _NAME.match(config)
    if match:
        import sam2

        folder = "sam2.1" if match.group(1) == "sam2.1" else "sam2"
        return resources.files(sam2).joinpath("configs", folder, f"{config}.yaml").read_text()
    if config.endswith((".yaml", ".yml")):
        if not storage.exists(config):
            raise InputError(f"config file {config} does not exist; give an existing YAML path.")
        return storage.read_text(config)
    raise InputError(f"unknown model config {config!r}; use one of {', '.join(config_names())} "
                     "or a path to a SAM-2-format YAML file.")


ALLOWED_TARGET_PREFIXES = ("sam2.modeling.", "unsamv2.model.", "torch.nn.")


def check_model_section(model: Any, source: str) -> None:
    """:func:`check_targets` on everything under a ``model:`` section except its own
    ``_target_``, which :func:`build_model` / :func:`build_sam2` replace with their class."""
    for key in model.keys():
        if key != "_target_":
            check_targets(model._get_node(key), source)


def check_targets(node: Any, source: str) -> None:
    """Refuse a config that would instantiate anything but model classes.

    Every ``_target_`` in ``node`` (an OmegaConf container, walked without resolving) must name
    an ``nn.Module`` subclass in ``sam2.modeling``, ``unsamv2.model`` or ``torch.nn``; a config
    from a user or named by a checkpoint is data, never code (``builtins.open``, ``os.system``
    ... are refused before anything is instantiated).
    """
    from omegaconf import DictConfig, ListConfig

    if isinstance(node, DictConfig):
        target = node._get_node("_target_") if "_target_" in node else None
        if target is not None:
            _check_target(str(target._value()), source)
        for key in node.keys():
            check_targets(node._get_node(key), source)
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            check_targets(node._get_node(index), source)


def _check_target(name: str, source: str) -> None:
    import importlib

    from torch import nn

    module_name, _, attr = name.rpartition(".")
    allowed = name.startswith(ALLOWED_TARGET_PREFIXES) and module_name and attr
    obj = None
    if allowed:
        try:
            obj = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            obj = None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise InputError(f"config {source} names _target_ {name!r}, which is not a model class of sam2.modeling, "
                         "unsamv2.model or torch.nn; remove it (configs may only build models).")


def config_sha256(config: str) -> str:
    """sha256 of the YAML text a config name or path stands for (what a checkpoint records, so
    that a registry cannot point a checkpoint at another architecture or at code)."""
    import hashlib

    return hashlib.sha256(_config_text(config).encode()).hexdigest()


def model_config(config: str, **overrides: Any) -> Any:
    """The resolved ``model:`` section (an OmegaConf DictConfig) for :class:`UnSAMv2Model`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = OmegaConf.create(_config_text(config))
    except (OmegaConfBaseException, ValueError) as exc:  # yaml errors are ValueError subclasses
        raise InputError(f"cannot parse config {config}: {exc}; fix the YAML.") from exc
    if "model" not in cfg:
        raise InputError(f"config {config} has no 'model:' section; give a SAM-2-format YAML.")
    check_model_section(cfg.model, config)
    cfg.model._target_ = MODEL_CLASS
    for key, value in {**UNSAMV2_FLAGS, **_video_postprocessing(), **overrides}.items():
        cfg.model[key] = value
    OmegaConf.resolve(cfg)
    return cfg.model


def _video_postprocessing() -> dict[str, Any]:
    """What SAM-2's ``build_sam2_video_predictor`` sets; hole filling needs sam2's CUDA extension."""
    try:
        from sam2 import _C  # noqa: F401

        fill_hole_area = 8
    except ImportError:
        fill_hole_area = 0
    return {"binarize_mask_from_pts_for_mem_enc": True, "fill_hole_area": fill_hole_area}


def _device(device: str) -> Any:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for but CUDA is not available; use device='cpu'.")
    return dev


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded, restoring the global RNG state afterwards."""
    import torch

    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_model(config: str = DEFAULT_CONFIG, checkpoint: str | None = None, adapter: str | None = None,
                device: str = "cpu", seed: int | None = None, warn_untrained: bool = True,
                **overrides: Any) -> UnSAMv2Model:
    """Build an :class:`UnSAMv2Model` in eval mode with SAM-2 frozen and the adapter trainable.

    config: see the module docstring. checkpoint: a SAM-2.1 checkpoint, an official UnSAMv2
    checkpoint, or one saved from this model (``{"model": state_dict}``; local path or s3://;
    default for ``"base"``: the shipped weights),
    loaded strictly with ``torch.load(weights_only=True)``; a plain SAM-2 checkpoint leaves the
    adapter at its initialisation. adapter: our safetensors adapter file, loaded after the
    checkpoint; ``"shipped"``: the shipped adapter (``SHIPPED_ADAPTER``, trained on the shipped
    base). seed: initialise the weights from this seed without touching the global RNG
    (default: 0 for ``"tiny"`` without checkpoint, so that random tiny model is reproducible and
    an adapter trained on it can be applied again; otherwise the global RNG). warn_untrained:
    log a warning when the result has an untrained adapter (off for training one). overrides: extra
    ``model:`` keys (e.g. ``lora_rank=4``, ``image_size=512``).
    Without checkpoint and adapter the weights are random (fine for tests, useless otherwise).
    """
    from hydra.utils import instantiate

    from unsamv2.model.adapter import load_adapter, set_trainable
    from unsamv2.model.checkpoint import load_checkpoint

    dev = _device(device)
    checkpoint = default_checkpoint(config, checkpoint)
    if adapter == SHIPPED:
        adapter = shipped_weights(SHIPPED_ADAPTER)
    if seed is None and config == "tiny" and checkpoint is None:
        seed = 0
    try:
        with _seeded(seed):
            model = instantiate(model_config(config, **overrides), _recursive_=True)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad YAML surfaces as any error of the classes
        raise InputError(f"cannot build a model from config {config}: "
                         f"{str(exc).splitlines()[0][:300]}; check the YAML.") from exc
    info: dict[str, Any] = {"config": config, "checkpoint": checkpoint, "adapter": adapter}
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint)
        info.update(checkpoint_sha256=loaded.sha256, official_layout=loaded.official_layout,
                    checkpoint_has_adapter=loaded.has_adapter)
        if not loaded.has_adapter and adapter is None and warn_untrained:
            log.warning("%s is a SAM-2 checkpoint without the UnSAMv2 adapter: the granularity "
                        "module is untrained (give adapter=... for a trained one)", checkpoint)
    model.unsamv2_build_info = info
    if adapter is not None:
        load_adapter(model, adapter)
    set_trainable(model, "adapter")
    return model.to(dev).eval()


def build_sam2(config: str = DEFAULT_CONFIG, checkpoint: str | None = None, device: str = "cpu",
               seed: int | None = None, pretrained: bool = True) -> Any:
    """A plain SAM-2 model (``SAM2Base``, the baseline) from the same configs and checkpoints.

    An UnSAMv2 checkpoint may be given: its SAM-2 part (the frozen weights) is loaded, the
    adapter tensors are ignored. Config ``"base"`` without checkpoint loads the shipped weights
    unless ``pretrained=False`` (random weights: base pretraining starts there). seed:
    initialise the weights from this seed without touching the global RNG (default: the global RNG).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from unsamv2.model.checkpoint import (
        from_official,
        is_adapter_key,
        is_official_layout,
        load_state_strict,
        read_state_dict,
    )

    dev = _device(device)
    checkpoint = default_checkpoint(config, checkpoint, pretrained)
    cfg = OmegaConf.create(_config_text(config))
    if "model" not in cfg:
        raise InputError(f"config {config} has no 'model:' section; give a SAM-2-format YAML.")
    check_model_section(cfg.model, config)
    cfg.model._target_ = "sam2.modeling.sam2_base.SAM2Base"
    # what sam2.build_sam.build_sam2 sets on every config: an unstable one-click single-mask
    # output falls back to the best multimask output at inference
    cfg.model.sam_mask_decoder_extra_args = {"dynamic_multimask_via_stability": True,
                                             "dynamic_multimask_stability_delta": 0.05,
                                             "dynamic_multimask_stability_thresh": 0.98}
    for key in ("lora_rank", "fourier_dim", "temperature"):
        cfg.model.pop(key, None)
    with _seeded(seed):
        model = instantiate(cfg.model, _recursive_=True)
    if checkpoint is not None:
        state, _ = read_state_dict(checkpoint)
        if is_official_layout(state):
            state = from_official(state)
        state = {k: v for k, v in state.items() if not is_adapter_key(k)}
        load_state_strict(model, state, checkpoint, allow_missing_adapter=False)
    return model.to(dev).eval()
