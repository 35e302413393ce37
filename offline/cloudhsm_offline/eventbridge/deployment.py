"""What deploying the provider does in the offline account: the function, its environment, its one invoke permission.

Deployment facts, as cfn-templates/provider.yaml and the CDK construct deploy them (tests check these
against pipeline contract.py; the offline world imports nothing from handler/ or the pipeline):
the function gets PROVIDER_ID_ENV, and one lambda:InvokeFunction permission for events.amazonaws.com whose
SourceArn is every rule under the provider's prefix (Lambda resource policies accept a wildcard SourceArn:
AWS Lambda developer guide, "Granting function access to other accounts/services", ArnLike condition).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from cloudhsm_offline.lambda_runtime.function import LambdaFunction

PROVIDER_ID_ENV = "CLOUDHSM_RESTORE_PROVIDER_ID"
POLL_RULE_PREFIX = "cloudhsm-poll-"
INVOKE_STATEMENT_ID = "cloudhsm-restore-poll-rules"


def poll_source_arn(function: LambdaFunction, provider_id: str) -> str:
    """The deploy-time permission's SourceArn: every poll rule of this provider."""
    return f"arn:aws:events:{function.region}:{function.account}:rule/{POLL_RULE_PREFIX}{provider_id}-*"


def deploy_function(client: Callable[[str], Any], function: LambdaFunction) -> None:
    """Register ``function`` in moto (so its resource policy exists) and grant the deploy-time permission."""
    iam = client("iam")
    role = iam.create_role(
        RoleName=f"{function.function_name}-role"[:64],
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("placeholder.py", "# the offline world runs the real code from its code directory\n")
    lambda_client = client("lambda")
    lambda_client.create_function(
        FunctionName=function.function_name,
        Runtime="python3.11",
        Role=role,
        Handler=function.handler,
        Code={"ZipFile": archive.getvalue()},
        Timeout=int(function.timeout_seconds),
        MemorySize=function.memory_mb,
    )
    provider_id = function.env.get(PROVIDER_ID_ENV)
    if provider_id:
        lambda_client.add_permission(
            FunctionName=function.function_name,
            StatementId=INVOKE_STATEMENT_ID,
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=poll_source_arn(function, provider_id),
            SourceAccount=function.account,
        )
