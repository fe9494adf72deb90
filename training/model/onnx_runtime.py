"""The CPU path: a model folder exported to ONNX, quantized to dynamic int8, run by ONNX Runtime.

Why: on a CPU the int8 model answers several times faster than torch fp32 at batch 1 and about twice
as fast at batch 16 (BERT-base shape, 2 threads: `python -m training.bench.runtime`, docs/benchmarks.md),
and faster than torch's own dynamic int8, whose torch.ao.quantization API is deprecated. Quantization
costs some accuracy, so `heara evaluate` measures the int8 model on the frozen test split
(`INT8_MACRO_F1`, `INT8_MACRO_F1_DROP`) and the service serves it only when the drop is within
`serve.max_quantization_drop`.

Export happens once per model folder and environment, into a folder named by a stamp (a hash of the
weights and config plus the versions of the tools that made the file):

    <model_dir>/onnx/<stamp key>/model.int8.onnx   the quantized model
    <model_dir>/onnx/<stamp key>/stamp.json        what the key was computed from (for people)

A changed model (new weights) or an upgraded torch / transformers / onnx / onnxruntime gives a new key,
so it is exported again; nothing has to read and compare the stamp. The files are written into a
private temporary folder and renamed into place in one step: two processes exporting at once both
finish, one rename wins, and no process ever sees half a file. When the model folder is not writable
(a read-only bento or mount) the cache lives under the state folder instead, keyed by the same stamp.

`heara evaluate` runs before `heara register`, so the registered model carries the very int8 file whose
drop was measured, and a service with the same locked versions loads it without exporting.

The drop is measured with the evaluating host's int8 kernels. ONNX Runtime documents that on x86 CPUs
with AVX2/AVX512 but without VNNI the u8s8 kernels can saturate, so a serving host of an older CPU
generation than the evaluating one may score somewhat lower than the figure says.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from training.model.predictor import META_FILE
from training.paths import StatePaths, state

log = logging.getLogger(__name__)

# Metric names `heara evaluate` logs and the service reads back from the run (ModelSource.metrics keeps
# the run's metrics that start with "test_").
INT8_MACRO_F1 = "test_macro_f1_int8"
INT8_MACRO_F1_DROP = "test_int8_macro_f1_drop"  # fp32 macro-F1 minus int8 macro-F1 (positive: int8 worse)

CACHE_DIR = "onnx"
MODEL_FILE = "model.int8.onnx"
STAMP_FILE = "stamp.json"
# Bump when the recipe below changes (inputs, opset, quantization settings): every cached file then
# goes stale, as it does when a tool's version changes.
RECIPE = 1
OPSET = 17  # the TorchScript exporter's well-trodden opset for BERT graphs; ONNX Runtime runs it natively
TOOLS = ("torch", "transformers", "onnx", "onnxruntime")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def weights_digest(model_dir: Path) -> str:
    """SHA-256 over config.json and the weight files (name and content): what the ONNX graph is made of.

    The tokenizer, label names and preprocessing do not enter the graph, so changing them needs no export.
    """
    files = [model_dir / "config.json"] + sorted(
        p for p in model_dir.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES
    )
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def export_stamp(model_dir: Path, tool_versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What an exported file depends on: the weights, the recipe and the tools' versions.

    Versions without their local label ("2.13.0+cpu" -> "2.13.0"): the CPU and CUDA builds of a torch
    release export the same graph, so a model evaluated on a GPU host keeps its file on a CPU host.
    """
    if tool_versions is None:
        tool_versions = {name: version(name) for name in TOOLS}
    tools = {name: v.split("+", 1)[0] for name, v in tool_versions.items()}
    return {"recipe": RECIPE, "opset": OPSET, "weights_sha256": weights_digest(model_dir), **tools}


def stamp_key(stamp: Mapping[str, Any]) -> str:
    """The cache folder's name: 16 hex digits of the stamp's hash (64 bits: no collision to fear)."""
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def int8_model(model_dir: Path | str, *, model: Any = None, paths: StatePaths | None = None) -> Path:
    """The int8 ONNX file of a Heara model folder, exported and quantized on first use, then cached.

    Looked up beside the model, then under the state folder; exported beside the model when the folder
    is writable, else under the state folder. `model`: the folder's classifier if already loaded, to spare
    loading it again when an export is needed (used when it is in fp32 on the CPU; it is only read).
    """
    model_dir = Path(model_dir).resolve()
    stamp = export_stamp(model_dir)
    key = stamp_key(stamp)
    beside, shared = model_dir / CACHE_DIR, (paths or state()).onnx_cache
    for root in (beside, shared):
        if (root / key / MODEL_FILE).is_file():
            return root / key / MODEL_FILE
    if _writable(model_dir):
        try:
            _export_into(model_dir, beside / key, stamp, model)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # writable by its mode bits, yet not in fact (a read-only mount): use the state folder
        else:
            _prune_other_weights(beside, stamp["weights_sha256"])
            return beside / key / MODEL_FILE
    _export_into(model_dir, shared / key, stamp, model)
    return shared / key / MODEL_FILE


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _export_into(model_dir: Path, target: Path, stamp: dict[str, Any], model: Any) -> None:
    """Export and quantize in a private folder beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        fp32 = tmp / "model.fp32.onnx"
        export_fp32(_fp32_classifier(model_dir, model), fp32, type_ids=takes_type_ids(model_dir))
        quantize_int8(fp32, tmp / MODEL_FILE)
        fp32.unlink()
        (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:  # another process renamed its (identical) export first: keep that one
            if not (target / MODEL_FILE).is_file():
                raise
        log.info("exported %s to ONNX int8 in %.1f s: %s", model_dir, time.perf_counter() - t0, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune_other_weights(root: Path, weights_sha256: str) -> None:
    """Remove the exports beside a model of weights it no longer has (a model saved over the folder).

    Exports of the same weights by other tool versions stay: another environment may share the folder.
    (The state folder's cache holds many models' exports side by side and is never pruned here.)
    """
    for folder in root.iterdir():
        stamp_path = folder / STAMP_FILE
        if folder.name.startswith(".") or not stamp_path.is_file():
            continue
        try:
            stale = json.loads(stamp_path.read_text(encoding="utf-8")).get("weights_sha256") != weights_sha256
        except (OSError, ValueError):
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def takes_type_ids(model_dir: Path) -> bool:
    """Whether the folder's tokenizer emits token_type_ids (BERT does, RoBERTa-style models do not):
    the test `training.model.encoding.encode` makes, so the graph's inputs match what `collate` feeds."""
    from training.model.tokenizer import load_tokenizer

    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    return "token_type_ids" in load_tokenizer(model_dir, meta["family"])(["가"])


