"""Built-in verifiers (imported lazily by name through `rewardkit.registry.BUILTINS`)."""
