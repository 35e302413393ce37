"""`cloudhsm-backup-restore-package` / `python -m cloudhsm_backup_restore_pipeline` (make package)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cloudhsm_backup_restore_pipeline import __version__
from cloudhsm_backup_restore_pipeline.build import default_dist, package
from cloudhsm_backup_restore_pipeline.lambda_zip import PackagingError

PROG = "cloudhsm-backup-restore-package"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (dist/..., as the README writes it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def deploy_commands(zip_path: str, template_path: str, s3_key: str) -> list[str]:
    """The upload and the provider deploy, as the README's quick start writes them (a test keeps them equal).

    BackupArns is always given: left out, the grant would silently widen to every backup in the account and
    region. --no-fail-on-empty-changeset: a re-run with unchanged code exits 0.
    """
    return [
        f'aws s3 cp {zip_path} "s3://$BUCKET/{s3_key}"',
        f"aws cloudformation deploy --template-file {template_path} \\",
        "  --stack-name cloudhsm-backup-restore-provider --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \\",
        '  --parameter-overrides S3Bucket="$BUCKET" BackupArns="$BACKUP_ARNS"',
    ]


def main(argv: list[str] | None = None) -> int:
    """Build dist/ and print the zip's size, hashes and the commands that deploy it."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build the Lambda zip (reproducibly, offline) and a provider template whose function Code "
        "names the zip's content-addressed S3 key.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--dist", type=Path, default=None, help="output directory (default: dist/ at the checkout's root, else ./dist)"
    )
    parser.add_argument("--template", type=Path, help="provider template (default: cfn-templates/provider.yaml)")
    args = parser.parse_args(argv)
    try:
        result = package(args.dist if args.dist is not None else default_dist(), args.template)
    except PackagingError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    code = result.code
    print(f"{result.zip_path}  {code.size} bytes ({code.size / 1024:.1f} KiB)")
    print(f"  sha256      {code.sha256_hex}")
    print(f"  CodeSha256  {code.code_sha256}")
    print(f"  S3 key      {code.s3_key}")
    print(f"{result.template_path}  (the function's Code.S3Key is {code.s3_key})")
    print(
        "Deploy (BUCKET: an S3 bucket in the stack's region; BACKUP_ARNS: the backups it may restore, comma-separated):"
    )
    for line in deploy_commands(_shown(result.zip_path), _shown(result.template_path), code.s3_key):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