def _fp32_classifier(model_dir: Path, model: Any) -> Any:
    """`model` when it is the folder's classifier in fp32 on the CPU, else the one loaded from the files
    (a GPU predictor holds a bf16 copy: heara evaluate on a GPU host)."""
    import torch

    param = next(model.parameters(), None) if model is not None else None
    if param is not None and param.dtype == torch.float32 and param.device.type == "cpu":
        return model
    from transformers import AutoModelForSequenceClassification

    from training.model.build import transformers_quiet

    with transformers_quiet():
        return AutoModelForSequenceClassification.from_pretrained(model_dir)


def export_fp32(model: Any, out: Path, *, type_ids: bool) -> Path:
    """A sequence classifier (fp32, CPU) as an ONNX graph with dynamic batch and sequence axes.

    Inputs input_ids, attention_mask (and token_type_ids when `type_ids`), int64 [batch, seq];
    output logits, float32 [batch, labels].
    """
    import torch

    model = model.eval()
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if type_ids else [])
    # Two rows, the second padded: a trace taken on an all-ones mask could leave the mask out of the graph.
    ids = (torch.arange(16, dtype=torch.long).reshape(2, 8) + 5) % int(model.config.vocab_size)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    axes = {name: {0: "batch", 1: "seq"} for name in names}
    # The TorchScript exporter (dynamo=False), although deprecated since torch 2.9: on BERT-base it exports
    # in ~10 s against ~31 s for the torch.export-based one, needs no onnxscript (a further dependency),
    # and an encoder without data-dependent control flow traces exactly (tests compare padded batches of
    # other shapes with torch). Its deprecation and tracer warnings are expected here and silenced.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            model,
            example,
            str(out),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return out


class _QuantizerChatter(logging.Filter):
    """Drops what ONNX Runtime's quantizer logs below ERROR: it logs on the root logger, so it would reach
    every handler of the service and of `heara evaluate`.

    For each export it logs a line per tensor it leaves in float (INFO, dozens on BERT-base) and advice
    to run its pre-processing first (WARNING). That pre-processing's symbolic shape inference fails on
    the exported BERT graph, and what quantization costs is measured by `heara evaluate` instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or f"onnxruntime{os.sep}quantization" not in record.pathname


def quantize_int8(fp32: Path, out: Path) -> Path:
    """Dynamic int8 quantization: int8 weights (per tensor), activations quantized per batch at run time.

    Dynamic, not static, because it needs no calibration data and suits transformer encoders, whose
    activation ranges vary with each input.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    if not any(isinstance(f, _QuantizerChatter) for f in root.filters):
        root.addFilter(_QuantizerChatter())
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    return out


def intra_op_threads() -> int:
    """torch's intra-op thread count, so that both runtimes use the same share of the CPU.

    torch already follows OMP_NUM_THREADS and the process's CPU allowance; ONNX Runtime's own default is
    every physical core, which oversubscribes a host that runs several workers (or other services), and
    would make the torch / int8 comparison unfair. One setting then governs both.
    """
    import torch

    return max(1, torch.get_num_threads())


class Int8Runner:
    """The int8 model in an ONNX Runtime session: a collated batch in, logits (numpy) out.

    It plays the torch model's part in `serving.inference.Classifier.predict_proba`: it takes the dict
    `training.model.encoding.collate` builds (torch tensors or numpy arrays) and feeds the inputs the
    graph has, so a "labels" entry or token_type_ids for a model without them are ignored.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or intra_op_threads()
        options.inter_op_num_threads = 1  # one sequential graph: no parallel branches to run
        # Idle pool threads sleep instead of spinning: in the service they share the cores with the
        # event loop, and spinning took a third of the CPU from it (tiny champion, 2 cores: 496 -> 537
        # requests/s, p99 94 -> 80 ms, server CPU 37.6 -> 24.1 s in 23 s; docs/benchmarks.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings are about graph optimisation choices
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    @classmethod
    def load(cls, model_dir: Path | str, *, model: Any = None, threads: int | None = None) -> Int8Runner:
        """The runner of a Heara model folder (exported and quantized first when not cached)."""
        return cls(int8_model(model_dir, model=model), threads)

    def __call__(self, batch: Mapping[str, Any]) -> np.ndarray:
        """Logits float32 [rows, labels] of a batch holding input_ids, attention_mask (and token_type_ids)."""
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise ValueError(f"the int8 model needs {missing}; the batch has {sorted(batch)}")
        feed = {name: np.asarray(_numpy(batch[name]), dtype=np.int64) for name in self.input_names}
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
