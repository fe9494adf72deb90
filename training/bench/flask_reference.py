"""The benchmark's baseline: a server shaped like the seed projects' Flask apps.

One model call per request (no batching), the model on the CPU in fp32, Flask's threaded
development server. `heara bench serve` runs it beside the BentoML service on the same model folder:

    python -m training.bench.flask_reference --model-dir DIR --port 5000

POST /classify {"texts": [...]} answers {"predictions": [{"label", "score", "scores"}, ...]};
GET /readyz answers 200 once the model is loaded (it loads before the server listens).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask, jsonify, request


def create_app(model_dir: Path | str):
    """The Flask app with the model of `model_dir` loaded on the CPU in fp32."""
    from training.model.predictor import Predictor

    predictor = Predictor.load(model_dir, device="cpu")
    labels = predictor.labels
    predictor.predict_proba(["안녕하세요"])  # build the preprocessor and warm up before serving
    app = Flask("heara-baseline")

    @app.post("/classify")
    def classify():
        body = request.get_json(silent=True)
        texts = body.get("texts") if isinstance(body, dict) else None
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t.strip() for t in texts)
        ):
            return jsonify({"error": 'body must be {"texts": [non-empty strings]}'}), 400
        probs = predictor.predict_proba(texts)  # one model call per request
        preds = []
        for p in probs:
            i = int(p.argmax())
            preds.append(
                {
                    "label": labels[i],
                    "score": float(p[i]),
                    "scores": {lab: float(v) for lab, v in zip(labels, p)},
                }
            )
        return jsonify({"predictions": preds})

    @app.get("/readyz")
    def readyz():
        return jsonify({"ready": True})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Flask reference server server (one model call per request, fp32, CPU)"
    )
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    app = create_app(args.model_dir)
    app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
