"""What `heara monitor` costs on a window of logged predictions (issue #12's target: 10,000 in under 30 s
on 2 cores).

The sample data is prepared into a temporary folder (augmentation off), a tiny KoBERT-format model is
built on its train split (untrained: the cost does not depend on the weights) and registered's reference
written beside it; `--window` predictions of sample texts (drawn with replacement) are made by the
service's own Classifier, in batches of 32 as under load, capturing the monitoring features the service
logs (`monitor.log_features`), and written to a SQLite prediction log through the service's own
PredictionLog, whose writer computes the descriptors. Then the window is read back and judged by
`monitor_step`, as `heara monitor` does (MLflow logging off), twice side by side:
- logged: with the projection and descriptors the service logged (what `heara monitor` does now);
- recomputed: the same rows without them (a log written before the service logged them), every row's
  features computed from the masked text; its parts are timed once more alone: preprocessing (Kiwi
  re-spacing), descriptors, embedding and projection, the statistics.
Beside them, what capturing the features cost the classifier itself (the same batches without it).

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

    from serving.inference import Classifier
    from serving.predlog import PredictionLog, make_records
    from serving.schemas import pop_features
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
        clf = Classifier.load(model_dir, params.serve.max_tokens_per_batch, "cpu", log_features=True)
        clf.predictor._preprocessor = predictor.preprocessor  # Kiwi loaded once
        plain = Classifier(clf.predictor, clf.max_tokens)  # the same model, capturing nothing
        scored, features, capture_s, plain_s = [], [], 0.0, 0.0
        for start in range(0, window, 32):
            out, seconds = _timed(clf.predict, texts[start : start + 32])
            capture_s += seconds
            plain_s += _timed(plain.predict, texts[start : start + 32])[1]
            features += pop_features(out)
            scored += out
        db = work / "predictions.sqlite"
        log = PredictionLog(f"sqlite:///{db}")
        t0 = time.perf_counter()
        for start in range(0, window, 500):
            chunk = slice(start, start + 500)
            rid, part = f"{start:016x}", features[chunk]
            log.log(make_records(rid, texts[chunk], scored[chunk], "heara-danger", "1", 1.0, features=part))
        log.close()
        write_s = time.perf_counter() - t0  # the writer thread: descriptors and inserts

        cfg = params.monitor.model_copy(update={"window": window})
        run_params = params.model_copy(update={"monitor": cfg})
        reader = PredictionLog(f"sqlite:///{db}")
        rows, read_s = _timed(reader.window, window, model_version="1")
        reader.close()
        frame = pd.DataFrame(rows)
        steps = {}
        bare = frame.drop(columns=["projection", "descriptors"])  # as if the service had logged none
        for path, judged in (("logged", frame), ("computed", bare)):
            steps[path] = _timed(
                monitor_step,
                run_params,
                judged,
                model_dir=model_dir,
                version="1",
                out_dir=work / f"report-{path}",
                log_to_mlflow=False,
            )
        logged, decode_s = _timed(
            monitoring.Logged.from_rows,
            frame["projection"].tolist(),
            frame["descriptors"].tolist(),
            len(frame),
            ref.components.shape[0],
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
        _, logged_stats_s = _timed(
            monitoring.window_signals,
            ref,
            probs=probs,
            descriptors=logged.descriptors,
            projection=logged.projection,
            cfg=cfg,
        )
    (record, step_s), (computed_record, computed_s) = steps["logged"], steps["computed"]
    return {
        "window": window,
        "rows_read": len(rows),
        "reference_rows": int(len(ref.probs)),
        "build_reference_s": round(reference_s, 2),
        "read_log_s": round(read_s, 2),
        "monitor_step_s": round(step_s, 2),
        "features": record["features"],
        "logged_parts_s": {"decode": round(decode_s, 2), "statistics": round(logged_stats_s, 2)},
        "total_s": round(read_s + step_s, 2),
        "computed_monitor_step_s": round(computed_s, 2),
        "computed_features": computed_record["features"],
        "parts_s": {
            "preprocess": round(preprocess_s, 2),
            "descriptors": round(descriptors_s, 2),
            "embed": round(embed_s, 2),
            "statistics": round(stats_s, 2),
        },
        "computed_total_s": round(read_s + computed_s, 2),
        "target_s": 30,
        "window_alarm": record["window_alarm"],
        "computed_window_alarm": computed_record["window_alarm"],
        "capture": {  # the service's side, without HTTP: classifying the window in batches of 32
            "classify_s": round(plain_s, 2),
            "classify_with_features_s": round(capture_s, 2),
            "write_log_s": round(write_s, 2),  # the writer thread, off the request path
        },
    }


def _row(label: str, logged: float | None, computed: float | None) -> str:
    cells = [f"{v:>10.2f} s" if v is not None else f"{'-':>12}" for v in (logged, computed)]
    return f"  {label:<30}{cells[0]:>16}{cells[1]:>14}"


def main(window: int = 10_000) -> dict[str, Any]:
    r = run(window)
    print(f"heara monitor on {r['window']} logged predictions (2-core CPU, tiny model)")
    print(f"  {'':<30}{'logged features':>16}{'recomputed':>14}")
    print(_row("read the prediction log", r["read_log_s"], r["read_log_s"]))
    print(_row("monitor_step (all of it)", r["monitor_step_s"], r["computed_monitor_step_s"]))
    print(_row("  decode the logged features", r["logged_parts_s"]["decode"], None))
    for part, seconds in r["parts_s"].items():
        print(_row(f"  {part}", r["logged_parts_s"]["statistics"] if part == "statistics" else None, seconds))
    print(_row("total", r["total_s"], r["computed_total_s"]) + f"  (target < {r['target_s']} s)")
    for name, counts in r["features"].items():
        print(f"  {name}: {counts['logged']} rows logged, {counts['computed']} computed (recomputed: all)")
    c = r["capture"]
    print(
        f"  the service's side: classifying in batches of 32 {c['classify_s']:.2f} s, capturing the features "
        f"too {c['classify_with_features_s']:.2f} s; the log's writer (descriptors) {c['write_log_s']:.2f} s"
    )
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
