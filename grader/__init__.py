"""Offline grader for SageMaker Estimator assignments.

The student's notebook and train.py run against emulated AWS (moto), with
training jobs executed on this machine under the SageMaker training
toolkit's container contract; criteria are judged from what the grader
observed and reported as HTML and JSON.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
