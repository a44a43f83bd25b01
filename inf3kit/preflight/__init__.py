"""Checks against the target account before a deploy starts (boto3).

A deploy that fails on capacity, a quota, a missing AMI parameter, bundle or image, or an old
bootstrap stack fails 5 to 20 minutes in, and CloudFormation then rolls it back. Each of those
is asked of the account here first, one module per concern, and reported with its fix.
"""

from inf3kit.preflight.report import Context, Note, Problem, Report
from inf3kit.preflight.run import PreflightError, run, stack_names

__all__ = ["Context", "Note", "PreflightError", "Problem", "Report", "run", "stack_names"]
