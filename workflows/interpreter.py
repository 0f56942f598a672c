"""Running a journey definition through the step library: the definition is data, the steps are code."""

from __future__ import annotations

from models.journey import (
    BranchOtherwise,
    BranchStep,
    BranchWhen,
    CallStep,
    EndStep,
    EnrollStep,
    FetchStep,
    InviteStep,
    JourneyDefinition,
    SendStep,
    SplitStep,
    Step,
    SurveyStep,
    TaskStep,
    UpdateStep,
    WaitForStep,
    WaitStep,
)
from workflows.step_runner import StepRunner
from workflows.steps import unexpected_step


async def interpret(steps: StepRunner, journey: JourneyDefinition, start_at: str | None = None) -> str:
    """Run the steps in order, following jumps, until the end of the list or an `end` step (which
    raises); continues as new at a step boundary when the history grows long."""
    index = journey.step_index()
    position = index[start_at] if start_at else 0
    while position < len(journey.steps):
        step = journey.steps[position]
        if steps.should_continue_as_new():
            await steps.continue_as_new(position=step.id)
        target = await run_step(steps, step)
        position = index[target] if target is not None else position + 1
    return "completed"


async def run_step(steps: StepRunner, step: Step) -> str | None:
    """Run one step; the id of the step to go to next, or None for the following one."""
    name = step.name or step.describe()
    if isinstance(step, SendStep):
        spec = step.send
        await steps.send(
            spec.template,
            channel=spec.channel,
            fallback=spec.fallback,
            body=spec.body,
            subject=spec.subject,
            step=step.id,
            name=name,
            purpose=spec.purpose,
            urgent=spec.urgent,
            attach=spec.attach,
        )
    elif isinstance(step, InviteStep):
        invite = step.invite
        await steps.invite(
            invite.event,
            valid_days=invite.valid_days,
            template=invite.template,
            channel=invite.channel,
            fallback=invite.fallback,
            body=invite.body,
            subject=invite.subject,
            step=step.id,
            name=step.name,
            purpose=invite.purpose,
        )
    elif isinstance(step, CallStep):
        called = await steps.call(step.call, step=step.id, name=name)
        if step.call.on_unanswered is not None and not called.answered:
            return step.call.on_unanswered
    elif isinstance(step, WaitStep):
        wait = step.wait
        if wait.duration is not None:
            await steps.wait(wait.duration, step=step.id, name=step.name)
        elif wait.until is not None:
            await steps.wait_until(wait.until.time, step=step.id, name=step.name)
        elif wait.at is not None:
            waited = await steps.wait_until_moment(
                wait.at.expression, wait.at.offset, step=step.id, name=step.name
            )
            if not waited and wait.at.if_passed is not None:
                return wait.at.if_passed
        elif wait.business_days is not None:
            await steps.wait_business_days(wait.business_days, step=step.id, name=step.name)
    elif isinstance(step, WaitForStep):
        spec_for = step.wait_for
        event = await steps.wait_for(
            spec_for.event,
            timeout=spec_for.timeout,
            timeout_business_days=spec_for.timeout_business_days,
            criteria=spec_for.criteria,
            step=step.id,
            name=step.name,
        )
        if event is None and spec_for.on_timeout is not None:
            return spec_for.on_timeout
    elif isinstance(step, BranchStep):
        cases = [case for case in step.branch if isinstance(case, BranchWhen)]
        chosen = await steps.first_true([case.when for case in cases], step=step.id, name=name)
        if chosen is not None:
            return cases[chosen].goto
        otherwise = [case.otherwise for case in step.branch if isinstance(case, BranchOtherwise)]
        if otherwise:
            return otherwise[0]
    elif isinstance(step, TaskStep):
        task = step.task
        await steps.task(
            task.queue,
            task.title,
            description=task.description,
            due=task.due,
            due_business_days=task.due_business_days,
            priority=task.priority,
            step=step.id,
            name=name,
        )
    elif isinstance(step, UpdateStep):
        await steps.update(step.update.set, step=step.id, name=name)
    elif isinstance(step, FetchStep):
        fetch = step.fetch
        await steps.fetch(
            fetch.query,
            into=step.fetched_name,
            limit=fetch.limit,
            source=fetch.source,
            step=step.id,
            name=name,
        )
    elif isinstance(step, SplitStep):
        label = await steps.split(step.split, step=step.id, name=name)
        return next(path.goto for path in step.split if path.label == label)
    elif isinstance(step, EnrollStep):
        enroll = step.enroll
        await steps.enroll(
            enroll.journey, version=enroll.version, context=enroll.context, step=step.id, name=name
        )
    elif isinstance(step, SurveyStep):
        expired_to = await steps.survey(step)
        if expired_to is not None:
            return expired_to
    elif isinstance(step, EndStep):
        await steps.end(step.end.outcome, step=step.id, name=name)
    else:
        unexpected_step(step)
    return step.goto
