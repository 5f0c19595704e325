"""KServe's own Python model server serving a scikit-learn file, for the comparison in
`serving_vs_kserve.py`. Runs in `.venv-kserve` (PyPI `kserve`), never in kubelab's venv.

KServe's `sklearnserver` lives in KServe's repository, not on PyPI; this is its
`SKLearnModel` in miniature: `joblib.load` once in `load()`, then `predict` through
KServe's own `get_predict_input` / `get_predict_response`, behind `kserve.ModelServer`
(FastAPI on uvicorn, one worker, REST only).

    .venv-kserve/bin/python benchmarks/kserve_sklearn_server.py --model_dir DIR \
        --model_name iris --http_port 8080
"""

import argparse
import os

import joblib
from kserve import Model, ModelServer, model_server
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir

    def load(self) -> bool:
        files = [f for f in os.listdir(self.model_dir) if f.endswith((".joblib", ".pkl"))]
        self._model = joblib.load(os.path.join(self.model_dir, files[0]))
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(instances), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    ModelServer(http_port=args.http_port, enable_grpc=False, workers=1).start([model])
