# Burn CPU forever. Must end at the CPU limit.
while True:
    pass
