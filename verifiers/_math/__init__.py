"""What `math_equivalence` is made of: finding the answer (`extract`) and the math-verify judge
in its worker process (`worker`, run through `rewardkit.verifiers._worker_pool`)."""
