"""Heara: everything from labeled Korean utterances up to a registered model.

Code map, in layer order: imports go down this list, each entry using only what is listed above it
(steps also use other steps). tests/code/test_layers.py enforces that; tests/code/test_code_maps.py
that this map names every core module and subpackage, and nothing that is not there.

Core (imports only core):
  config.py         the typed view of params.yaml: every section's types, bounds and help
  paths.py          every filesystem location; what lives under $HEARA_HOME comes from StatePaths
  env.py            every HEARA_* environment variable, in one table; the only module that reads them
  errors.py         the one error hierarchy: a HearaError is one line and exit code 2, not a traceback
  pii.py            personal-data masking (phone, card, account and resident numbers, emails, URLs)
  logs.py           logging set-up, with personal data masked in every record

Library (data -> model -> trainer, evaluation -> registry; none imports steps, adapters or serving):
  data/             read, validate, preprocess, split and augment labeled utterances; reports, card;
                    labels.py: a multi-label task's label column (label sets, thresholds);
                    descriptors.py: Korean text descriptors (spacing, jamo, emoji, PII, UNK) for drift
  model/            KoBERT tokenizer, tiny profile, the classifier, encoding, the model folder and its
                    Predictor (any family; base.py: what they share), projection.py (the embedding
                    projection monitoring compares, as the service logs it), the linear family (TF-IDF +
                    logistic regression), the MLflow pyfunc, the int8 ONNX export and runner (the CPU path),
                    explanations (explain.py: Integrated Gradients, exact linear contributions, occlusion)
  trainer/          the training loop (CPU, one GPU, torchrun), batching, checkpoints; the linear fit
  evaluation/       metrics (multilabel.py: micro/macro/samples-F1, Hamming loss), calibration, robustness
                    slices, plots, the TF-IDF baseline (cached per split for the gate), int8's drop, the
                    leaderboard of a comparison of model families, the explanations' faithfulness
                    (comprehensiveness, sufficiency) and explanations.html; drift.py: drift statistics
                    (PSI, KS, label shift, MMD, domain classifier), temperature, estimated F1, persistence;
                    monitoring.py: the reference stored with a model and one window's drift signals;
                    review.py: which served predictions people label (strata), the holdout's macro-F1
  registry/         MLflow tracking and aliases, the promotion gate's rule, the audit ledger, the champion
                    and the smoke test a version passes before it may become champion

Steps (import core and library):
  steps/            one module per pipeline verb: ingest, validate, preprocess, split, augment (prepare
                    runs them in order), train, evaluate, register, promote, rollback, predict, monitor
                    (a window of served predictions against the version's reference), review (picks for
                    the review queue, the export of labels, the production holdout); compare
                    (several model families and seeds on one frozen split); sweep (a hyperparameter search
                    with Optuna, scored on validation, its best as an overlay)

Adapters (thin callers of the steps; may import anything, serving included):
  cli/              the `heara` command, one module per command group
  orchestration/    the task bodies the Airflow DAGs in dags/ call (retrain, sweep, monitor, review), the
                    trigger forms, local Airflow
  bench/            benchmarks: preprocessing speed, training throughput, serving load (wrk; vs Flask,
                    MLflow), CPU inference (torch fp32 vs int8 ONNX), the cost of explanations and of
                    monitoring a window

The BentoML service is the separate package serving/, beside this one; it imports only model/,
data/preprocess.py, registry/ and core from here.
"""

__version__ = "0.1.0"
