"""rewardkit: compose verifiers into multi-reward RL signals from one YAML file."""

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, completion_text

__all__ = ["Sample", "Score", "ScoringContext", "Verifier", "VerifierArgs", "completion_text"]
__version__ = "0.1.0"
