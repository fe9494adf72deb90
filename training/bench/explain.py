"""What an explanation costs, and what explanation load costs /classify.

1. In process, per text (preprocessing included), p50 and p95 over the same sample texts:
   Integrated Gradients (explain.n_steps) on the tiny shape and on BERT-base's shape (KoBERT's vocabulary,
   random weights: speed only), beside occlusion on the same models and the linear family's exact
   contributions (fitted on the sample).
2. Over HTTP, on a real `bentoml serve` of the tiny model: /classify latency from one client alone; beside
   a process computing explanations without pause (the explanation work alone, no HTTP); then while N
   client processes send /explain without pause, for each N of `--explain-clients` (the service computes
   explain.max_concurrency at once and refuses beyond explain.max_waiting with 503), with /explain's own
   latency.

    heara bench explain            # or: python -m training.bench.explain
Prints a table, then one JSON line.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.config import ExplainConfig, LinearConfig, ModelConfig, PreprocessConfig
from training.paths import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "data" / "sample" / "utterances.csv"
LABELS = ["normal", "emergency", "confusion", "distress"]


def _percentiles(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms or [float("nan")])
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
    }


def _time(explainer, texts: list[str]) -> dict[str, float]:
    explainer.explain(texts[0])  # warm-up (Kiwi, allocator)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        explainer.explain(text)
        times.append((time.perf_counter() - t0) * 1000)
    return {**_percentiles(times), "texts": len(texts)}


def _tiny_dir(work: Path, texts: list[str]) -> Path:
    from training.model.build import build_model
    from training.model.predictor import save_model_dir

    model, tokenizer, base = build_model(ModelConfig(profile="tiny"), LABELS, texts, work / "base")
    return save_model_dir(
        model,
        tokenizer,
        work / "tiny",
        task="danger",
        family="kobert",
        labels=LABELS,
        max_length=ModelConfig().max_length,
        preprocess=PreprocessConfig(),
        base_model=base,
    )


def in_process(work: Path, n_texts: int, n_base: int, cfg: ExplainConfig) -> dict[str, Any]:
    import pandas as pd
    from transformers import BertForSequenceClassification

    from training.bench.train import bert_config
    from training.model.explain import Explainer
    from training.model.linear import fit_pipeline, save_linear_dir
    from training.model.predictor import Predictor

    frame = pd.read_csv(SAMPLE)
    texts = frame["text"].sample(n=n_texts, random_state=0).tolist()
    tiny_dir = _tiny_dir(work, frame["text"].tolist())
    tiny = Predictor.load(tiny_dir, device="cpu")
    base = Predictor(BertForSequenceClassification(bert_config("base")), tiny.tokenizer, tiny.meta, "cpu")
    lin_cfg = LinearConfig()
    pipe = fit_pipeline(lin_cfg, tiny.preprocessor(frame["text"].tolist()), frame["label"].tolist())
    linear_dir = save_linear_dir(
        pipe,
        work / "linear",
        task="danger",
        labels=LABELS,
        preprocess=PreprocessConfig(),
        cfg=lin_cfg,
        max_length=64,
    )
    linear = Predictor.load(linear_dir)
    out: dict[str, Any] = {}
    import torch

    torch.set_num_threads(cfg.torch_threads)  # as the service runs an explanation (explain.torch_threads)
    for name, predictor, sample in (("tiny", tiny, texts), ("base", base, texts[:n_base])):
        for method in ("integrated_gradients", "occlusion"):
            out[f"{name}_{method}"] = _time(
                Explainer(predictor, cfg, method if method == "occlusion" else None), sample
            )
            print(f"  {name:5s} {method:21s} {out[f'{name}_{method}']}", flush=True)
    out["linear_linear"] = _time(Explainer(linear, cfg), texts)
    print(f"  linear linear                {out['linear_linear']}", flush=True)
    return {"n_steps": cfg.n_steps, "results": out, "model_dir": str(tiny_dir)}


_CLIENT = None  # one keep-alive connection per client process: a new httpx client per request costs the
# client milliseconds of CPU (its TLS context), which would be measured as the service's latency


def _post(url: str, body: dict, timeout: float = 60) -> tuple[int, float]:
    global _CLIENT
    import httpx

    if _CLIENT is None:
        _CLIENT = httpx.Client(timeout=timeout)
    t0 = time.perf_counter()
    r = _CLIENT.post(url, json=body)
    return r.status_code, (time.perf_counter() - t0) * 1000


def _classify_run(url: str, texts: list[str], seconds: float) -> list[float]:
    times, i, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        status, ms = _post(f"{url}/classify", {"texts": [texts[i % len(texts)]]})
        if status == 200:
            times.append(ms)
        i += 1
    return times


def _explain_client(url: str, texts: list[str], first: int, step: int, stop_flag, results) -> None:
    """One client process: /explain without pause until told to stop; a 503 waits 50 ms."""
    answered, refused, i = [], 0, first
    while not stop_flag.is_set():
        status, ms = _post(f"{url}/explain", {"text": texts[i % len(texts)]})
        if status == 200:
            answered.append(ms)
        elif status == 503:
            refused += 1
            time.sleep(0.05)
        i += step
    results.put((answered, refused))


def _compute_only(model_dir: str, threads: int, stop_flag) -> None:
    """A process explaining sample texts in a loop, no HTTP: what the explanation work alone costs the
    machine (the service's worker does the same, one torch thread)."""
    import pandas as pd
    import torch

    from training.model.explain import Explainer
    from training.model.predictor import Predictor

    torch.set_num_threads(threads)
    explainer = Explainer(Predictor.load(model_dir, device="cpu"), ExplainConfig())
    texts = pd.read_csv(SAMPLE)["text"].tolist()
    i = 0
    while not stop_flag.is_set():
        explainer.explain(texts[i % len(texts)])
        i += 1


def _loaded_phase(url: str, texts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    """/classify from one client while `clients` processes send /explain without pause."""
    # The load comes from processes of their own: client threads beside the classify loop would share
    # its GIL and slow the measuring client, not the service.
    ctx = multiprocessing.get_context("spawn")
    stop_flag, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_explain_client, args=(url, texts, k, clients, stop_flag, results))
        for k in range(clients)
    ]
    for c in procs:
        c.start()
    time.sleep(3.0)  # the clients' start-up (imports)
    loaded = _classify_run(url, texts, seconds)
    stop_flag.set()
    explain_ms: list[float] = []
    refused = 0
    for _ in procs:
        answered, n_refused = results.get(timeout=120)
        explain_ms += answered
        refused += n_refused
    for c in procs:
        c.join(timeout=30)
    return {
        "classify": {**_percentiles(loaded), "requests": len(loaded)},
        "explain": {**_percentiles(explain_ms), "answered": len(explain_ms), "refused_503": refused},
    }


