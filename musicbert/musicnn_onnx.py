"""musicnn on ONNX Runtime: the same network and weights, 1.7x less CPU per patch.

On a CPU, ONNX Runtime runs musicnn's convolutions in ~31 ms per 3 s patch and model
where torch's oneDNN path takes ~55 ms (one thread, AMD EPYC, batch 8), with outputs
equal to float rounding (``tests/test_musicnn_onnx.py``). The torch module stays the
definition: it is exported once per weights digest into ``cache_dir("musicnn")``
(``torch.onnx.export``, which needs the ``onnx`` package) and loaded from there.

``onnx_musicnn`` returns None, and the caller keeps the torch module, when onnxruntime
or onnx is missing, the export fails, ``MUSICBERT_MUSICNN_BACKEND=torch`` is set, or
the device is not the CPU (a GPU runs torch).
"""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from musicbert.logmel import N_MELS, PATCH_FRAMES
from musicbert.musicnn import Musicnn, MusicnnOutput

#: Bump when the export changes: the cached file name holds it.
EXPORT_VERSION = 2
#: ONNX operator set of the export (ONNX Runtime 1.32 runs 7-23).
OPSET = 17
#: "torch" keeps the torch module everywhere (benchmarks compare the two with it).
BACKEND_ENV = "MUSICBERT_MUSICNN_BACKEND"
OUTPUTS = ("logits", "tag_probs", "penultimate", "mean_pool", "max_pool")


class _Outputs(torch.nn.Module):
    """The export wrapper: musicnn's five outputs as a tuple."""

    def __init__(self, model: Musicnn) -> None:
        super().__init__()
        self.model = model

    def forward(self, patches: torch.Tensor):
        out = self.model(patches)
        return tuple(getattr(out, name) for name in OUTPUTS)


def weights_digest(model: Musicnn) -> str:
    """A digest of the model's weights and buffers, the torch version and the opset."""
    digest = hashlib.sha256(f"{torch.__version__} opset {OPSET} v{EXPORT_VERSION}".encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export(model: Musicnn, path: Path) -> Path:
    """Write ``model`` (eval mode) as ONNX to ``path`` atomically; returns ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    # The spectral convolutions keep channels-last weights (faster in torch); the exporter
    # writes such a tensor's storage as if it were contiguous, scrambling it: export a
    # copy with contiguous weights (the test compares the outputs with torch's).
    model = copy.deepcopy(model)
    for param in model.parameters():
        param.data = param.data.contiguous()
    example = torch.zeros(2, PATCH_FRAMES, N_MELS)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Outputs(model.eval()),
            (example,),
            str(tmp),
            input_names=["x"],
            output_names=list(OUTPUTS),
            dynamic_axes={"x": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUTS}},
            opset_version=OPSET,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


class OnnxMusicnn:
    """Callable like ``Musicnn`` (patches -> ``MusicnnOutput``), run by ONNX Runtime."""

    def __init__(self, model: Musicnn, session) -> None:
        self.name = model.name
        self.tags = model.tags
        self.session = session

    def __call__(self, patches: torch.Tensor) -> MusicnnOutput:
        x = np.ascontiguousarray(patches.detach().cpu().numpy(), dtype=np.float32)
        values = self.session.run(list(OUTPUTS), {"x": x})
        return MusicnnOutput(**{n: torch.from_numpy(v) for n, v in zip(OUTPUTS, values)})  # noqa: B905


def onnx_musicnn(model: Musicnn, device: torch.device, threads: int | None = None):
    """``model`` on ONNX Runtime (an ``OnnxMusicnn``), or None to keep torch (see module doc).

    ``threads``: ONNX Runtime's threads for this session (default: torch's thread count,
    so a worker process that runs torch with one thread runs this with one).
    """
    if torch.device(device).type != "cpu" or os.environ.get(BACKEND_ENV, "") == "torch":
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from musicbert.paths import cache_dir

    try:
        path = cache_dir("musicnn") / f"{model.name}-{weights_digest(model)}.onnx"
        if not path.is_file():
            import onnx  # noqa: F401  (torch's exporter needs it; say nothing when it is absent)

            export(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # no onnx, a failed export, an unreadable file: torch runs it
        return None
    return OnnxMusicnn(model, session)
