# Use no CPU at all, just outlive the wall-time limit.
import time

time.sleep(60)