def over_http(
    model_dir: Path, work: Path, seconds: float, explain_clients: Sequence[int], torch_threads: int = 1
) -> dict[str, Any]:
    import logging

    import pandas as pd

    from training.bench.serve import start_service, stop, wait_ready

    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request
    texts = pd.read_csv(SAMPLE)["text"].sample(n=200, random_state=1).tolist()
    server = start_service(model_dir, work / "home")
    out: dict[str, Any] = {"seconds": seconds}
    try:
        wait_ready(server)
        for text in texts[:10]:  # warm both routes (the explainer is built on the first /explain)
            _post(f"{server.url}/classify", {"texts": [text]})
            _post(f"{server.url}/explain", {"text": text})
        alone = _classify_run(server.url, texts, seconds)
        out["classify_alone"] = {**_percentiles(alone), "requests": len(alone)}
        print(f"  /classify alone                       {out['classify_alone']}", flush=True)
        ctx = multiprocessing.get_context("spawn")
        stop_flag = ctx.Event()
        burner = ctx.Process(target=_compute_only, args=(str(model_dir), torch_threads, stop_flag))
        burner.start()
        time.sleep(8.0)  # its imports and model load
        beside = _classify_run(server.url, texts, seconds)
        stop_flag.set()
        burner.join(timeout=60)
        out["classify_beside_explanation_compute"] = {**_percentiles(beside), "requests": len(beside)}
        print(
            f"  /classify, explanations computed beside {out['classify_beside_explanation_compute']}",
            flush=True,
        )
        for n in explain_clients:
            phase = _loaded_phase(server.url, texts, seconds, n)
            out[f"explain_clients_{n}"] = phase
            print(f"  /classify with {n} /explain client(s)    {phase['classify']}", flush=True)
            print(f"  /explain  with {n} client(s)             {phase['explain']}", flush=True)
    finally:
        stop(server)
    return out


def run(
    n_texts: int = 30,
    n_base: int = 8,
    seconds: float = 15,
    explain_clients: Sequence[int] = (1, 4),
    http: bool = True,
) -> dict:
    import os
    import platform

    cfg = ExplainConfig()
    with tempfile.TemporaryDirectory(prefix="heara-bench-explain-") as tmp:
        work = Path(tmp)
        print(
            f"explanations in process (n_steps {cfg.n_steps}, {cfg.torch_threads} torch thread(s)):",
            flush=True,
        )
        cost = in_process(work, n_texts, n_base, cfg)
        result: dict[str, Any] = {
            "bench": "explain",
            "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
            "in_process": cost["results"],
            "n_steps": cost["n_steps"],
            "torch_threads": cfg.torch_threads,
        }
        if http:
            print("over HTTP (tiny model, bentoml serve):", flush=True)
            result["http"] = over_http(
                Path(cost["model_dir"]), work, seconds, explain_clients, cfg.torch_threads
            )
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=30, help="texts timed per method (tiny, linear)")
    ap.add_argument("--base-texts", type=int, default=8, help="texts timed on the BERT-base shape")
    ap.add_argument("--seconds", type=float, default=15, help="HTTP: measured seconds per phase")
    ap.add_argument("--explain-clients", default="1,4", help="HTTP: phases of N clients sending /explain")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    a = ap.parse_args(argv)
    clients = [int(x) for x in str(a.explain_clients).split(",") if x.strip()]
    run(a.texts, a.base_texts, a.seconds, clients, http=not a.no_http)


if __name__ == "__main__":
    main()
