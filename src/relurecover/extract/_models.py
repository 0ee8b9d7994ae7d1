"""Oracles from models: callables, PyTorch modules, scikit-learn, model files (docs/algorithms.md 7).

:func:`as_oracle` turns what a user has into a plain function of an ``(q, d)`` array.
Files are opened safely: a PyTorch state dict with ``torch.load(weights_only=True)``
(the layers read from its keys as ``Linear -> ReLU -> ... -> Linear``), TorchScript with
``torch.jit.load``, ONNX with ``onnxruntime``, scikit-learn through ``skops`` (only
scikit-learn and numpy types trusted), relurecover's own ``.npz``; a whole pickled
module only with ``allow_pickle=True``, because unpickling runs arbitrary code.
:func:`save_like` writes a recovered network back in the format a model came in.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..deep._learn import MissingDependencyError

__all__ = ["as_oracle", "ModelInfo", "save_like", "open_model", "check_writer"]


@dataclass(frozen=True)
class ModelInfo:
    """Where an oracle came from.

    Attributes
    ----------
    kind : str
        ``"callable"``, ``"torch-module"``, ``"state-dict"``, ``"torchscript"``,
        ``"onnx"``, ``"sklearn"``, ``"skops"``, ``"npz"`` or ``"pickle"``.
    dtype : str
        The dtype the model computes in (``"float64"``, ``"float32"``).
    path : str or None
        The file, if any.
    """

    kind: str
    dtype: str = "float64"
    path: str | None = None


def _need(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise MissingDependencyError(
            f"this model format needs {module}: pip install 'relurecover[{extra}]'"
        ) from None


def _torch_oracle(module, torch):
    params = list(module.parameters()) if hasattr(module, "parameters") else []
    dtype = params[0].dtype if params else torch.float64
    d = None
    for mod in module.modules() if hasattr(module, "modules") else []:
        if isinstance(mod, torch.nn.Linear):
            d = mod.in_features
            break
    if d is None:
        # a TorchScript module keeps no nn.Linear: its first 2-D weight's shape
        # (out_features, in_features) declares the input width
        for p in params:
            if p.ndim == 2:
                d = int(p.shape[1])
                break
    module.eval()

    def fn(X):
        with torch.no_grad():
            out = module(torch.as_tensor(X, dtype=dtype))
        return out.detach().cpu().numpy()

    return fn, d, str(dtype).replace("torch.", "")


def _sequential_from_state_dict(sd, torch):
    """``Linear -> ReLU -> ... -> Linear`` whose parameters are the state dict's."""
    weights = [(key, v) for key, v in sd.items() if key.endswith("weight")]
    if not weights:
        raise ValueError("the state dict holds no `*.weight` tensor: not a stack of Linear "
                         "layers.")
    layers = []
    prev = None
    for key, W in weights:
        if W.ndim != 2:
            raise ValueError(f"state dict entry {key!r} has shape {tuple(W.shape)}: only "
                             f"Linear layers (2-D weights) are read.")
        out_f, in_f = W.shape
        if prev is not None and in_f != prev:
            raise ValueError(f"state dict entry {key!r} takes {in_f} inputs but the layer "
                             f"before gives {prev}: not a chain of Linear layers.")
        bkey = key[: -len("weight")] + "bias"
        lin = torch.nn.Linear(in_f, out_f, bias=bkey in sd, dtype=W.dtype)
        with torch.no_grad():
            lin.weight.copy_(W)
            if bkey in sd:
                lin.bias.copy_(sd[bkey])
        if layers:
            layers.append(torch.nn.ReLU())
        layers.append(lin)
        prev = out_f
    return torch.nn.Sequential(*layers)


