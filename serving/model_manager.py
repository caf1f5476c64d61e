"""Loads, versions and unloads the served models, polling their base paths like TF Serving.

Each poll lists the integer-named folders under every base path, applies the version policy, loads the
new aspired versions (highest first), and unloads versions no longer aspired under TF Serving's
availability-preserving policy: a version is unloaded only once an aspired version is AVAILABLE, so a new
version that fails to load (a folder still being copied, say) leaves the old one serving.

A failed load is retried `max_num_load_retries` times, `load_retry_interval_seconds` apart (TF Serving's
flags and defaults); after that, it is tried again only when the folder's files change, so a version
copied in slowly is picked up on a later poll.

A request holds a reference to the version it resolved, so unloading never fails a request in flight.
"""

import dataclasses
import logging
import os
import threading
import time
import typing

from serving import model_config
from serving import servable as servable_lib
from serving import status

logger = logging.getLogger("serving")


@dataclasses.dataclass(frozen=True)
class VersionState:
    """A version's state as reported by GetModelStatus: START, LOADING, AVAILABLE, UNLOADING or END."""
    state: str
    error_code: str = "OK"
    error_message: str = ""


@dataclasses.dataclass(frozen=True)
class LoadPolicy:
    """How versions are loaded and labelled.

    Attributes:
        max_num_load_retries: Retries after a failed load (--max_num_load_retries).
        load_retry_interval_seconds: Time between them (--load_retry_interval_micros).
        allow_version_labels_for_unavailable_models: A new label may name a version not AVAILABLE yet.
    """
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    allow_version_labels_for_unavailable_models: bool = False


@dataclasses.dataclass
class _Failure:
    attempts: int
    retry_at: float
    files: tuple


class _Model:
    def __init__(self, config: model_config.ModelConfig):
        self.config = config
        self.servables: dict[int, typing.Any] = {}  # replaced, never mutated: readers need no lock
        self.states: dict[int, VersionState] = {}
        self.failures: dict[int, _Failure] = {}
        self.labels: dict[str, int] = {}
        self.warned_missing = False


def folder_files(path: str) -> tuple:
    """(relative path, size, modification time) of every file under `path`: changes while it is copied."""
    listing = []
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                info = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            listing.append((os.path.relpath(os.path.join(folder, name), path), info.st_size, info.st_mtime_ns))
    return tuple(sorted(listing))


class ModelManager:
    """The served models and their loaded versions.

    Args:
        configs: The models to serve.
        loader: Builds a servable from (name, version, path); `servable.Servable` by default.
        policy: Load retries and label rules.
    """

    def __init__(self, configs: list[model_config.ModelConfig],
                 loader: typing.Callable[[str, int, str], typing.Any] = servable_lib.Servable,
                 policy: LoadPolicy = LoadPolicy()):
        self._loader = loader
        self._policy = policy
        self._models: dict[str, _Model] = {}
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: typing.Optional[threading.Thread] = None
        self._set_models(configs)

    # === Configuration and polling ===

    def update_config(self, configs: list[model_config.ModelConfig]) -> None:
        """Serves exactly `configs`: new models are added and loaded, removed ones unloaded, then the labels
        are applied.

        Raises:
            ServingError: FAILED_PRECONDITION when a label names a version that is not AVAILABLE (the
                models change anyway; that model keeps its previous labels), as TF Serving's ReloadConfig.
        """
        self._set_models(configs)
        self.poll()
        self.apply_labels()

    def _set_models(self, configs: list[model_config.ModelConfig]) -> None:
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

    def apply_labels(self) -> None:
        """Makes every model's configured labels current, checked as TF Serving checks them.

        A label may only name an AVAILABLE version, unless --allow_version_labels_for_unavailable_models is
        on and the label is new or keeps its version.

        Raises:
            ServingError: FAILED_PRECONDITION naming the first label refused (other models still update).
        """
        refused = None
        for model in list(self._models.values()):
            try:
                model.labels = self._checked_labels(model)
            except status.ServingError as error:
                refused = refused or error
        if refused is not None:
            raise refused

    def _checked_labels(self, model: _Model) -> dict[str, int]:
        for label, version in model.config.labels.items():
            moved = model.labels.get(label, version) != version
            may_be_unavailable = self._policy.allow_version_labels_for_unavailable_models and not moved
            if not may_be_unavailable and version not in model.servables:
                raise status.failed_precondition(
                    f"Request to assign label to version {version} of model {model.config.name}, which is not "
                    "currently available for inference")
        return dict(model.config.labels)

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
        for version in sorted(aspired - set(model.servables), reverse=True):
            if self._may_load(model, version, on_disk[version]):
                self._load(model, version, on_disk[version])
        serving = set(model.servables)
        unaspired = sorted(serving - aspired)
        if not serving & aspired:
            unaspired = unaspired[:-1]  # availability first: keep the newest version until a new one serves
        for version in unaspired:
            self._unload(model, version)

    def _may_load(self, model: _Model, version: int, path: str) -> bool:
        failure = model.failures.get(version)
        if failure is None:
            return True
        if failure.attempts <= self._policy.max_num_load_retries:
            return time.monotonic() >= failure.retry_at
        files = folder_files(path)
        if files != failure.files:  # the folder changed since the last attempt: its copy went on
            model.failures.pop(version)
            return True
        return False

    def _load(self, model: _Model, version: int, path: str) -> None:
        name = model.config.name
        model.states = {**model.states, version: VersionState("LOADING")}
        try:
            servable = self._loader(name, version, path)
        except Exception as error:  # noqa: BLE001 - any load failure is reported in the version's status
            self._record_failure(model, version, path, error)
            return
        model.failures.pop(version, None)
        model.servables = {**model.servables, version: servable}
        model.states = {**model.states, version: VersionState("AVAILABLE")}
        logger.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _record_failure(self, model: _Model, version: int, path: str, error: Exception) -> None:
        previous = model.failures.get(version)
        attempts = previous.attempts + 1 if previous else 1
        model.failures[version] = _Failure(attempts, time.monotonic() + self._policy.load_retry_interval_seconds,
                                           folder_files(path))
        retries_left = self._policy.max_num_load_retries + 1 - attempts
        logger.error("Loading servable: {name: %s version: %d} failed (attempt %d; %d retries left): %s",
                     model.config.name, version, attempts, max(retries_left, 0), error)
        if retries_left > 0:
            model.states = {**model.states, version: VersionState("LOADING")}
        else:
            model.states = {**model.states, version: VersionState("END", "UNKNOWN", str(error))}

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
            if model is None or label not in model.labels:
                raise status.invalid_argument(f"Unrecognized servable version label: {label}")
            version = model.labels[label]
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
