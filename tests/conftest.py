"""Session-wide test environment: silence jsii's Node banner before anything imports aws_cdk."""

from __future__ import annotations

import os
import shutil
import subprocess


def _node_major() -> str:
    node = shutil.which("node")
    if node is None:
        return ""
    result = subprocess.run(
        [node, "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


# @jsii/check-node prints a banner to stderr on every CDK import when Node is deprecated or end-of-life; it
# honours these variables (the Makefile exports the same pair). Child processes inherit them.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", _node_major())