def _is_torchscript(path) -> bool:
    """A TorchScript archive is a zip holding compiled ``code/`` (a state dict holds none)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def open_model(path, *, allow_pickle: bool = False):
    """Open a model file as ``(callable, d, ModelInfo)`` without unpickling code.

    Parameters
    ----------
    path : str or path-like
        ``.pt`` / ``.pth`` (state dict or TorchScript), ``.onnx``, ``.skops``, ``.npz``.
    allow_pickle : bool, default=False
        Accept a fully pickled PyTorch module (``torch.load(weights_only=False)``),
        which runs whatever code the file holds: only for files you trust.

    Returns
    -------
    tuple
        ``(fn, d, info)``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no model file {os.fspath(p)!r}.")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        from ..networks import load_network

        net = load_network(p)
        d = net.V.shape[1] if hasattr(net, "V") else net.weights[0].shape[1]
        return net.predict, d, ModelInfo("npz", "float64", os.fspath(p))
    if suffix == ".onnx":
        ort = _need("onnxruntime", "onnx")
        sess = ort.InferenceSession(os.fspath(p), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = inp.shape
        d = shape[-1] if shape and isinstance(shape[-1], int) else None
        dtype = np.float64 if "double" in inp.type else np.float32
        name = inp.name

        def fn(X):
            return sess.run(None, {name: np.asarray(X, dtype=dtype)})[0]

        return fn, d, ModelInfo("onnx", np.dtype(dtype).name, os.fspath(p))
    if suffix == ".skops":
        sio = _need("skops", "sklearn").io
        untrusted = sio.get_untrusted_types(file=os.fspath(p))
        unsafe = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if unsafe:
            raise ValueError(f"{os.fspath(p)!r} holds types that are not scikit-learn's or "
                             f"numpy's ({', '.join(unsafe)}); refusing to load them.")
        est = sio.load(os.fspath(p), trusted=untrusted)
        fn, d, _ = _sklearn_oracle(est)
        return fn, d, ModelInfo("skops", "float64", os.fspath(p))
    if suffix in (".pt", ".pth", ".ts", ".torchscript"):
        torch = _need("torch", "torch")
        obj = None
        if not _is_torchscript(p):
            try:
                obj = torch.load(os.fspath(p), map_location="cpu", weights_only=True)
            except Exception:  # not a plain state dict: a pickled module
                obj = None
        if isinstance(obj, dict):
            sd = {k: v for k, v in obj.items() if hasattr(v, "shape")}
            module = _sequential_from_state_dict(sd, torch)
            fn, d, dt = _torch_oracle(module, torch)
            return fn, d, ModelInfo("state-dict", dt, os.fspath(p))
        module = None
        if _is_torchscript(p):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(os.fspath(p), map_location="cpu")
        if module is not None:
            fn, d, dt = _torch_oracle(module, torch)
            return fn, d, ModelInfo("torchscript", dt, os.fspath(p))
        if not allow_pickle:
            raise ValueError(
                f"{os.fspath(p)!r} is neither a state dict nor TorchScript: it is a pickled "
                f"object. Unpickling runs whatever code the file holds; pass "
                f"allow_pickle=True (--allow-pickle) only for a file you trust, or save the "
                f"model's state_dict() instead.")
        module = torch.load(os.fspath(p), map_location="cpu", weights_only=False)
        fn, d, dt = _torch_oracle(module, torch)
        return fn, d, ModelInfo("pickle", dt, os.fspath(p))
    raise ValueError(f"unknown model format {suffix!r}: expected .pt/.pth (state dict or "
                     f"TorchScript), .onnx, .skops or .npz.")


def _sklearn_oracle(est):
    if not hasattr(est, "predict"):
        raise TypeError(f"{type(est).__name__} has no predict method.")
    d = getattr(est, "n_features_in_", None)

    def fn(X):
        return est.predict(X)

    return fn, d, "float64"


def as_oracle(oracle, d=None, *, allow_pickle: bool = False):
    """Turn a model into ``(fn, d, ModelInfo)`` for :func:`relurecover.extract`.

    Parameters
    ----------
    oracle : callable, torch.nn.Module, fitted scikit-learn estimator or path
        What to query.
    d : int, optional
        Input dimension; read from the model's declared input shape when omitted.
    allow_pickle : bool, default=False
        See :func:`open_model`.

    Returns
    -------
    tuple
        ``(fn, d, info)``: ``fn`` maps an ``(q, d)`` float64 array to outputs.
    """
    info = ModelInfo("callable")
    fn = oracle
    found_d = None
    if isinstance(oracle, (str, os.PathLike)):
        fn, found_d, info = open_model(oracle, allow_pickle=allow_pickle)
    else:
        torch = None
        try:
            import torch  # noqa: F401
        except ImportError:
            torch = None
        if torch is not None and isinstance(oracle, torch.nn.Module):
            fn, found_d, dt = _torch_oracle(oracle, torch)
            info = ModelInfo("torch-module", dt)
        elif hasattr(oracle, "predict") and hasattr(oracle, "n_features_in_"):
            fn, found_d, dt = _sklearn_oracle(oracle)
            info = ModelInfo("sklearn", dt)
        elif not callable(oracle):
            raise TypeError(f"cannot query a {type(oracle).__name__}: pass a callable, a "
                            f"torch.nn.Module, a fitted scikit-learn estimator or a model "
                            f"file.")
    if d is None:
        d = found_d
    elif found_d is not None and int(d) != int(found_d):
        raise ValueError(f"`d` = {d} but the model takes {found_d} inputs.")
    if d is None:
        raise ValueError("the input dimension `d` is needed: the oracle is a plain callable "
                         "with no declared input shape.")
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"`d` must be a positive integer, got {d!r}.")
    return fn, int(d), info


#: what writing each format needs (module, extra)
_WRITERS = {".pt": [("torch", "torch")], ".pth": [("torch", "torch")],
            ".ts": [("torch", "torch")], ".torchscript": [("torch", "torch")],
            ".onnx": [("torch", "torch"), ("onnx", "onnx"), ("onnxscript", "onnx")],
            ".skops": [("sklearn", "sklearn"), ("skops", "sklearn")], ".npz": []}


def check_writer(path) -> None:
    """Raise :class:`MissingDependencyError` when writing ``path`` needs a missing extra.

    For the command line, which checks ``--out`` before any work.
    """
    for module, extra in _WRITERS.get(Path(path).suffix.lower(), []):
        _need(module, extra)


def save_like(network, path, info: ModelInfo):
    """Write ``network`` to ``path`` in the format of the model it was extracted from.

    Parameters
    ----------
    network : TwoLayerNetwork
        The recovered network.
    path : str or path-like
        Destination; its suffix picks the format (``.npz``, ``.onnx``, ``.skops``,
        ``.pt`` / ``.pth``: a state dict, or TorchScript when the source was TorchScript).
    info : ModelInfo
        Where the source came from (sets the dtype and the ``.pt`` flavour).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    dtype = info.dtype if info.dtype in ("float32", "float64") else "float64"
    if suffix == ".npz":
        network.save(p)
        return p
    if suffix == ".onnx":
        from ..formats import to_onnx

        to_onnx(network, p, dtype=np.dtype(dtype))
        return p
    if suffix == ".skops":
        sio = _need("skops", "sklearn").io
        sio.dump(network.to_mlp(), os.fspath(p))
        return p
    if suffix in (".pt", ".pth", ".ts", ".torchscript"):
        torch = _need("torch", "torch")
        module = network.to_torch(dtype=getattr(torch, dtype))
        if info.kind == "torchscript" or suffix in (".ts", ".torchscript"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.script(module).save(os.fspath(p))
        else:
            torch.save(module.state_dict(), os.fspath(p))
        return p
    raise ValueError(f"cannot write a model as {suffix!r}: use .npz, .pt, .onnx or .skops.")
