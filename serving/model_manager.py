"""Loads, versions and unloads the served models, polling their base paths like TF Serving.

Each poll lists the integer-named folders under every base path, applies the version policy, loads the
new aspired versions, then makes them visible and only then drops the versions no longer aspired.
A request holds a reference to the version it resolved, so unloading never fails a request in flight.
"""

import dataclasses
import logging
import os
import threading
import typing

from serving import model_config
from serving import servable as servable_lib
from serving import status

logger = logging.getLogger("serving")

MAX_LOAD_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class VersionState:
    """A version's state as reported by GetModelStatus: START, LOADING, AVAILABLE, UNLOADING or END."""
    state: str
    error_code: str = "OK"
    error_message: str = ""


class _Model:
    def __init__(self, config: model_config.ModelConfig):
        self.config = config
        self.servables: dict[int, servable_lib.Servable] = {}  # replaced, never mutated: readers need no lock
        self.states: dict[int, VersionState] = {}
        self.failed_attempts: dict[int, int] = {}
        self.warned_missing = False


class ModelManager:
    """The served models and their loaded versions.

    Args:
        configs: The models to serve.
        loader: Builds a servable from (name, version, path); `servable.Servable` by default.
    """

    def __init__(self, configs: list[model_config.ModelConfig],
                 loader: typing.Callable[[str, int, str], typing.Any] = servable_lib.Servable):
        self._loader = loader
        self._models: dict[str, _Model] = {}
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: typing.Optional[threading.Thread] = None
        self.update_config(configs)

    # === Configuration and polling ===

    def update_config(self, configs: list[model_config.ModelConfig]) -> None:
        """Serves exactly `configs` from the next poll on: new models are added, removed ones unloaded."""
        with self._poll_lock:
            models = dict(self._models)
            for name in set(models) - {config.name for config in configs}:
                self._unload_all(models.pop(name))
            for config in configs:
                if config.name in models:
                    models[config.name].config = config
                else:
                    models[config.name] = _Model(config)
            self._models = models

    def poll(self) -> None:
        """Brings every model's loaded versions in line with its base path and policy (one pass)."""
        with self._poll_lock:
            for model in list(self._models.values()):
                self._poll_model(model)

    def start_polling(self, interval_seconds: float) -> None:
        """Polls every `interval_seconds` in a background thread (TF Serving's file system poll)."""
        def loop():
            while not self._stop.wait(interval_seconds):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - a failed poll must not end polling
                    logger.exception("polling the model base paths failed")

        self._thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _versions_on_disk(self, model: _Model) -> dict[int, str]:
        """Version -> folder, for the integer-named folders of the base path ("00000123" is version 123)."""
        base_path = model.config.base_path
        try:
            names = os.listdir(base_path)
        except OSError:
            if not model.warned_missing:
                logger.warning("model %s: base path %s does not exist (yet); serving no versions of it",
                               model.config.name, base_path)
                model.warned_missing = True
            return {}
        model.warned_missing = False
        return {int(name): os.path.join(base_path, name) for name in names
                if name.isdigit() and os.path.isdir(os.path.join(base_path, name))}

    def _poll_model(self, model: _Model) -> None:
        on_disk = self._versions_on_disk(model)
        aspired = model.config.aspired_versions(on_disk)
        for version in sorted(aspired - set(model.servables)):
            if model.failed_attempts.get(version, 0) < MAX_LOAD_ATTEMPTS:
                self._load(model, version, on_disk[version])
        for version in sorted(set(model.servables) - aspired):  # only once the new versions serve
            self._unload(model, version)

    def _load(self, model: _Model, version: int, path: str) -> None:
        name = model.config.name
        model.states = {**model.states, version: VersionState("LOADING")}
        try:
            servable = self._loader(name, version, path)
        except Exception as error:  # noqa: BLE001 - any load failure is reported in the version's status
            attempts = model.failed_attempts.get(version, 0) + 1
            model.failed_attempts[version] = attempts
            logger.error("Loading servable: {name: %s version: %d} failed (attempt %d of %d): %s",
                         name, version, attempts, MAX_LOAD_ATTEMPTS, error)
            model.states = {**model.states, version: VersionState("END", "UNKNOWN", str(error))}
            return
        model.failed_attempts.pop(version, None)
        model.servables = {**model.servables, version: servable}
        model.states = {**model.states, version: VersionState("AVAILABLE")}
        logger.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _unload(self, model: _Model, version: int) -> None:
        model.states = {**model.states, version: VersionState("UNLOADING")}
        model.servables = {key: value for key, value in model.servables.items() if key != version}
        model.states = {**model.states, version: VersionState("END")}
        logger.info("Unloaded servable version {name: %s version: %d}", model.config.name, version)

    def _unload_all(self, model: _Model) -> None:
        for version in sorted(model.servables):
            self._unload(model, version)

    # === Lookups used by requests ===

    def model_names(self) -> list[str]:
        return sorted(self._models)

    def servable(self, name: str, version: typing.Optional[int] = None,
                 label: typing.Optional[str] = None) -> servable_lib.Servable:
        """Resolves a model spec (latest, a version number or a version label) to a loaded version.

        Raises:
            ServingError: NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for an unknown label.
        """
        model = self._models.get(name)
        if label is not None:
            if model is None or label not in model.config.labels:
                raise status.invalid_argument(f"Unrecognized servable version label: {label}")
            version = model.config.labels[label]
        servables = model.servables if model is not None else {}
        if version is None:
            if not servables:
                raise status.not_found(f"Servable not found for request: Latest({name})")
            return servables[max(servables)]
        if version not in servables:
            raise status.not_found(f"Servable not found for request: Specific({name}, {version})")
        return servables[version]

    def version_states(self, name: str, version: typing.Optional[int] = None) -> list[tuple[int, VersionState]]:
        """(version, state) pairs, highest version first, as GetModelStatus reports them.

        Raises:
            ServingError: NOT_FOUND when the model or the version was never seen.
        """
        model = self._models.get(name)
        states = model.states if model is not None else {}
        if version is not None:
            if version not in states:
                raise status.not_found(f"Could not find version {version} of model {name}")
            return [(version, states[version])]
        if not states:
            raise status.not_found(f"Could not find any versions of model {name}")
        return sorted(states.items(), reverse=True)
