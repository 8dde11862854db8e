# Flood stdout and stderr. Must end at the output cap, with the output truncated.
import sys

chunk = "x" * 65536
while True:
    sys.stdout.write(chunk)
    sys.stderr.write(chunk)
