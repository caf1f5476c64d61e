"""A TensorFlow-Serving-compatible model server (REST and gRPC) and its client.

`server.py` speaks TF Serving's REST API and gRPC `PredictionService` / `ModelService` over a model base
path or a `models.config`; `client.py` is a single-file client that works against either server.
Nothing here imports `pipeline`: the server needs TensorFlow, aiohttp and grpcio only.
"""
