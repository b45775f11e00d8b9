"""MLflow's own scoring client against a server, run in an environment with MLflow (``$MODELSHELF_TEST_MLFLOW_PYTHON``).

``python tests/mlflow_scoring_client.py HOST PORT`` reads rows (JSON) on
stdin, sends them to ``/invocations`` the three ways MLflow's client sends
input (a DataFrame as ``dataframe_split``, an array and a list as
``inputs``) after its own readiness wait, parses each answer with MLflow's
``PredictionsResponse``, and prints what it got as one JSON document. It
imports neither modelshelf nor scikit-learn: that environment has MLflow,
pandas and numpy only (``.ci/run`` builds it).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    rows = np.asarray(json.load(sys.stdin), dtype=float)
    client = ScoringServerClient(host, port)
    client.wait_server_ready(timeout=60)
    got: dict[str, object] = {"version": client.get_version()}
    for kind, data in (("frame", pd.DataFrame(rows)), ("array", rows), ("list", rows.tolist())):
        response = client.invoke(data)
        got[kind] = {
            "ndarray": response.get_predictions(predictions_format="ndarray").ravel().tolist(),
            "dataframe": response.get_predictions()[0].tolist(),  # the default: a DataFrame
        }
    json.dump(got, sys.stdout)


if __name__ == "__main__":
    main()
