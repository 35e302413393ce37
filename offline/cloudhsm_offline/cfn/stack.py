"""Run a CloudFormation template's custom resources through the simulator, with CloudFormation's stack semantics.

Create: resources in dependency order; the first failure (or an Output that cannot be resolved) rolls
the stack back by deleting what was created, in reverse order (ROLLBACK_COMPLETE; ROLLBACK_FAILED when
one of those Deletes fails, and the stack keeps that resource).
Update: new parameter values and optionally an edited template (any number of times). Changed resources
get an Update, new ones a Create, in dependency order. A replacement (a new
PhysicalResourceId) keeps the old resource until every resource and Output succeeded; only then does
the cleanup phase delete the replaced resources and the ones the template no longer selects
(UPDATE_COMPLETE). On any failure every resource already updated gets an Update back to its old
properties, resources created by this update are deleted, new replacements are deleted in the
rollback's cleanup, and the previous template, parameters and Outputs remain (UPDATE_ROLLBACK_COMPLETE;
UPDATE_ROLLBACK_FAILED, naming the resource, when an undo fails).
Source: AWS CloudFormation User Guide, "Update behaviors of stack resources" and "Stack status codes"
(UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudhsm_offline.cfn.outcome import Outcome, ResourceState
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.cfn.template import (
    TemplateError,
    TemplateResolver,
    carried_parameters,
    check_runnable,
    is_custom,
    load_template,
)


@dataclass
class OutputValue:
    """One resolved Output (or why it could not be resolved)."""

    name: str
    value: str | None
    error: str | None = None


@dataclass
class StackRun:
    """What one stack operation did: every resource operation, the Outputs after it, the stack status."""

    outcomes: list[Outcome] = field(default_factory=list)
    outputs: list[OutputValue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    status: str = ""

    @property
    def ok(self) -> bool:
        """No failed operation, violation or output error."""
        return not self.errors and all(o.all_ok for o in self.outcomes) and all(not o.error for o in self.outputs)


@dataclass(frozen=True)
class _Step:
    """A resource this update touched, and what it was before."""

    name: str
    created: bool
    old_physical: str = ""
    old_properties: dict[str, Any] = field(default_factory=dict)


class StackRunner:
    """Create/Update/Delete a template's custom resources in dependency order, as one stack.

    The stack's resources are the simulator's record (``simulator.resources``: properties, physical ids,
    response data), one record for both; the
    template and its parameters are read through a ``TemplateResolver`` (``resolver``), which an Update
    with an edited template replaces.
    """

    def __init__(
        self,
        simulator: CloudFormationSimulator,
        template: str | Path | Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.simulator = simulator
        self.resolver = TemplateResolver(simulator, template, parameters)

    @property
    def applied(self) -> dict[str, dict[str, Any]]:
        """The properties each resource of the stack was last created or updated with, in creation order."""
        return {name: state.properties for name, state in self.simulator.resources.items()}

    @property
    def physical(self) -> dict[str, str]:
        """Each resource's PhysicalResourceId."""
        return {name: state.physical_id for name, state in self.simulator.resources.items()}

    def custom_resources(self) -> list[str]:
        """Logical ids of the custom resources that exist under the conditions, in dependency order."""
        selected = [
            name
            for name, resource in self.resolver.resources.items()
            if is_custom(resource) and ("Condition" not in resource or self.resolver.condition(resource["Condition"]))
        ]
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in ordered:
                return
            if name in visiting:
                raise TemplateError(f"circular dependency through {name}")
            visiting.add(name)
            for dependency in sorted(self._dependencies(name) & set(selected)):
                visit(dependency)
            visiting.discard(name)
            ordered.append(name)

        for name in selected:
            visit(name)
        return ordered

    def _dependencies(self, name: str) -> set[str]:
        resource = self.resolver.resources[name]
        depends = resource.get("DependsOn") or []
        found = set([depends] if isinstance(depends, str) else depends)
        return (found | self.resolver.references(resource.get("Properties") or {})) - {name}

    def properties_of(self, name: str) -> dict[str, Any]:
        """The resolved Properties of a resource."""
        resolved = self.resolver.resolve(self.resolver.resources[name].get("Properties") or {})
        assert isinstance(resolved, dict)
        return resolved

    def _type(self, name: str) -> str:
        return str(self.resolver.resources[name]["Type"])

    # -- create ------------------------------------------------------------------------------------

    def create(self) -> StackRun:
        """Create every custom resource; on a failure (or a failing Output) delete the ones created."""
        run = StackRun()
        created = [step.name for step in self._apply_changes(run)]  # on a new stack, every step is a Create
        if not run.errors:
            run.status = "CREATE_COMPLETE"
            return run
        run.outputs = [o for o in run.outputs if o.error]  # a rolled-back stack shows no values, only what failed
        failed = []
        rollback = run.outcomes[-1].followup("rollback") if run.outcomes else None  # the failed Create's own Delete
        if rollback is not None and rollback.status != "SUCCESS":
            failed.append(rollback.logical_id)
            run.errors.append(f"rollback: {rollback.logical_id}: {rollback.reason}")
        for name in reversed(created):
            outcome = self.simulator.delete(name, role="rollback")
            run.outcomes.append(outcome)
            if outcome.status != "SUCCESS":  # CloudFormation keeps the resource it could not delete: ROLLBACK_FAILED
                failed.append(name)
                run.errors.append(f"rollback: {name}: {outcome.reason}")
        run.status = "ROLLBACK_FAILED" if failed else "ROLLBACK_COMPLETE"
        return run

    # -- update ------------------------------------------------------------------------------------

    def update(self, parameters: Mapping[str, str], template: str | Path | Mapping[str, Any] | None = None) -> StackRun:
        """Update with changed parameters and optionally an edited template; cleanup after success, rollback
        (previous template, parameters and Outputs kept) on failure."""
        run = StackRun()
        before = (self.resolver, dict(self.simulator.resources))
        try:  # CloudFormation rejects an update it cannot run before touching anything
            source = self.resolver.template if template is None else load_template(template)
            given = carried_parameters(source, self.resolver.given, parameters)
            check_runnable(source, given)
            resolver = TemplateResolver(self.simulator, source, given)
        except TemplateError as exc:
            run.errors.append(str(exc))
            run.outputs, run.status = self.outputs(), "UPDATE_ROLLBACK_COMPLETE"
            return run
        self.resolver = resolver
        steps = self._apply_changes(run)
        if run.errors:
            self._roll_back(run, steps, before)
            return run
        selected = set(self._safe(run, self.custom_resources) or [])
        for step in steps:
            if not step.created and self.physical[step.name] != step.old_physical:
                run.outcomes.append(
                    self.simulator.delete(
                        step.name, step.old_properties, step.old_physical, self._type(step.name), role="cleanup"
                    )
                )
        for name in [n for n in reversed(list(self.applied)) if n not in selected]:
            run.outcomes.append(self.simulator.delete(name, role="cleanup"))
            self.simulator.resources.pop(name, None)  # no longer the stack's, even when its Delete failed
        run.status = "UPDATE_COMPLETE" if run.ok else "UPDATE_COMPLETE_CLEANUP_FAILED"
        return run

    def _apply_changes(self, run: StackRun) -> list[_Step]:
        """Create new resources and Update changed ones until the first failure, then resolve the Outputs;
        what was done, in order."""
        steps: list[_Step] = []
        for name in self._safe(run, self.custom_resources) or []:
            properties = self._safe(run, lambda n=name: self.properties_of(n))
            if properties is None:
                break
            if name not in self.applied:
                outcome = self.simulator.create(name, properties, self._type(name))
                step = _Step(name, created=True)
            elif properties == self.applied[name]:
                continue
            else:
                step = _Step(name, False, self.physical[name], self.applied[name])  # before the record changes
                outcome = self.simulator.update(name, properties, cleanup=False)
            run.outcomes.append(outcome)
            if outcome.status != "SUCCESS":  # the simulator already rolled this resource itself back
                run.errors.append(f"{name}: {outcome.reason}")
                break
            steps.append(step)
        if not run.errors:
            run.outputs = self.outputs()
            run.errors.extend(f"output {o.name}: {o.error}" for o in run.outputs if o.error)
        return steps

    def _roll_back(
        self,
        run: StackRun,
        steps: list[_Step],
        before: tuple[TemplateResolver, dict[str, ResourceState]],
    ) -> None:
        """Undo ``steps`` in reverse: Update back, delete this update's creations, then its new replacements."""
        undo: list[Outcome] = []
        replacements: list[tuple[str, str, dict[str, Any]]] = []
        for step in reversed(steps):
            if step.created:
                undo.append(self.simulator.delete(step.name, role="rollback"))
                continue
            new_physical, new_properties = self.physical[step.name], self.applied[step.name]
            undo.append(
                self.simulator.update(
                    step.name,
                    step.old_properties,
                    old_properties=new_properties,
                    physical_id=new_physical,
                    rollback=False,
                    cleanup=False,
                    role="update-rollback",
                )
            )
            if new_physical != step.old_physical:
                replacements.append((step.name, new_physical, new_properties))
        for name, physical, properties in replacements:
            undo.append(self.simulator.delete(name, properties, physical, self._type(name), role="cleanup"))
        run.outcomes.extend(undo)
        self.resolver, resources = before  # the stack is back on its old resources
        self.simulator.resources.clear()
        self.simulator.resources.update(resources)
        run.outputs = self.outputs()
        failed = [o for o in undo if not o.all_ok]
        run.errors.extend(f"rollback: {o.logical_id}: {o.reason or o.status}" for o in failed)
        run.status = "UPDATE_ROLLBACK_FAILED" if failed else "UPDATE_ROLLBACK_COMPLETE"

    # -- delete ------------------------------------------------------------------------------------

    def delete(self) -> StackRun:
        """Delete every custom resource this runner created, in reverse dependency order."""
        run = StackRun()
        order = [n for n in self._safe(run, self.custom_resources) or [] if n in self.applied]
        order += [n for n in self.applied if n not in order]
        for name in reversed(order):
            outcome = self.simulator.delete(name)
            run.outcomes.append(outcome)
            if outcome.status != "SUCCESS":
                run.errors.append(f"{name}: {outcome.reason}")
            self.simulator.resources.pop(name, None)  # no longer the stack's, even when its Delete failed
        run.status = "DELETE_FAILED" if run.errors else "DELETE_COMPLETE"
        return run

    def outputs(self) -> list[OutputValue]:
        """Resolve the template's Outputs (with their Conditions)."""
        values = []
        for name, spec in (self.resolver.template.get("Outputs") or {}).items():
            try:
                if "Condition" in spec and not self.resolver.condition(spec["Condition"]):
                    continue
                values.append(OutputValue(name, str(self.resolver.resolve(spec.get("Value")))))
            except (TemplateError, KeyError, IndexError, TypeError, ValueError) as exc:
                values.append(OutputValue(name, None, str(exc)))
        return values

    @staticmethod
    def _safe(run: StackRun, thunk: Any) -> Any:
        try:
            return thunk()
        except (TemplateError, KeyError, IndexError, TypeError, ValueError) as exc:
            run.errors.append(str(exc))
            return None
