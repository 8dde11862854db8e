"""What `code_tests` and `bug_detector` share: test cases (`cases`), finding the program
(`extract`), running it in the sandbox and judging the runs (`runs`), and the harness that runs
inside the sandbox (`harness`)."""
