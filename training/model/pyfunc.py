"""The MLflow pyfunc model: raw texts in, label and scores out.

It carries the Heara model folder (weights, tokenizer, label map, preprocessing config) as an
artifact and the `training` package as code, so `mlflow.pyfunc.load_model` works anywhere the
pinned requirements are installed. A custom PythonModel avoids two MLflow traps: the pytorch
flavor's torch.export default and the transformers flavor's torchvision import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from training.model.base import read_meta, task_type_of
from training.paths import PROJECT_ROOT

RUNTIME_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "sentencepiece",
    "protobuf",
    "kiwipiepy",
    "numpy",
    "scikit-learn",
    "joblib",
    "pandas",
    "pydantic",
    "pyyaml",
    "mlflow",
    "huggingface-hub",
    "safetensors",
)


class HearaModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around `training.model.predictor.Predictor`."""

    def load_context(self, context: Any) -> None:
        from training.model.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts["model_dir"])

    # No type hints on model_input: MLflow would try (and fail) to derive a schema from them; the
    # signature logged with the model describes the input instead.
    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            texts = (
                model_input["text" if "text" in model_input else model_input.columns[0]].astype(str).tolist()
            )
        else:
            texts = [str(t) for t in model_input]
        probs = self.predictor.predict_proba(texts)
        labels = self.predictor.labels
        # All columns at once: one insert per label fragments the frame (hundreds of labels, a warning each).
        columns = {
            "label": [labels[i] for i in probs.argmax(axis=1)],
            "score": probs.max(axis=1).astype(float),
        }
        columns.update({f"prob_{lab}": probs[:, j].astype(float) for j, lab in enumerate(labels)})
        out = pd.DataFrame(columns)
        if self.predictor.multilabel:  # every label at or above its threshold, comma-separated
            out["labels"] = [",".join(self.predictor.passing(p)) for p in probs]
        return out


def log_pyfunc(model_dir: Path, labels: list[str], example_texts: list[str]) -> Any:
    """Log the model folder as a pyfunc under the active run, with a signature and an input example."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema(
            [ColSpec("string", "label"), ColSpec("double", "score")]
            + [ColSpec("double", f"prob_{lab}") for lab in labels]
            + ([ColSpec("string", "labels")] if task_type_of(read_meta(model_dir)) == "multilabel" else [])
        ),
    )
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=HearaModel(),
        artifacts={"model_dir": str(model_dir)},
        code_paths=[str(PROJECT_ROOT / "training")],
        signature=signature,
        input_example=pd.DataFrame({"text": example_texts[:3]}),
        pip_requirements=package_versions(*RUNTIME_PACKAGES),
    )


def package_versions(*names: str) -> list[str]:
    """Pinned requirements for the logged model (the local "+cpu" label dropped: a GPU host
    installs the CUDA build of the same version)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return pins
