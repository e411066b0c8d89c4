"""Errors a user sees as one line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad input: the message says what is wrong, with which input, and what to do."""


EXIT_OK = 0
EXIT_CRITERIA_FAILED = 1
EXIT_USAGE = 2
# The measurement lost part of its load: a worker process died (summary.json says which, and what it carried).
EXIT_FAULT = 3
# A suite whose verdict is INCOMPLETE without an interruption: a stage that did not reach its own end
# (its requests without an outcome, its ramp cut off by the time bound).
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130
