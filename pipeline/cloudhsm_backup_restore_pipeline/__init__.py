"""Deployment facts shared by the CDK construct, the CloudFormation templates and the Lambda package."""
