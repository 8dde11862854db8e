# Recurse through C frames (map calls back into Python) past the C stack: a segfault on 3.11.
import sys

sys.setrecursionlimit(10**7)


def f(n):
    return list(map(f, [n + 1]))


f(0)
