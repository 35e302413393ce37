"""What is not run but computed: the CDK Provider framework's documented schedule, and physical limits.

CDK Provider framework (aws-cdk-lib 2.275, ``custom-resources/lib/provider-framework``) with an
``isCompleteHandler``: the framework's onEvent Lambda invokes the user's onEvent (here: RestoreBackup),
then starts a Step Functions waiter whose only task invokes the framework's isComplete Lambda, which
invokes the user's isComplete (here: DescribeBackups). The task is retried on ``States.ALL`` every
``queryInterval`` (default 5 s) with ``backoffRate`` 1 for ``totalTimeout / queryInterval`` attempts
(default 30 min / 5 s = 360); past that the onTimeout Lambda answers FAILED.

Assumptions (stated in the report): the first isComplete runs right after onEvent (t = 0), then at
5 s, 10 s, ...; the first one at or after ``t_ready`` answers; Lambda and Step Functions overhead adds
``CDK_CREATE_OVERHEAD_S`` to a Create and ``CDK_DELETE_OVERHEAD_S`` to a Delete (warm functions, a few
state transitions). Delete: onEvent calls DeleteBackup, the first isComplete says complete.
"""

from __future__ import annotations

import math

from bench.rows import CDK_PROVIDER, FLOOR, LIMIT, MODEL, Case, Row

CDK_QUERY_INTERVAL_S = 5.0
CDK_TOTAL_TIMEOUT_S = 1800.0
CDK_BACKOFF_RATE = 1.0
CDK_CREATE_OVERHEAD_S = 0.4
"""Assumed: framework onEvent -> user onEvent -> StartExecution -> isComplete task -> user isComplete -> PUT."""
CDK_DELETE_OVERHEAD_S = 0.3


def cdk_is_complete_calls(t_ready: float, interval: float = CDK_QUERY_INTERVAL_S) -> int:
    """How many times the waiter calls isComplete for a backup READY after ``t_ready`` seconds."""
    return math.ceil(t_ready / interval) + 1


def cdk_provider_row(case: Case) -> Row:
    """The CDK Provider framework's Create + Delete for one case, from its documented schedule."""
    t = case.t_ready
    if t > CDK_TOTAL_TIMEOUT_S:
        raise ValueError("beyond totalTimeout the model answers FAILED; no such case is benchmarked")
    polls = cdk_is_complete_calls(t)
    create_user = 1 + polls  # user onEvent + user isComplete calls (= 1 + ceil(t/5) + 1)
    delete_user = 2  # user onEvent (DeleteBackup) + one isComplete that says complete
    user = create_user + delete_user
    return Row(
        case=case,
        variant=CDK_PROVIDER,
        kind=MODEL,
        create_s=math.ceil(t / CDK_QUERY_INTERVAL_S) * CDK_QUERY_INTERVAL_S + CDK_CREATE_OVERHEAD_S,
        delete_s=CDK_DELETE_OVERHEAD_S,
        invocations=float(user),
        rules=0.0,
        api_calls=float(1 + polls + 1),  # RestoreBackup + one DescribeBackups per isComplete + DeleteBackup
        note=(
            f"model: {user} user-code invocations, {2 * user} counting the framework's relay Lambdas; "
            "2 Step Functions executions"
        ),
    )


def floor_row(case: Case) -> Row:
    """Physical limits: answer the moment the backup is READY, one call per state change, no polling."""
    return Row(
        case=case,
        variant=FLOOR,
        kind=LIMIT,
        create_s=case.t_ready,
        delete_s=0.0,
        invocations=2.0,
        rules=0.0,
        api_calls=2.0,
        note="limit: latency = time-to-READY; RestoreBackup + DeleteBackup; one invocation per request",
    )
