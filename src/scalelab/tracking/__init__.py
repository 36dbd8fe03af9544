"""Everything the lab records in MLflow, one module per job:

- `runs`: a training's run, how it is tagged, opened, resumed and ended; evaluation added to it;
- `names`: experiment and run names, flattened params;
- `store`: where runs go (the tracking URI), creating the store, one client factory;
- `history`: per-epoch metrics, logged whole epochs at a time;
- `logged_models`: the trained networks as MLflow LoggedModels;
- `sweeps`: a study's parent run and its children;
- `registry`: the champion in the model registry;
- `ui`: the MLflow UI on the project's store.

Importing the package turns MLflow's usage telemetry off unless the user opted in by setting
MLFLOW_DISABLE_TELEMETRY themselves: nothing leaves the machine by default.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
