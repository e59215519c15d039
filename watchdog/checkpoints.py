"""The stable-checkpoint store: state_dicts plus a metadata file, written atomically.

Two readers live here:

* ``CheckpointStore`` writes and reads *our* checkpoints: ``<root>/<tag>/state.pt`` (a nested
  dict of tensors and plain values, loadable with ``torch.load(weights_only=True)``) and
  ``<root>/<tag>/meta.json``. A checkpoint directory is built under a temporary name and
  renamed into place, so a crash leaves either no new checkpoint or a complete one.
* ``read_openrl_module`` is the one adapter for OpenRL's own ``module.pt`` (a pickled
  ``PPOModule``). It never imports openrl or isaacgym and never runs their code: classes outside a
  small allow-list are replaced by inert stand-ins, and the tensors are collected from them.

This module must not import openrl (STYLE.md: the library side stays importable without it).
"""

from __future__ import annotations

import _compat_pickle
import collections
import hashlib
import io
import json
import logging
import math
import os
import pickle
import re
import shutil
import time
import types
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from watchdog.errors import CheckpointError, ConfigError, InternalError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "meta.json"
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
_REQUIRED_META = ("iteration", "env_steps")


# --------------------------------------------------------------------------- our checkpoints


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint directory on disk and its metadata (``meta.json``)."""

    path: Path
    tag: str
    meta: dict[str, Any]

    @property
    def iteration(self) -> int:
        """The training iteration the checkpoint was taken after."""
        return int(self.meta["iteration"])

    @property
    def env_steps(self) -> int:
        """Environment steps consumed when the checkpoint was taken."""
        return int(self.meta["env_steps"])

    @property
    def stable(self) -> bool:
        """Whether the watchdog judged training stable when the checkpoint was taken."""
        return bool(self.meta.get("stable", False))


class CheckpointStore:
    """Saves, lists, verifies and prunes checkpoints under one root directory.

    Retention keeps the newest ``keep_last`` *stable* checkpoints (by ``env_steps``); the
    newest checkpoint, the one just saved and every protected tag are never deleted. Unstable
    checkpoints are never pruned automatically. ``keep_last=None``: no retention of its own (the
    watched training's registry, :class:`watchdog.driver.StableRegistry`, decides what to delete).
    """

    def __init__(self, root: Path | str, keep_last: int | None = 5, protected: Iterable[str] = ()):
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise ConfigError(
                f"checkpoint keep_last must be an integer >= 1, got {keep_last!r}",
                hint="set keep_last to 1 or more; the newest stable checkpoint is always kept",
            )
        self.root = Path(root)
        self.keep_last = keep_last
        self.protected: set[str] = set(protected)
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()

    # -- writing

    def save(self, tag: str, state: Mapping[str, Any], meta: Mapping[str, Any]) -> CheckpointInfo:
        """Write ``root/<tag>/`` atomically, then apply retention; return the new checkpoint.

        ``meta`` needs ``iteration`` and ``env_steps``; ``stable`` defaults to True.
        """
        _check_tag(tag)
        meta = dict(meta)
        missing = [k for k in _REQUIRED_META if k not in meta]
        if missing:
            raise InternalError(f"checkpoint meta for {tag!r} lacks {missing}; pass iteration and env_steps")
        payload = _serialize(plain_state(dict(state), "state"))
        meta.setdefault("stable", True)
        meta.update(
            tag=tag,
            sha256=hashlib.sha256(payload).hexdigest(),
            created=time.time(),
            format_version=FORMAT_VERSION,
        )
        meta_text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
        final = self.root / tag
        tmp = self.root / f"{_TMP_PREFIX}{tag}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            _write_synced(tmp / STATE_FILE, payload)
            _write_synced(tmp / META_FILE, meta_text.encode())
            fsync_dir(tmp)
            self._replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        info = CheckpointInfo(path=final, tag=tag, meta=meta)
        self.prune(keep=(tag,))
        return info

    def protect(self, tag: str) -> None:
        """Pin ``tag`` so retention never deletes it (e.g. the last checkpoint before an onset)."""
        self.protected.add(tag)

    def unprotect(self, tag: str) -> None:
        """Release a pin set with ``protect``."""
        self.protected.discard(tag)

    def delete(self, tag: str) -> None:
        """Delete one checkpoint (absent: nothing to do)."""
        _check_tag(tag)
        if (self.root / tag).is_dir():
            self._delete_dir(self.root / tag)

    def mark_unstable(self, tag: str, *, reason: str) -> None:
        """Keep the files but no longer as stable (``meta.json`` rewritten atomically): e.g. a
        checkpoint of the stretch a rollback abandoned, which no restart may choose."""
        _check_tag(tag)
        path = self.root / tag
        try:
            meta = _read_meta(path)
        except CheckpointError:
            return  # gone or unreadable: no restart can choose it anyway
        meta.update(stable=False, unstable_reason=reason)
        tmp = path / f"{_TMP_PREFIX}{META_FILE}"
        _write_synced(tmp, json.dumps(meta, indent=2, sort_keys=True, default=_json_default).encode())
        os.replace(tmp, path / META_FILE)
        fsync_dir(path)

    def abandon_after(self, iteration: int, *, reason: str) -> list[str]:
        """Mark every stable checkpoint taken after ``iteration`` unstable (kept, for the record); returns their tags.
        A run resumed from an older checkpoint abandons the trajectory they belong to: a crash restart took the
        newest of them, past where the resumed run stood, until session 21."""
        newer = [c.tag for c in self.list() if c.stable and c.iteration > iteration]
        for tag in newer:
            self.mark_unstable(tag, reason=reason)
        return newer

    def prune(self, keep: Iterable[str] = ()) -> list[str]:
        """Delete stable checkpoints beyond the newest ``keep_last``; return the deleted tags."""
        stable = [c for c in self.list() if c.stable]
        if not stable or self.keep_last is None:
            return []
        spared = set(keep) | self.protected | {stable[-1].tag}
        spared |= {c.tag for c in stable[-self.keep_last :]}
        deleted = []
        for ckpt in stable:
            if ckpt.tag not in spared:
                self._delete_dir(ckpt.path)
                deleted.append(ckpt.tag)
        if deleted:
            log.info("checkpoint retention (keep_last=%d) deleted %s", self.keep_last, deleted)
        return deleted

    # -- reading

    def load(self, path: Path | str | CheckpointInfo, *, map_location: Any = "cpu") -> tuple[dict, dict]:
        """Read and verify a checkpoint (sha256, weights_only load, finite floats)."""
        return load_checkpoint(path, map_location=map_location)

    def list(self) -> list[CheckpointInfo]:
        """All complete checkpoints, oldest first (by env_steps, then iteration)."""
        found = []
        for child in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not child.is_dir() or child.name.startswith((_TMP_PREFIX, _TRASH_PREFIX, ".")):
                continue
            try:
                meta = _read_meta(child)
            except CheckpointError as err:
                log.warning("skipping checkpoint: %s", err)
                continue
            found.append(CheckpointInfo(path=child, tag=child.name, meta=meta))
        return sorted(found, key=lambda c: (c.env_steps, c.iteration, c.meta.get("created", 0.0)))

    def latest_stable(self, before_env_steps: int | None = None, *, verify: bool = True) -> CheckpointInfo | None:
        """The newest stable checkpoint at or before ``before_env_steps`` that loads cleanly."""
        found = self.load_latest_stable(before_env_steps, verify=verify)
        return None if found is None else found[0]

    def load_latest_stable(
        self, before_env_steps: int | None = None, *, verify: bool = True, map_location: Any = "cpu"
    ) -> tuple[CheckpointInfo, dict | None, dict] | None:
        """Like ``latest_stable`` but also returns the loaded state (``None`` when not verified)."""
        for ckpt in reversed(self.list()):
            if not ckpt.stable or (before_env_steps is not None and ckpt.env_steps > before_env_steps):
                continue
            if not verify:
                return ckpt, None, ckpt.meta
            try:
                state, meta = self.load(ckpt.path, map_location=map_location)
            except CheckpointError as err:
                log.warning("stable checkpoint unusable, falling back to an older one: %s", err)
                continue
            return ckpt, state, meta
        return None

    # -- internals

    def _replace_dir(self, tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``; an existing ``final`` is moved aside first, then deleted."""
        old = None
        if final.exists():
            old = self.root / f"{_TRASH_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_dir(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _delete_dir(self, path: Path) -> None:
        """Rename a checkpoint out of sight, then delete it (a crash leaves no half-deleted one)."""
        trash = self.root / f"{_TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
        os.replace(path, trash)
        fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Delete temp/trash dirs left by a crash in an earlier run.

        A crash between the two renames of ``_replace_dir`` leaves ``.trash-<tag>-<id>`` and no
        ``<tag>``: that trash is the only copy, so it is renamed back rather than deleted.
        """
        for child in sorted(self.root.iterdir()):
            if not child.is_dir():
                continue
            if child.name.startswith(_TRASH_PREFIX):
                tag = child.name[len(_TRASH_PREFIX):].rsplit("-", 1)[0]
                if tag and not (self.root / tag).exists():
                    log.warning("restoring checkpoint %s left aside by an interrupted replace", tag)
                    os.replace(child, self.root / tag)
                    fsync_dir(self.root)
                    continue
            if child.name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
                log.debug("removing leftover %s", child)
                shutil.rmtree(child, ignore_errors=True)


def load_checkpoint(path: Path | str | CheckpointInfo, *, map_location: Any = "cpu") -> tuple[dict, dict]:
    """Read and verify one of our checkpoints (sha256, weights_only load, finite floats)."""
    ckpt_dir = _checkpoint_dir(path)
    meta = _read_meta(ckpt_dir)
    state_path = ckpt_dir / STATE_FILE
    try:
        payload = state_path.read_bytes()
    except OSError as err:
        raise CheckpointError(
            f"cannot read {STATE_FILE} ({err.strerror})", path=str(ckpt_dir),
            hint="the checkpoint is incomplete; use an older one",
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != meta.get("sha256"):
        raise CheckpointError(
            f"{STATE_FILE} sha256 {digest[:12]} does not match meta.json {str(meta.get('sha256'))[:12]}",
            path=str(ckpt_dir), hint="the file is corrupt or was modified; use an older checkpoint",
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(
            f"{STATE_FILE} cannot be loaded with weights_only=True ({_one_line(err)})",
            path=str(ckpt_dir), hint="it was not written by this watchdog; use an older checkpoint",
        ) from None
    bad = nonfinite_keys(state)
    if bad:
        raise CheckpointError(
            f"{len(bad)} tensor(s) hold NaN/Inf, first {bad[0]}",
            path=str(ckpt_dir), hint="the run had already diverged; use an older checkpoint",
        )
    return state, meta


def clone_tree(tree: Any, device: Any = None) -> Any:
    """A copy of a state dict's nested dicts/lists/tuples with every tensor cloned (to ``device``
    when given; ~10x faster than ``deepcopy``): a snapshot never shares tensors with live objects.
    A numpy scalar becomes the Python number it holds, as a checkpoint on disk has it."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone() if device is None else tree.detach().to(device, copy=True)
    if isinstance(tree, dict):  # OrderedDict stays an OrderedDict
        return type(tree)((k, clone_tree(v, device)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree)(clone_tree(v, device) for v in tree)
    if isinstance(tree, np.generic):  # rl_games' frame-counted schedule puts numpy floats in the param groups
        return tree.item()
    return tree


def nonfinite_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every floating-point tensor, numpy array or float in ``tree`` that holds NaN or Inf."""
    bad = []
    for key, value in _walk_leaves(tree, prefix):
        if isinstance(value, torch.Tensor):
            if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
                bad.append(key)
        elif isinstance(value, np.ndarray):
            if np.issubdtype(value.dtype, np.inexact) and not bool(np.isfinite(value).all()):
                bad.append(key)
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(key)
    return bad


def _walk_leaves(tree: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, leaf) for nested dicts/lists/tuples."""
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _walk_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _walk_leaves(v, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, tree


_PLAIN = (str, int, float, bool, type(None), torch.dtype, torch.device)


def plain_state(tree: Any, where: str) -> Any:
    """``tree`` as ``torch.load(weights_only=True)`` reads it back: numpy scalars (a float64 passes as a
    float, and was saved as one that could not be loaded) become Python numbers; anything else that is not
    a tensor, a plain value or a dict/list/tuple of them is refused (our bug, not the user's)."""
    if isinstance(tree, np.generic) and isinstance(tree.item(), (int, float, bool, str)):
        return tree.item()
    if isinstance(tree, torch.Tensor) or isinstance(tree, _PLAIN):
        return tree
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, (str, int)) or isinstance(k, np.generic):
                raise InternalError(f"checkpoint {where} has a non str/int key {k!r}")
        plain = {k: plain_state(v, f"{where}.{k}") for k, v in tree.items()}
        return collections.OrderedDict(plain) if isinstance(tree, collections.OrderedDict) else plain
    if isinstance(tree, (list, tuple)):
        items = [plain_state(v, f"{where}.{i}") for i, v in enumerate(tree)]
        return tuple(items) if isinstance(tree, tuple) else items
    raise InternalError(
        f"checkpoint {where} holds a {type(tree).__name__}; only tensors, dicts, lists and plain values are saved"
    )


def _serialize(state: dict) -> bytes:
    """``torch.save`` into memory so the bytes can be hashed before they touch the disk."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` and fsync it, so a later rename cannot expose an empty file."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it survive a power cut (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_tag(tag: str) -> None:
    """A tag becomes a directory name: one plain path component, not hidden."""
    if not isinstance(tag, str) or not tag or tag.startswith(".") or "/" in tag or "\\" in tag:
        raise InternalError(f"checkpoint tag {tag!r} must be a plain, non-hidden directory name")


def _checkpoint_dir(path: Path | str | CheckpointInfo) -> Path:
    """Accept a checkpoint dir, its state.pt/meta.json, or a CheckpointInfo."""
    if isinstance(path, CheckpointInfo):
        return path.path
    path = Path(path)
    return path.parent if path.name in (STATE_FILE, META_FILE) else path


def _read_meta(ckpt_dir: Path) -> dict[str, Any]:
    """Parse and sanity-check ``meta.json``."""
    meta_path = ckpt_dir / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"no {META_FILE}", path=str(ckpt_dir), hint="not a watchdog checkpoint or an interrupted write"
        ) from None
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{META_FILE} is unreadable ({_one_line(err)})", path=str(ckpt_dir), hint="use an older checkpoint"
        ) from None
    if not isinstance(meta, dict) or any(k not in meta for k in (*_REQUIRED_META, "sha256")):
        raise CheckpointError(
            f"{META_FILE} lacks iteration/env_steps/sha256", path=str(ckpt_dir), hint="use an older checkpoint"
        )
    for key in _REQUIRED_META:  # a count a resume places the run by (an iteration "x": a traceback until session 22)
        if type(meta[key]) is not int or meta[key] < 0:
            raise CheckpointError(f"{META_FILE} has {key} {json.dumps(meta[key])[:30]}, not a count >= 0",
                                  path=str(ckpt_dir), hint="the file was modified; use an older checkpoint")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"format_version {version!r} is newer than this watchdog's {FORMAT_VERSION}",
            path=str(ckpt_dir), hint="upgrade ppo-watchdog to read it",
        )
    return meta


def _json_default(value: Any) -> Any:
    """Let numpy scalars and paths in meta serialise as plain JSON."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"meta value {value!r} ({type(value).__name__}) is not JSON serialisable")


def _one_line(err: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --------------------------------------------------------------------------- OpenRL module.pt


class _StandIn:
    """An inert object standing in for a class we refuse to import; it only records its state."""

    _qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "_StandIn":
        obj = object.__new__(cls)
        object.__setattr__(obj, "_args", args)
        object.__setattr__(obj, "_items", {})
        object.__setattr__(obj, "_list", [])
        object.__setattr__(obj, "_state", None)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        slots = None
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state, slots = state
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})
        else:
            object.__setattr__(self, "_state", state)
        if isinstance(slots, dict):
            self.__dict__.update(slots)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._items[key] = value

    def append(self, value: Any) -> None:
        """Receive APPEND opcodes for pickled list subclasses."""
        self._list.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        """Receive APPENDS opcodes for pickled list subclasses."""
        self._list.extend(values)

    def __repr__(self) -> str:
        return f"<stand-in {self._qualname}>"


