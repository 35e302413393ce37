"""EventBridge, SSM and Lambda control plane on moto behind a fault-injecting gateway, and the rule scheduler."""
