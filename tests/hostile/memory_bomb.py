# Memory bomb: keep allocating (and touching) 64 MiB blocks. Must end at the memory limit.
blocks = []
while True:
    blocks.append(bytearray(64 << 20))
