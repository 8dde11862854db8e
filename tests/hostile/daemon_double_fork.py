# Classic daemon: fork, setsid, fork again, and keep running after the main process exits.
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        while True:
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.2)
print("daemon started")
