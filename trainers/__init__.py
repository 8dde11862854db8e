"""The compact GDPO trainer (needs `rewardkit[train]`)."""