_STAND_INS: dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    """One stand-in class per refused global, named after it for error messages."""
    qualname = f"{module}.{name}"
    if qualname not in _STAND_INS:
        _STAND_INS[qualname] = type(name, (_StandIn,), {"_qualname": qualname, "__module__": __name__})
    return _STAND_INS[qualname]


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only real objects a module.pt may reference: tensor rebuilders and plain containers."""
    import numpy as np

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
        ("torch", "device"): torch.device,
        ("torch", "Size"): torch.Size,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for name in ("set", "frozenset", "dict", "list", "tuple", "int", "float", "bool", "str", "bytes",
                 "bytearray", "complex", "slice", "range"):
        allowed[("builtins", name)] = getattr(__import__("builtins"), name)
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            allowed[("torch", name)] = value
    multiarray = getattr(np, "_core", None) or np.core
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = multiarray.multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.multiarray.scalar
    for mod in ("numpy.dtypes",):
        for name in dir(getattr(np, "dtypes", object())):
            if name.endswith("DType"):
                allowed[(mod, name)] = getattr(np.dtypes, name)
    return allowed


def _codecs_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """What protocol-2 pickles use to store bytes; only text codecs are accepted."""
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"refusing codec {encoding!r} in a pickled bytes value")
    import codecs

    return codecs.encode(obj, encoding, errors)


class _StandInUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals; everything else becomes a stand-in."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if type(self)._allowed is None:
            type(self)._allowed = _allowed_globals()
        found = type(self)._allowed.get((module, name))
        if found is not None:
            return found
        if module == "torch" and name.endswith("Storage"):
            return getattr(torch, name)
        return _stand_in(module, name)


_RESTRICTED_PICKLE = types.ModuleType("watchdog_restricted_pickle")
_RESTRICTED_PICKLE.Unpickler = _StandInUnpickler
_RESTRICTED_PICKLE.load = lambda f, **kw: _StandInUnpickler(f, **kw).load()
_RESTRICTED_PICKLE.__version__ = "1"


@dataclass
class OpenRLModuleCheckpoint:
    """What can be recovered from an OpenRL ``module.pt`` without OpenRL itself.

    ``state_dicts`` maps each top-level model ("policy", "critic") to the keys its live
    ``nn.Module.state_dict()`` would have; ``optimizers`` holds torch-format optimizer state
    dicts (``{"state": {index: ...}, "param_groups": [...]}``) where they could be recovered;
    ``config`` holds the plain values of the pickled config namespace (hidden_size, lr, ...).
    """

    path: Path
    state_dicts: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer_param_names: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    module_class: str = ""

    def nonfinite_keys(self) -> list[str]:
        """``model.key`` names of every weight or optimizer tensor holding NaN/Inf."""
        return nonfinite_keys(self.state_dicts) + nonfinite_keys(self.optimizers, "optimizers")

    def all_finite(self) -> bool:
        """True when no weight or optimizer tensor holds NaN/Inf."""
        return not self.nonfinite_keys()


OPENRL_CHECKPOINT_DIR = re.compile(r"^rl_model_(\d+)_steps$")
"""OpenRL's CheckpointCallback directory name; the number is the env steps at the save."""


