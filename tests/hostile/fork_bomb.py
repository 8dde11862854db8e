# Fork bomb: every process forks forever. Must end at the process cap or the time limit.
import os

while True:
    os.fork()
