"""Experiment tracking: each run as one MLflow run, with a nested run per stage.

Off unless the config says ``tracking: {mlflow: {...}}``. The pipeline calls the tracker
after each stage with what the manifest records (settings, metrics, artifact paths), so the
stages know nothing of it. Per stage: its settings as params (dotted config keys), its
scalar metrics, its training curves as per-epoch metric histories (``train_loss``,
``val_accuracy``, ``lr``: step = epoch), latency rows as ``latency_ms.<model>.<target>.<runtime>.<precision>``,
and its files a deployer reads (ONNX, OpenVINO IR, JSON, report Markdown/HTML) as
artifacts. A stage restored by ``--resume`` is logged too, tagged ``resumed``. The client
is MLflow's ``MlflowClient`` (no global active run), so embedding edgekd in a script that
has its own MLflow run leaves that run alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekd.core.config import Config
from edgekd.core.errors import ConfigError
from edgekd.core.version import __version__

ARTIFACT_SUFFIXES = (".onnx", ".xml", ".bin", ".json", ".md", ".html", ".engine", ".yaml")
CURVES = ("train_loss", "val_accuracy", "lr", "seconds", "images_per_second")
MAX_PARAM = 500  # MLflow refuses param values over 6000 characters; settings rarely need more than this


class Tracker:
    """No tracking (the default): every call does nothing."""

    def start(self, config: Config, command: str, run_root: Path) -> None:
        pass

    def stage(self, name: str, *, settings: Any, metrics: dict[str, Any], artifacts: dict[str, Path],
              seconds: float | None, resumed: bool) -> None:
        pass

    def finish(self, ok: bool) -> None:
        pass


def make_tracker(config: Config, warn: Callable[[str, str], None] | None = None) -> Tracker:
    """The tracker the config asks for; ConfigError (exit 2) when it asks for MLflow and it is missing.

    ``warn(topic, message)`` hears of a tracking call that failed (a server that went away):
    tracking then stops for this run, and the run itself goes on.
    """
    ml = config.tracking.mlflow
    if ml is None:
        return Tracker()
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("tracking.mlflow is set, but MLflow is not installed",
                          hint="pip install 'edgekd[mlflow]' (or remove tracking.mlflow from the config)") from None
    return Guarded(MlflowTracker(ml.uri, ml.experiment, ml.artifact_location, ml.run_name), warn)


class Guarded(Tracker):
    """A tracker whose failures warn once and turn tracking off, so they never fail the run."""

    def __init__(self, inner: Tracker, warn: Callable[[str, str], None] | None) -> None:
        self.inner, self.warn, self.failed = inner, warn, False

    def _call(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        if self.failed:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # any client or server error: the compression run matters more
            self.failed = True
            if self.warn is not None:
                self.warn("tracking", f"MLflow logging failed and is off for this run: {type(exc).__name__}: {exc}")

    def start(self, config: Config, command: str, run_root: Path) -> None:
        self._call(self.inner.start, config, command, run_root)

    def stage(self, name: str, **kwargs: Any) -> None:  # type: ignore[override]
        self._call(self.inner.stage, name, **kwargs)

    def finish(self, ok: bool) -> None:
        self._call(self.inner.finish, ok)


def _key(text: str) -> str:
    """A name MLflow accepts (alphanumerics, _ - . space /)."""
    return re.sub(r"[^\w\-. /]", "_", text)[:250]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` → ``{"a.b.0": 1}``."""
    if isinstance(obj, dict) and obj:
        items = ((str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple) and obj:
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}.{k}" if prefix else k))
    return out


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numbers among a stage's metrics (nested dicts dotted; lists are curves or rows, logged apart)."""
    out: dict[str, float] = {}

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if isinstance(v, int | float):  # bool too
                out[key] = float(v)
            elif isinstance(v, dict):
                walk(v, f"{key}.")

    walk(metrics, "")
    return {_key(k): v for k, v in out.items() if v == v}  # NaN is not a metric