def openrl_checkpoint_steps(path: Path | str) -> int | None:
    """Env steps in an ``rl_model_<steps>_steps`` directory name (the dir or its ``module.pt``), else None."""
    path = Path(path)
    match = OPENRL_CHECKPOINT_DIR.match(path.parent.name if path.suffix == ".pt" else path.name)
    return int(match.group(1)) if match else None


def read_openrl_module(path: Path | str, *, map_location: Any = "cpu") -> OpenRLModuleCheckpoint:
    """Read an OpenRL ``module.pt`` (or its ``rl_model_*_steps`` dir) without importing openrl.

    Only call this on files the user pointed at: it needs ``weights_only=False``, but the
    unpickler it uses resolves only tensor rebuilders and plain containers, and replaces every
    other class (openrl.*, isaacgym.*, torch.nn layers, argparse namespaces) by an inert stand-in,
    so no code from the file's classes runs.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "module.pt"
    if not path.is_file():
        raise CheckpointError(
            "no such OpenRL checkpoint file", path=str(path),
            hint="pass an rl_model_<steps>_steps directory or its module.pt",
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    except Exception as err:  # noqa: BLE001 - truncated zips, bad pickles, ... all mean "unusable"
        raise CheckpointError(
            f"cannot read OpenRL module.pt ({_one_line(err)})", path=str(path),
            hint="the file is truncated or not written by OpenRL's agent.save(); use another checkpoint",
        ) from None
    models = _attr(obj, "models")
    if not isinstance(models, Mapping) or not models:
        raise CheckpointError(
            f"holds a {getattr(obj, '_qualname', type(obj).__name__)}, not an OpenRL module with .models",
            path=str(path), hint="pass a module.pt written by OpenRL's agent.save()",
        )
    state_dicts: dict[str, dict[str, torch.Tensor]] = {}
    names_by_id: dict[str, dict[int, str]] = {}
    for key, model in models.items():
        state_dicts[key] = collections.OrderedDict(_module_tensors(model, ""))
        names_by_id[key] = {id(p): n for n, p in _module_tensors(model, "", params_only=True)}
    optimizers, param_names = {}, {}
    for key, opt in (_attr(obj, "optimizers") or {}).items():
        recovered = _optimizer_state(opt, names_by_id.get(key, {}))
        if recovered is not None:
            optimizers[key], param_names[key] = recovered
    return OpenRLModuleCheckpoint(
        path=path,
        state_dicts=state_dicts,
        optimizers=optimizers,
        optimizer_param_names=param_names,
        config=_plain_config(_attr(obj, "cfg")),
        module_class=getattr(obj, "_qualname", type(obj).__name__),
    )


def _attr(obj: Any, name: str) -> Any:
    """Attribute of a stand-in or a real object, ``None`` when absent."""
    return obj.__dict__.get(name) if hasattr(obj, "__dict__") else None


def _module_tensors(module: Any, prefix: str, params_only: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """Replay ``nn.Module.state_dict()`` order on a stand-in: params, buffers, tensor attrs, children.

    Plain tensor attributes matter: OpenRL's ``ValueNorm`` wraps its running statistics as
    ``nn.Parameter(...).to(device)``, which on CUDA returns a plain tensor, so in GPU-trained
    checkpoints ``value_normalizer.running_mean`` is an attribute, not a parameter.
    """
    state = module.__dict__ if isinstance(module, _StandIn) else {}
    for name, tensor in (state.get("_parameters") or {}).items():
        if tensor is not None:
            yield prefix + name, tensor
    if not params_only:
        skip = state.get("_non_persistent_buffers_set") or set()
        for name, tensor in (state.get("_buffers") or {}).items():
            if tensor is not None and name not in skip:
                yield prefix + name, tensor
        for name, value in state.items():
            if not name.startswith("_") and isinstance(value, torch.Tensor):
                yield prefix + name, value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            yield from _module_tensors(child, f"{prefix}{name}.", params_only)


def _optimizer_state(opt: Any, names_by_id: dict[int, str]) -> tuple[dict[str, Any], list[str]] | None:
    """Rebuild ``optimizer.state_dict()`` from a pickled optimizer (stand-in or real)."""
    groups = _attr(opt, "param_groups")
    state = _attr(opt, "state")
    if not isinstance(groups, list) or not isinstance(state, Mapping):
        return None
    index: dict[int, int] = {}
    out_groups, names = [], []
    for group in groups:
        params = group.get("params", [])
        for p in params:
            if id(p) not in index:
                index[id(p)] = len(index)
                names.append(names_by_id.get(id(p), f"param{index[id(p)]}"))
        packed = {k: v for k, v in group.items() if k != "params"}
        packed["params"] = [index[id(p)] for p in params]
        out_groups.append(packed)
    by_id = {id(p): s for p, s in state.items()}
    packed_state = {index[i]: dict(s) for i, s in by_id.items() if i in index}
    return {"state": packed_state, "param_groups": out_groups}, names


def _plain_config(cfg: Any) -> dict[str, Any]:
    """The plain (str/int/float/bool/None and lists of them) values of a pickled namespace."""
    values = getattr(cfg, "__dict__", None)
    out = {}
    for key, value in (values or {}).items():
        if key.startswith("_"):
            continue
        if isinstance(value, (str, int, float, bool, type(None))):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            out[key] = list(value)
    return out

