"""CI gates: fail a run whose shipped file misses an accuracy floor or a latency ceiling.

``--fail-under-accuracy 97`` and ``--fail-over-latency budget`` (or a number of ms) are
checked per target on the file that target ships (the report's ``deployment``): its accuracy
in its runtime and its latency there. A run without latency rows has no deployment: the
final model (quantized, else pruned, else the student) is judged instead, at its PyTorch
accuracy. The accuracy floor under the teacher (``report.max_accuracy_drop``, on by default)
is a gate too, on every target. The report records every gate; the CLI exits 13 after
writing the report when one fails.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from edgekd.core.errors import ConfigError
from edgekd.engines.reporting.schema import Gate, ModelRow, Report
from edgekd.engines.reporting.verdicts import NOT_STUDENTS, budget_of


class GateSpec(BaseModel):
    """What to check; None: that gate is off."""

    min_accuracy: float | None = None  # points, at least
    max_latency: float | Literal["budget"] | None = None  # ms, at most; "budget": each target's latency_budget_ms

    @property
    def active(self) -> bool:
        return self.min_accuracy is not None or self.max_latency is not None


def gate_spec(fail_under_accuracy: float | None = None, fail_over_latency: str | float | None = None) -> GateSpec:
    """The spec from CLI/API values; a bad value is a ConfigError (exit 2) naming the option."""
    if fail_under_accuracy is not None and not 0 <= float(fail_under_accuracy) <= 100:
        raise ConfigError(f"--fail-under-accuracy: {fail_under_accuracy} is not a percentage",
                          hint="give points between 0 and 100, e.g. --fail-under-accuracy 97.5")
    latency: float | Literal["budget"] | None = None
    if fail_over_latency is not None:
        text = str(fail_over_latency).strip().lower().removesuffix("ms").strip()
        if text == "budget":
            latency = "budget"
        else:
            try:
                latency = float(text)
            except ValueError:
                latency = -1.0
            if not latency > 0:
                raise ConfigError(f"--fail-over-latency: {fail_over_latency!r} is neither 'budget' nor a positive "
                                  "number of milliseconds", hint="e.g. --fail-over-latency budget, or 5 (ms)")
    return GateSpec(min_accuracy=fail_under_accuracy, max_latency=latency)


def chosen(r: Report, target: str) -> tuple[ModelRow | None, dict[str, Any] | None]:
    """The final model that has a deployment choice on ``target``, and that choice."""
    models = r.choices.get(target, {})
    for m in reversed(r.models):
        if m.label not in NOT_STUDENTS and m.label in models:
            return m, models[m.label]
    return None, None


def runtime_accuracy(r: Report, m: ModelRow, c: dict[str, Any] | None, target: str) -> tuple[float | None, str]:
    """(accuracy, where it was measured) of model ``m`` deployed as choice ``c`` (a deployment row
    carries its own accuracy in its runtime: reporting/points.py)."""
    if c is not None and c.get("deployed") and c.get("accuracy") is not None:
        return c["accuracy"], f"{c['format']} {c['precision']} ({c['runtime']}, on {target}: {c['accuracy_source']})"
    if c is not None:
        rows = [x for x in r.latency if x["target"] == target and x["model"] == m.label and x.get("validation")
                and (x["runtime"], x["precision"]) == (c["runtime"], c["precision"])]
        if rows:
            return rows[0]["validation"]["accuracy"], f"{c['format']} {c['precision']} ({c['runtime']}, on {target})"
        if c["format"] == "torch":
            return m.accuracy, "PyTorch"
        exact = f"{c['format']} {c['precision']} ({c['runtime']})"
        if exact in m.runtime_accuracy:
            return m.runtime_accuracy[exact], exact
        same = [k for k in m.runtime_accuracy if k.split(" (")[0].split(" ")[1:] == [c["precision"]]]
        if same:
            return m.runtime_accuracy[same[0]], f"{same[0]}: {c['format']} did not run here"
    return m.accuracy, "PyTorch"


def evaluate_gates(r: Report, spec: GateSpec) -> list[Gate]:
    """One gate per active check and target (one without a target when nothing was benchmarked),
    then the accuracy floor of every target's deployment (report.max_accuracy_drop: on by default).
    Each judges the file the target ships (``deployment``), as the report recommends it."""
    floors = [_floor_gate(t, d) for t, d in r.deployment.items() if d.get("accuracy_floor")]
    out: list[Gate] = []
    if not spec.active:
        return floors
    targets = list(r.deployment) or list(r.choices) or [None]
    for target in targets:
        d = r.deployment.get(target) if target else None
        if d is not None:
            m, c = r.model(d["model"]), {**d, "deployed": True}
        else:
            m, c = chosen(r, target) if target else (None, None)
        if m is None:
            m = next((x for x in reversed(r.models) if x.label not in NOT_STUDENTS), None)
        if spec.min_accuracy is not None:
            out.append(_accuracy_gate(r, spec.min_accuracy, m, c, target))
        if spec.max_latency is not None:
            out.append(_latency_gate(r, spec.max_latency, m, c, target))
    return out + floors


def _floor_gate(target: str, d: dict[str, Any]) -> Gate:
    f = d["accuracy_floor"]
    ok = bool(f["met"])
    runtime = f"{d['format']} {d['precision']} ({d['runtime']}, {d['kind']})"
    return Gate(name="accuracy_floor", threshold=f["floor"], value=d.get("accuracy"), target=target, passed=ok,
                model=d["model"], runtime=runtime,
                detail=f"{d['model']} {_pct(d.get('accuracy'))} {'≥' if ok else '<'} {f['floor']:.2f}% (the teacher's "
                       f"{_pct(f['teacher'])} less report.max_accuracy_drop {f['max_drop']:g}; {runtime})")


def _accuracy_gate(r: Report, floor: float, m: ModelRow | None, c: dict[str, Any] | None,
                   target: str | None) -> Gate:
    if m is None:
        return Gate(name="accuracy", threshold=floor, value=None, target=target, passed=False,
                    detail="no compressed model in this run")
    value, runtime = runtime_accuracy(r, m, c, target or "host")
    ok = value is not None and value >= floor
    return Gate(name="accuracy", threshold=floor, value=value, target=target, passed=ok, model=m.label,
                runtime=runtime, detail=f"{m.label} {_pct(value)} {'≥' if ok else '<'} {floor:g}% ({runtime})")


def _latency_gate(r: Report, spec: float | str, m: ModelRow | None, c: dict[str, Any] | None,
                  target: str | None) -> Gate:
    ceiling = budget_of(r, target) if spec == "budget" and target else (None if spec == "budget" else float(spec))
    label = m.label if m is not None else None
    if c is None or ceiling is None:
        why = "no latency measured or predicted (add bench to stages)" if c is None else f"{target} has no budget"
        return Gate(name="latency", threshold=ceiling, value=None, target=target, passed=False, model=label,
                    detail=why)
    ok = c["median_ms"] <= ceiling
    runtime = f"{c['format']} {c['precision']} ({c['runtime']}, {c['kind']})"
    return Gate(name="latency", threshold=ceiling, value=c["median_ms"], target=target, passed=ok, model=label,
                runtime=runtime, detail=f"{label} {c['median_ms']:.3f} ms {'≤' if ok else '>'} {ceiling:g} ms "
                f"({'budget' if spec == 'budget' else 'limit'}; {runtime})")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}%"


def gates_message(failed: list[Gate]) -> str:
    return "; ".join(f"{g.name} gate failed on {g.target or 'the run'}: {g.detail}" for g in failed)
