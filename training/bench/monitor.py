"""What `heara monitor` costs on a window of logged predictions (issue #12's target: 10,000 in under 30 s
on 2 cores).

The sample data is prepared into a temporary folder (augmentation off), a tiny KoBERT-format model is
built on its train split (untrained: the cost does not depend on the weights) and registered's reference
written beside it; `--window` predictions of sample texts (drawn with replacement) are written to a SQLite
prediction log through the service's own PredictionLog. Then the window is read back and judged by
`monitor_step`, as `heara monitor` does (MLflow logging off), and its parts are timed once more alone:
reading the log, preprocessing (Kiwi re-spacing), descriptors, embedding and projection, the statistics.

    heara bench monitor [--window 10000]      # or: python -m training.bench.monitor
Prints a table, then one JSON line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.paths import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "data" / "sample" / "utterances.csv"


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run(window: int = 10_000, seed: int = 0) -> dict[str, Any]:
    import torch

    from serving.predlog import PredictionLog, make_records
    from training.config import load_params
    from training.evaluation import monitoring
    from training.model.build import build_model
    from training.model.predictor import Predictor, save_model_dir
    from training.steps.monitor import monitor_step
    from training.steps.prepare import prepare
    from training.steps.register import sent_texts
    from training.steps.workspace import DataFiles

    torch.set_num_threads(2)
    params = load_params(overrides={"augment": {"enabled": False}, "train": {"device": "cpu"}})
    with tempfile.TemporaryDirectory(prefix="heara-bench-monitor-") as tmp:
        work = Path(tmp)
        prepare(params, SAMPLE, work / "data")
        files = DataFiles.from_dir(work / "data")
        splits = files.load()
        model, tokenizer, base = build_model(
            params.model, list(params.labels), splits["train"]["text"].tolist(), work / "base", seed=seed
        )
        model_dir = save_model_dir(
            model,
            tokenizer,
            work / "model",
            task=params.task,
            family=params.model.family,
            labels=list(params.labels),
            max_length=params.model.max_length,
            preprocess=params.preprocess,
            base_model=base,
        )
        predictor = Predictor.load(model_dir, device="cpu")
        ref, reference_s = _timed(
            monitoring.build_reference,
            predictor,
            train_texts=splits["train"]["text"].tolist(),
            val_texts=splits["val"]["text"].tolist(),
            val_labels=splits["val"]["label"].tolist(),
            val_sent_texts=sent_texts(files, splits["val"]),
            cfg=params.monitor,
        )
        ref.save(model_dir)

        texts = pd.read_csv(SAMPLE)["text"].sample(window, replace=True, random_state=seed).tolist()
        scored = predictor.predict(texts)
        db = work / "predictions.sqlite"
        log = PredictionLog(f"sqlite:///{db}")
        for start in range(0, window, 500):
            chunk = slice(start, start + 500)
            log.log(make_records(f"{start:016x}", texts[chunk], scored[chunk], "heara-danger", "1", 1.0))
        log.close()

        cfg = params.monitor.model_copy(update={"window": window})
        run_params = params.model_copy(update={"monitor": cfg})
        reader = PredictionLog(f"sqlite:///{db}")
        rows, read_s = _timed(reader.window, window, model_version="1")
        reader.close()
        frame = pd.DataFrame(rows)
        record, step_s = _timed(
            monitor_step,
            run_params,
            frame,
            model_dir=model_dir,
            version="1",
            out_dir=work / "report",
            log_to_mlflow=False,
        )
        masked = frame["masked_text"].astype(str).tolist()
        clean, preprocess_s = _timed(predictor.preprocessor, masked)
        desc, descriptors_s = _timed(monitoring.text_descriptors, predictor, masked, clean)
        emb, embed_s = _timed(predictor.embed, clean, preprocessed=True)
        projection = monitoring.project(emb, ref.components)
        probs = np.array([[s[lab] for lab in ref.labels] for s in frame["scores"]], dtype=np.float32)
        _, stats_s = _timed(
            monitoring.window_signals, ref, probs=probs, descriptors=desc, projection=projection, cfg=cfg
        )
    return {
        "window": window,
        "rows_read": len(rows),
        "reference_rows": int(len(ref.probs)),
        "build_reference_s": round(reference_s, 2),
        "read_log_s": round(read_s, 2),
        "monitor_step_s": round(step_s, 2),
        "parts_s": {
            "preprocess": round(preprocess_s, 2),
            "descriptors": round(descriptors_s, 2),
            "embed": round(embed_s, 2),
            "statistics": round(stats_s, 2),
        },
        "total_s": round(read_s + step_s, 2),
        "target_s": 30,
        "window_alarm": record["window_alarm"],
    }


def main(window: int = 10_000) -> dict[str, Any]:
    result = run(window)
    print(f"heara monitor on {result['window']} logged predictions (2-core CPU, tiny model)")
    print(f"  read the prediction log      {result['read_log_s']:>7.2f} s")
    print(f"  monitor_step (all of it)     {result['monitor_step_s']:>7.2f} s")
    for part, s in result["parts_s"].items():
        print(f"    {part:<26} {s:>7.2f} s")
    print(f"  total                        {result['total_s']:>7.2f} s  (target < {result['target_s']} s)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