def curves(metrics: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, epoch step) of every training curve in a stage's metrics."""
    out = []
    for prefix, history in (("", metrics.get("history")), ("baseline.", (metrics.get("baseline") or {}).get("history"))):
        for step, epoch in enumerate(history or [], 1):
            out += [(f"{prefix}{k}", float(epoch[k]), step) for k in CURVES if isinstance(epoch.get(k), int | float)]
    return out


def latency_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    rows = metrics.get("latency") if isinstance(metrics.get("latency"), list) else []
    return {_key(f"latency_ms.{r['model']}.{r['target']}.{r['runtime']}.{r['precision']}"): float(r["median_ms"])
            for r in rows if isinstance(r, dict) and "median_ms" in r}


def artifact_files(artifacts: dict[str, Path]) -> list[Path]:
    """The files of a stage worth keeping beside the run: exported models, JSON, reports (not weights folders)."""
    files = [Path(p) for p in artifacts.values() if Path(p).is_file() and Path(p).suffix in ARTIFACT_SUFFIXES]
    bins = [f.with_suffix(".bin") for f in files if f.suffix == ".xml" and f.with_suffix(".bin").is_file()]
    return list(dict.fromkeys(files + bins))


class MlflowTracker(Tracker):
    """One parent run per edgekd invocation, one nested run per stage."""

    def __init__(self, uri: str | None, experiment: str, artifact_location: str | None, run_name: str | None) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)  # None: MLFLOW_TRACKING_URI, else MLflow's default
        self.experiment, self.artifact_location, self.run_name = experiment, artifact_location, run_name
        self.parent: str | None = None
        self.experiment_id = ""

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location=self.artifact_location)

    def start(self, config: Config, command: str, run_root: Path) -> None:
        self.experiment_id = self._experiment_id()
        tags = {"edgekd.version": __version__, "edgekd.run_dir": str(run_root), "edgekd.command": command}
        run = self.client.create_run(self.experiment_id, run_name=self.run_name or config.name or run_root.name,
                                     tags=tags)
        self.parent = run.info.run_id
        self._log(self.parent, params=flatten(config.model_dump(mode="json", exclude={"tracking"})))
        if (run_root / "config.yaml").is_file():
            self.client.log_artifact(self.parent, str(run_root / "config.yaml"))

    def stage(self, name: str, *, settings: Any, metrics: dict[str, Any], artifacts: dict[str, Path],
              seconds: float | None, resumed: bool) -> None:
        if self.parent is None:
            return
        run = self.client.create_run(self.experiment_id, run_name=name, tags={
            "mlflow.parentRunId": self.parent, "edgekd.stage": name, "edgekd.resumed": str(resumed).lower()})
        rid = run.info.run_id
        values = {**scalar_metrics(metrics), **latency_metrics(metrics)}
        if seconds is not None:
            values["stage_seconds"] = float(seconds)
        params = flatten(json.loads(json.dumps(settings, default=str))) if settings else {}
        self._log(rid, params=params, metrics=[(k, v, 0) for k, v in values.items()] + curves(metrics))
        for f in artifact_files(artifacts):
            self.client.log_artifact(rid, str(f))
        self.client.set_terminated(rid, "FINISHED")

    def finish(self, ok: bool) -> None:
        if self.parent is not None:
            self.client.set_terminated(self.parent, "FINISHED" if ok else "FAILED")
            self.parent = None

    def _log(self, run_id: str, *, params: dict[str, Any] | None = None,
             metrics: list[tuple[str, float, int]] | None = None) -> None:
        """In MLflow's batch limits (100 params, 1000 metrics per call)."""
        import time

        from mlflow.entities import Metric, Param

        named = {_key(k): str(v)[:MAX_PARAM] for k, v in (params or {}).items() if k}  # one value per key
        ps = [Param(k, v) for k, v in named.items()]
        now = int(time.time() * 1000)
        steps = {(_key(k), step): v for k, v, step in (metrics or [])}
        ms = [Metric(k, v, now, step) for (k, step), v in steps.items()]
        for i in range(0, len(ps), 100):
            self.client.log_batch(run_id, params=ps[i : i + 100])
        for i in range(0, len(ms), 1000):
            self.client.log_batch(run_id, metrics=ms[i : i + 1000])
